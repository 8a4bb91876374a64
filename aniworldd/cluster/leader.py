"""One elected process per duty (scan/refresh/watch in one worker, MQTT in one api process).

A lease in Redis: `SET <prefix>:leader:<name> <node> NX PX ttl`, renewed every ttl/3 by its holder only
(compare-and-pexpire), released on close only if it is still ours (compare-and-delete). A holder that cannot
renew stops its duties (`on_deposed`) before its lease can run out in Redis, so two processes never do the
duty at the same time, even when only the leader lost Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aniworldd.cluster.redis_link import RedisLink

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

#: Part of the ttl after the last good renewal at which an unreachable leader gives up: the rest is the
#: margin for a renewal that Redis applied later than we sent it and for clocks that tick a bit apart.
TRUST = 0.8


async def _nothing() -> None:
    return None


class LeaderLock:
    """`is_leader` is true between `on_elected` and `on_deposed`. Both callbacks run on the lock's own task
    and must return quickly (start or stop tasks), or the renewals wait for them."""

    def __init__(
        self,
        link: RedisLink,
        name: str,
        ttl: float = 10.0,
        on_elected: Callable[[], Awaitable[None]] = _nothing,
        on_deposed: Callable[[], Awaitable[None]] = _nothing,
    ) -> None:
        self.link = link
        self.name = name
        self.ttl = ttl
        self.key = link.key("leader", name)
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.is_leader = False
        self._value = link.node.encode()
        self._renewed_at = 0.0  # monotonic time a successful SET/renew was *sent*: the lease runs from there
        self._unreachable = False
        self._task: asyncio.Task | None = None
        self._renew = link.client.register_script(_RENEW)
        self._release = link.client.register_script(_RELEASE)

    @property
    def interval(self) -> float:
        return self.ttl / 3

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
            self._task.set_name(f"leader-{self.name}")

    async def close(self) -> None:
        """Stop the duties first, then hand the lock back, so the next leader never overlaps with us."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.is_leader:
            await self._depose("shutting down")
            try:
                await asyncio.wait_for(self._release(keys=[self.key], args=[self._value]), self.interval)
            except Exception as exc:  # it expires by itself after ttl
                log.debug("leader %s: release failed: %s", self.name, exc)

    async def holder(self) -> str | None:
        """The node holding the lock now, None if nobody does. Raises when Redis is unreachable."""
        value = await self.link.client.get(self.key)
        return value.decode() if value is not None else None

    # --- internals ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if self.is_leader:
                await self._keep()
            else:
                await self._try_acquire()
            # A leader that missed a renewal tries again sooner, it has little time left.
            unsure = self.is_leader and self._unreachable
            await asyncio.sleep(min(self.interval, 0.5) if unsure else self.interval)

    async def _try_acquire(self) -> None:
        sent = time.monotonic()
        try:
            got = await self._command(
                self.link.client.set(self.key, self._value, nx=True, px=int(self.ttl * 1000))
            )
        except Exception as exc:
            self._lost_redis(exc)
            return
        self._redis_back()
        if got:
            self._renewed_at = sent
            self.is_leader = True
            log.info("leader %s: %s elected", self.name, self.link.node)
            await self._call(self.on_elected, "on_elected")

    async def _keep(self) -> None:
        sent = time.monotonic()
        try:
            kept = await self._command(self._renew(keys=[self.key], args=[self._value, int(self.ttl * 1000)]))
        except Exception as exc:
            self._lost_redis(exc)
            if time.monotonic() - self._renewed_at >= self.ttl * TRUST:
                await self._depose("Redis unreachable, the lease runs out")
            return
        self._redis_back()
        if kept:
            self._renewed_at = sent
        else:
            await self._depose("the lock was lost")

    async def _depose(self, why: str) -> None:
        self.is_leader = False
        log.warning("leader %s: %s deposed (%s)", self.name, self.link.node, why)
        await self._call(self.on_deposed, "on_deposed")

    async def _command(self, awaitable: Awaitable) -> object:
        # Bounded by the renewal interval: a hanging command must not outlive the lease it is renewing.
        return await asyncio.wait_for(awaitable, self.interval)

    async def _call(self, callback: Callable[[], Awaitable[None]], what: str) -> None:
        try:
            await callback()
        except Exception:  # a failing duty must not stop the election loop
            log.exception("leader %s: %s failed", self.name, what)

    def _lost_redis(self, exc: BaseException) -> None:
        if not self._unreachable:
            log.warning("leader %s: Redis unreachable (%s: %s)", self.name, type(exc).__name__, exc)
            self._unreachable = True

    def _redis_back(self) -> None:
        if self._unreachable:
            log.info("leader %s: Redis is back", self.name)
            self._unreachable = False
