"""Login limits and session revocation shared by the processes of a cluster (issue 19).

Why it is built this way:
- Failed logins are counted in Redis, so an attacker cannot multiply the limit by the number of api
  processes behind a load balancer. One sorted set per client address and one for all clients, scored by
  Redis' own clock (`TIME` inside a Lua script), so hosts with slightly different clocks agree on the
  window and check-then-count is one atomic step: a burst of parallel guesses spread over processes
  cannot slip past the limit. Every key expires after the window, so nothing accumulates.
- The in-process LoginRateLimiter keeps counting next to Redis. While Redis is unreachable the attempts
  are limited per process (nobody is locked out and nobody gets unlimited guesses); after a Redis restart
  (no persistence) each process still remembers its own recent failures. The worst case during an outage
  is the limit times the number of api processes, for one window.
- Revocation (logout, a revoked API key) is final and rare, but must reach every process within a
  second. Every AuthService caches sessions (verification is on every request) and listens on the pub/sub
  channel `<prefix>:revoked`: the revoking process writes the database first and then publishes the jti,
  so any process that re-reads the row sees it revoked. Pub/sub loses what is published while a listener
  is disconnected, so it is not trusted alone:
  * every (re-)subscription, and every retry while Redis is down, re-reads the revoked flags of the
    cached sessions from the database (`resync`) - this keeps the memory-only WebSocket sweep honest;
  * the AuthService trusts a cached session for `session_trust` seconds only and then re-reads its row
    (one indexed lookup per active credential per second per process), so a request is refused within
    that time even when no message arrives at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from aniworldd.cluster.redis_link import RedisLink
from aniworldd.services.auth_service import LoginRateLimiter, RateLimited

log = logging.getLogger(__name__)

#: After Redis failed, the limiter uses only the local count for this long before it asks Redis again
#: (a login must not wait for a connect timeout on every attempt while Redis is away).
RETRY_INTERVAL = 1.0
#: Seconds between subscription attempts (and database re-syncs) while Redis is unreachable.
LISTEN_RETRY = 1.0
#: What the revocation listener waits for a message before it looks at its state again.
LISTEN_POLL = 1.0

_REDIS_DOWN = (RedisError, OSError, TimeoutError)

# KEYS: client set, global set. ARGV: window (microseconds), attempts, global attempts (< 0: none), member.
# Returns {verdict, wait_ms, count}: verdict 0 = counted, 1 = this client is over, 2 = everybody is over.
_BEGIN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local attempts = tonumber(ARGV[2])
local global = tonumber(ARGV[3])
local cutoff = now - window
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local n = redis.call('ZCARD', KEYS[1])
if n >= attempts then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, math.ceil((tonumber(first[2]) + window - now) / 1000), n}
end
local ttl = math.ceil(window / 1000)
if global >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  local g = redis.call('ZCARD', KEYS[2])
  if g >= global then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {2, math.ceil((tonumber(first[2]) + window - now) / 1000), g}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
return {0, 0, n + 1}
"""

_RETRY_AFTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  return -1
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.ceil((tonumber(first[2]) + window - now) / 1000)
"""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What `begin` counted: the local stamp and, when Redis took it, the member in the sorted sets."""

    stamp: float
    member: bytes | None


class SharedLoginRateLimiter:
    """LoginRateLimiter's rules (per client, across all clients, counted at the start of an attempt and
    forgiven on success) over Redis, with `local` counting alongside as the fallback. Async, because
    Redis is asked; `local` keeps its settings (attempts, window, global_attempts)."""

    def __init__(self, link: RedisLink, local: LoginRateLimiter) -> None:
        self.link = link
        self.local = local
        self._begin = link.client.register_script(_BEGIN)
        self._retry_after = link.client.register_script(_RETRY_AFTER)
        self._skip_until = 0.0
        self._degraded = False

    def _keys(self, client: str) -> list[str]:
        return [self.link.key("login", "client", client[:200]), self.link.key("login", "all")]

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """One script call; a connection error is tried once more on a fresh connection, because after
        a Redis restart every pooled connection fails once (worst case: one attempt counted twice)."""
        try:
            return await script(keys=keys, args=args)
        except RedisConnectionError:
            return await script(keys=keys, args=args)

    def _usable(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, exc: BaseException) -> None:
        self._skip_until = time.monotonic() + RETRY_INTERVAL
        if not self._degraded:
            self._degraded = True
            log.warning("redis unreachable (%s): failed logins are limited per process until it is back", exc)

    def _recovered(self) -> None:
        if self._degraded:
            self._degraded = False
            log.info("redis reachable again: failed logins are limited across the cluster")

    async def begin(self, client: str) -> Attempt:
        """Count an attempt; raise RateLimited when the client, or everybody together, is over the limit
        in this process or in the cluster."""
        stamp = self.local.begin(client)  # raises when this process alone already saw too many
        if not self._usable():
            return Attempt(stamp, None)
        member = f"{self.link.node}:{secrets.token_hex(8)}".encode()
        window_us = int(self.local.window * 1_000_000)
        limit = -1 if self.local.global_attempts is None else self.local.global_attempts
        try:
            verdict, wait_ms, count = await self._run(
                self._begin, self._keys(client), [window_us, self.local.attempts, limit, member]
            )
        except _REDIS_DOWN as exc:
            self._failed(exc)
            return Attempt(stamp, None)
        self._recovered()
        if verdict == 0:
            return Attempt(stamp, member)
        self.local.succeed(client, stamp)  # refused attempts do not count, as in LoginRateLimiter
        if verdict == 1:
            raise RateLimited("too many failed login attempts; try again later", wait_ms / 1000)
        log.warning("login refused for %s: %d failed logins in the cluster within the window", client, count)
        raise RateLimited("too many failed login attempts on this server; try again later", wait_ms / 1000)

    async def succeed(self, client: str, attempt: Attempt) -> None:
        """A correct password: the attempt is forgiven here and (best effort) in Redis."""
        self.local.succeed(client, attempt.stamp)
        if attempt.member is None:
            return
        keys = self._keys(client)
        try:
            async with self.link.client.pipeline(transaction=False) as pipe:
                pipe.zrem(keys[0], attempt.member)
                pipe.zrem(keys[1], attempt.member)
                await pipe.execute()
        except _REDIS_DOWN as exc:  # the attempt stays counted until the window ends: harmless
            log.debug("cannot forgive a login attempt in redis: %s", exc)

    async def retry_after(self, client: str) -> float | None:
        """Seconds until `client` may try again (the later of the local and the cluster view), or None."""
        local = self.local.retry_after(client)
        if not self._usable():
            return local
        try:
            wait_ms = await self._run(
                self._retry_after,
                self._keys(client)[:1],
                [int(self.local.window * 1_000_000), self.local.attempts],
            )
        except _REDIS_DOWN as exc:
            self._failed(exc)
            return local
        self._recovered()
        shared = None if wait_ms < 0 else wait_ms / 1000
        if local is None or shared is None:
            return local if shared is None else shared
        return max(local, shared)


class RevocationChannel:
    """Publishes revoked jtis and listens for those of other processes (see the module docstring).

    `on_revoked(jti)` marks a cached session revoked; `resync()` re-reads the revoked flags of the cached
    sessions from the database after anything could have been missed.
    """

    def __init__(
        self,
        link: RedisLink,
        on_revoked: Callable[[str], None],
        resync: Callable[[], Awaitable[Any]],
    ) -> None:
        self.link = link
        self.channel = link.key("revoked")
        self.on_revoked = on_revoked
        self.resync = resync
        #: Set while subscribed; tests and /health may look at it.
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._degraded = False
        self._closed = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="auth-revocations")

    async def close(self) -> None:
        """Stop listening. redis-py can turn a cancellation that lands in a timed read into a TimeoutError,
        which the retry loop would swallow, so the loop also checks a flag and the cancel is repeated."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        for _ in range(10):
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if done:
                if not task.cancelled() and task.exception() is not None:
                    log.debug("revocation listener ended with %r", task.exception())
                return
        log.warning("the revocation listener did not stop")

    async def publish(self, jti: str) -> bool:
        """Tell the other processes; False when Redis is away (their cache trust time covers it)."""
        try:
            await self.link.client.publish(self.channel, jti.encode())
            return True
        except _REDIS_DOWN as exc:
            log.warning("cannot announce a revoked session (%s); the others notice it within a second", exc)
            return False

    async def _resync(self) -> None:
        try:
            await self.resync()
        except Exception:  # the database may be away too; the next retry or the trust time covers it
            log.debug("cannot re-read revoked sessions", exc_info=True)

    async def _run(self) -> None:
        while not self._closed:
            pubsub = self.link.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while not self._closed:
                    message = await pubsub.get_message(timeout=LISTEN_POLL)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":  # first or after redis-py reconnected by itself
                        self.subscribed.set()
                        if self._degraded:
                            self._degraded = False
                            log.info("redis reachable again: session revocations are shared again")
                        await self._resync()
                    elif message["type"] == "message":
                        data = message["data"]
                        self.on_revoked(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis away (or a protocol surprise): re-subscribe after a pause
                self.subscribed.clear()
                if self._closed:
                    return
                if not self._degraded:
                    self._degraded = True
                    log.warning("redis unreachable (%s): revoked sessions are re-read from the database", exc)
                await self._resync()
                await asyncio.sleep(LISTEN_RETRY)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
