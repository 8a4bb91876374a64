"""Operating-system limits the daemon sets for itself: open files and HTTP connections.

Every HTTP client, WebSocket, provider connection, yt-dlp child pipe and log file is a file descriptor.
Most distributions start services with a soft limit of 1024 (the hard limit is far higher), which ~1,000
idle connections exhaust; then `accept()`, downloads and the database all fail with EMFILE. So the soft
limit is raised to the hard one at start (systemd's LimitNOFILE= sets the hard one), and the HTTP server
takes at most `server.max_connections` connections at a time, so clients can never use up what the rest
of the daemon needs.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import time
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

#: Ceiling when the hard limit is "unlimited" (select/poll tables and /proc stay sane).
NOFILE_CEILING = 1_048_576


def raise_nofile_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit; (old soft, new soft). Never fails the start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = NOFILE_CEILING if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
            return soft, soft
        return soft, target
    return soft, soft


def out_of_descriptors() -> bool:
    """Whether the process cannot open one more file right now. Libraries do not always say EMFILE when
    they hit it (curl reports an "invalid multi handle" when it cannot make its wake-up socket), so a
    failure is also checked against the process's state when it happens."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
    except OSError as exc:
        return exc.errno in (errno.EMFILE, errno.ENFILE)
    os.close(fd)
    return False


def cap_connections(server: web.Server, maximum: int) -> None:
    """Close every connection beyond `maximum` open ones at once (before it can hold a descriptor for
    long); the refusals are logged at most once a minute with a count."""
    original = server.connection_made
    refused = {"count": 0, "logged_at": 0.0}

    def connection_made(handler: Any, transport: Any) -> None:
        original(handler, transport)
        if len(server.connections) <= maximum:
            return
        transport.abort()
        refused["count"] += 1
        now = time.monotonic()
        if now - refused["logged_at"] >= 60:
            log.warning(
                "connection limit reached (server.max_connections = %d): %d connection(s) refused",
                maximum,
                refused["count"],
            )
            refused["count"], refused["logged_at"] = 0, now

    server.connection_made = connection_made  # type: ignore[method-assign]
