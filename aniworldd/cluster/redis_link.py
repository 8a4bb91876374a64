"""The one Redis connection pool of a process and the names of its keys.

redis-py's asyncio client reconnects by itself on the next command after Redis went away; what each user
must still do is catch `redis.exceptions.ConnectionError`/`TimeoutError` and try again later.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

log = logging.getLogger(__name__)

#: Seconds a command may take before the link counts Redis as unreachable.
COMMAND_TIMEOUT = 5.0


def node_name(configured: str | None) -> str:
    """This process's name in the cluster: the configured one, or <hostname>-<pid> (unique on a host)."""
    return configured or f"{socket.gethostname()}-{os.getpid()}"


class RedisLink:
    """Owns the client; `key("events")` -> "<prefix>:events"."""

    def __init__(self, url: str, prefix: str = "aniworldd", node: str | None = None) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.prefix = prefix
        self.node = node_name(node)
        self.client: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=COMMAND_TIMEOUT,
            socket_connect_timeout=COMMAND_TIMEOUT,
            health_check_interval=10,
            decode_responses=False,
        )

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def safe_url(self) -> str:
        """The URL without its password, for /health and logs."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        if parts.password:
            return self.url.replace(f":{parts.password}@", ":***@")
        return self.url

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception as exc:  # any failure means "not usable now"; the reason goes to the debug log
            log.debug("redis ping failed: %s", exc)
            return False

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except Exception as exc:  # closing must never stop a shutdown
            log.debug("closing redis: %s", exc)
