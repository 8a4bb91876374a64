"""The last log lines in memory, for the system page: a bounded ring-buffer logging handler.

A NAS owner looking at "why did that fail" should not need a shell for `journalctl`. The handler keeps the
last CAPACITY formatted records (a deque with maxlen: memory is bounded whatever the daemon logs), each with
a sequence number so the UI can ask for "what came after line N" and append only new lines.

Secrets are scrubbed before a line is stored, like the rest of the daemon does for texts it shows:
`scheme://user:password@` becomes `user:***@` (net.proxy.scrub_credentials), and `token=`, `api_key=`,
`password=` values, bearer tokens and API keys (`awd_...`) are masked, so a log line never hands a
credential to whoever can read the page. The same RepeatFilter as the main handler keeps a fault that
repeats in a loop from pushing every other line out of the buffer.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from datetime import UTC, datetime

from aniworldd.logthrottle import RepeatFilter
from aniworldd.net.proxy import scrub_credentials

#: Lines kept; the system page shows them all.
CAPACITY = 200
#: Longest stored message (a traceback or an HTML error page must not fill the buffer's memory).
MAX_LINE = 4000

_SECRET_PARAM = re.compile(
    r"((?:token|access_token|api_key|apikey|password|passwd|secret)=)[^&\s\"']+", re.IGNORECASE
)
_BEARER = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_API_KEY = re.compile(r"\bawd_[A-Za-z0-9_-]{6,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")


def scrub(text: str) -> str:
    """The text with credentials masked (URL passwords, token/password parameters, bearer tokens, keys)."""
    text = scrub_credentials(text)
    text = _SECRET_PARAM.sub(r"\1***", text)
    text = _BEARER.sub(r"\1***", text)
    text = _API_KEY.sub("awd_***", text)
    return _JWT.sub("***", text)


class LogTail(logging.Handler):
    """Keeps the last `capacity` records as dicts {seq, at, level, logger, message}."""

    def __init__(self, capacity: int = CAPACITY, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.capacity = capacity
        self._lines: deque[dict] = deque(maxlen=capacity)
        self._seq = 0
        self._guard = threading.Lock()  # records arrive from worker threads too
        self.addFilter(RepeatFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message = f"{message} ({type(exc).__name__}: {exc})"
            line = {
                "at": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
                "level": record.levelname,
                "logger": record.name,
                "message": scrub(message[:MAX_LINE]),
            }
        except Exception:  # a broken record must not break the logging call that made it
            self.handleError(record)
            return
        with self._guard:
            self._seq += 1
            line["seq"] = self._seq
            self._lines.append(line)

    def lines(self, after: int = 0, limit: int | None = None) -> dict:
        """{lines, last, capacity, dropped}: lines with seq > after, oldest first (at most `limit`, newest).

        `last` is the newest sequence number (the next `after`); `dropped` says lines after `after` fell out
        of the buffer before they were asked for (the client was away too long), so it can say so.
        """
        with self._guard:
            lines = [line for line in self._lines if line["seq"] > after]
            last = self._seq
        first = lines[0]["seq"] if lines else last + 1
        dropped = max(0, first - after - 1) if after else 0
        if limit is not None:
            lines = lines[-limit:] if limit else []
        return {"lines": lines, "last": last, "capacity": self.capacity, "dropped": dropped}


def attach(logger: logging.Logger | None = None) -> LogTail:
    """A new LogTail listening on `logger` (the root logger): whoever attaches it detaches it again."""
    tail = LogTail()
    (logger or logging.getLogger()).addHandler(tail)
    return tail
