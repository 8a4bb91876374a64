"""systemd integration that degrades to nothing.

`Type=notify` units wait for READY=1 and kill us when WATCHDOG=1 stops arriving. systemd-python is optional
(NAS images and containers often lack libsystemd), so the datagrams are sent to NOTIFY_SOCKET directly when
the binding is missing; the wire format is the same.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from aniworldd.logthrottle import RepeatFilter

log = logging.getLogger(__name__)

try:  # pragma: no cover - depends on the machine
    from systemd import journal as _journal
except ImportError:  # pragma: no cover
    _journal = None


class Notifier:
    """Sends sd_notify datagrams; a no-op when not started by systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.socket_path = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_usec = (
            int(usec) if usec and usec.isdigit() and (not pid or pid == str(os.getpid())) else 0
        )
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.socket_path is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Half the watchdog timeout, as sd_watchdog_enabled(3) recommends; None when no watchdog."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def notify(self, message: str) -> bool:
        if not self.socket_path:
            return False
        address = self.socket_path
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), address)
            return True
        except OSError as exc:
            log.debug("sd_notify failed: %s", exc)
            return False

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def setup_logging(level: str = "INFO", environ: dict[str, str] | None = None) -> str:
    """journald when we run under systemd with the binding available, stderr otherwise. Returns which."""
    env = os.environ if environ is None else environ
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    target = "stderr"
    if env.get("JOURNAL_STREAM") and _journal is not None:
        handler: logging.Handler = _journal.JournalHandler(SYSLOG_IDENTIFIER="aniworldd")
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        target = "journald"
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())  # the same line at most 5 times a minute, then a count
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return target
