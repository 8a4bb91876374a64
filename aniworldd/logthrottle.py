"""A log filter that writes the same line at most a few times a minute.

A fault that repeats in a tight loop (EMFILE on every accept(), a broken share on every scan) once wrote
258,728 identical tracebacks in under a minute. The first `limit` copies of a message per `window` pass
(with their traceback, which is what the owner needs), the rest are counted, and the first copy after the
window says how many were suppressed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: Distinct messages tracked at once; the oldest are forgotten beyond this (the filter's own memory cap).
MAX_KEYS = 2048


class RepeatFilter(logging.Filter):
    def __init__(self, limit: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.limit = limit
        self.window = window
        self.clock = clock
        #: key -> [window start, passed in window, suppressed in window]
        self._seen: dict[tuple, list] = {}

    def _key(self, record: logging.LogRecord) -> tuple:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        try:
            text = record.getMessage()[:300]
        except Exception:  # a record whose args do not fit its format: key on the template
            text = str(record.msg)[:300]
        return record.name, record.levelno, text, exc

    def filter(self, record: logging.LogRecord) -> bool:
        key = self._key(record)
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            suppressed = entry[2] if entry is not None else 0
            self._seen.pop(key, None)
            self._seen[key] = [now, 1, 0]
            if len(self._seen) > MAX_KEYS:
                del self._seen[next(iter(self._seen))]
            if suppressed:
                record.msg = f"{record.getMessage()} [suppressed {suppressed} identical messages]"
                record.args = None
            return True
        if entry[1] < self.limit:
            entry[1] += 1
            return True
        entry[2] += 1
        return False
