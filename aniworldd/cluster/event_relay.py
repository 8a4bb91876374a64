"""Carries bus events between processes through one Redis stream.

Every process appends what it publishes (XADD, trimmed to about MAX_STREAM entries) and reads the whole
stream from where it last was (XREAD BLOCK), its own entries included, so a cluster-scope subscriber sees the
events of every process in one order, each once. A stream (not pub/sub) because a reader that lost its
connection picks up where it stopped instead of missing what was said meanwhile.

While Redis is away, `send()` keeps events in a bounded buffer that the writer flushes in order when Redis is
back. Each entry carries (instance, seq) of its writer: an XADD retried after a lost reply, or a stream
replayed from an older point, is then recognised and not delivered twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import secrets
import threading
import time
from typing import Any

from aniworldd.cluster.redis_link import RedisLink
from aniworldd.events import Event, EventBus

log = logging.getLogger(__name__)

#: Entries the stream keeps (approximately): enough for a reader that was away a few seconds.
MAX_STREAM = 10_000
#: Events kept in memory while Redis is unreachable; beyond that the oldest are dropped (and counted).
MAX_BUFFER = 10_000
#: How long one XREAD waits for news; well under the link's socket timeout.
BLOCK_MS = 1000
BATCH = 200
BACKOFF_MIN = 0.2
BACKOFF_MAX = 2.0
START = b"0-0"


class RedisEventRelay:
    """The bus's relay (`EventBus.set_relay`): `send()` on publish, `bus.deliver_cluster()` on every read."""

    def __init__(self, link: RedisLink, bus: EventBus, *, buffer: int = MAX_BUFFER) -> None:
        self.link = link
        self.bus = bus
        self.node = link.node
        self.stream = link.key("events")
        #: Tells this relay's entries from those of an earlier process with the same configured node name.
        self._instance = f"{self.node}/{secrets.token_hex(4)}".encode()
        self._seq = itertools.count(1)
        self._buffer: collections.deque[tuple[int, dict[bytes, bytes]]] = collections.deque(maxlen=buffer)
        self._wake = asyncio.Event()
        self._positioned = asyncio.Event()
        self._last_id: bytes | None = None
        self._seen: dict[bytes, int] = {}
        self._failing: set[str] = set()
        self._down_since: float | None = None
        self._drop_warned = False
        self._tasks: list[asyncio.Task] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.sent = 0
        self.received = 0
        self.dropped = 0
        self.last_error: str | None = None

    # --- life cycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Attach to the bus and start reading from the stream's current end; waits at most a second for
        Redis (an unreachable one is the reader's business, not the startup's)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        # Taking the position here (when Redis answers) means events published by any process after
        # start() returns reach us; if Redis is down, the reader takes it when Redis is back.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._position(), 1.0)
        self.bus.set_relay(self)
        for coro, name in (
            (self._read_loop(), "event-relay-reader"),
            (self._write_loop(), "event-relay-writer"),
        ):
            task = asyncio.ensure_future(coro)
            task.set_name(name)
            self._tasks.append(task)

    async def close(self) -> None:
        """Detach from the bus, stop both tasks and give what is still buffered one short chance to go out."""
        if self.bus.relay is self:
            self.bus.set_relay(None)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._buffer and self._positioned.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flush(), 2.0)
        if self._buffer:
            log.info("event relay: %d events not sent to Redis at shutdown", len(self._buffer))

    # --- publishing side ----------------------------------------------------------------------------

    def send(self, event: Event) -> None:
        """Queue one event for the stream. Never blocks and never raises (it runs inside publish())."""
        try:
            seq = next(self._seq)
            if len(self._buffer) == self._buffer.maxlen:
                if not self._drop_warned:
                    log.warning(
                        "event relay: buffer full (%d events), dropping the oldest", len(self._buffer)
                    )
                    self._drop_warned = True
                self.dropped += 1
            self._buffer.append((seq, {b"e": event.to_wire(), b"i": self._instance, b"n": str(seq).encode()}))
            loop = self._loop
            if loop is not None and threading.get_ident() != self._loop_thread:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self._wake.set)
            else:
                self._wake.set()
        except Exception:  # an event that cannot be relayed must not break its publisher
            log.exception("event relay: cannot queue %s", event.type)

    async def _write_loop(self) -> None:
        # Our own events must not reach the stream before the reader knows where it starts reading.
        await self._positioned.wait()
        backoff = BACKOFF_MIN
        while True:
            if not self._buffer:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._went_down("writer", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self._came_back("writer")
            backoff = BACKOFF_MIN

    async def _flush(self) -> None:
        """XADD the buffer in order, a batch per round trip; an entry leaves the buffer once Redis has it."""
        client = self.link.client
        while self._buffer:
            batch = list(itertools.islice(self._buffer, BATCH))
            pipe = client.pipeline(transaction=False)
            for _, fields in batch:
                pipe.xadd(self.stream, fields, maxlen=MAX_STREAM, approximate=True)
            await pipe.execute()
            self.sent += len(batch)
            # send() may have pushed entries out of the left end meanwhile: pop by seq, not by count.
            last = batch[-1][0]
            while self._buffer and self._buffer[0][0] <= last:
                self._buffer.popleft()

    # --- reading side -------------------------------------------------------------------------------

    async def _position(self) -> None:
        """Start after the newest entry now in the stream (the "$" of this moment, as a real id)."""
        if self._last_id is None:
            newest = await self.link.client.xrevrange(self.stream, count=1)
            self._last_id = newest[0][0] if newest else START
        self._positioned.set()

    async def _read_loop(self) -> None:
        client = self.link.client
        backoff = BACKOFF_MIN
        check_resume = False
        while True:
            try:
                await self._position()
                if check_resume:
                    await self._check_resume()
                    check_resume = False
                reply = await client.xread({self.stream: self._last_id}, count=BATCH * 5, block=BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._went_down("reader", exc)
                check_resume = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self._came_back("reader")
            backoff = BACKOFF_MIN
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self._deliver(fields)

    async def _check_resume(self) -> None:
        """After an outage: if our last entry is gone, the stream was reset (a Redis restart without
        persistence) or trimmed past us; everything in it is then newer, so read it from the start. The
        new ids are usually larger anyway, but not if the Redis host's clock went back."""
        last = self._last_id
        if last is not None and last != START:
            if not await self.link.client.xrange(self.stream, min=last, max=last, count=1):
                self._last_id = START

    def _deliver(self, fields: dict[bytes, Any]) -> None:
        try:
            instance, seq = fields[b"i"], int(fields[b"n"])
            if seq <= self._seen.get(instance, 0):
                return  # a duplicate XADD (retried after a lost reply) or a replayed entry
            self._seen[instance] = seq
            event = Event.from_wire(fields[b"e"])
        except Exception as exc:  # somebody else's or a broken entry: skip it, do not stop reading
            log.debug("event relay: skipping unreadable entry: %s", exc)
            return
        self.received += 1
        self.bus.deliver_cluster(event)

    # --- health -------------------------------------------------------------------------------------

    def _went_down(self, part: str, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self._failing:
            self._down_since = time.monotonic()
            log.warning(
                "event relay: Redis unreachable (%s); buffering events until it is back", self.last_error
            )
        self._failing.add(part)

    def _came_back(self, part: str) -> None:
        if part not in self._failing:
            return
        self._failing.discard(part)
        if not self._failing and self._down_since is not None:
            log.info(
                "event relay: Redis is back after %.1f s (%d events buffered, %d dropped)",
                time.monotonic() - self._down_since,
                len(self._buffer),
                self.dropped,
            )
            self._down_since = None
            self._drop_warned = False

    @property
    def connected(self) -> bool:
        return bool(self._tasks) and self._positioned.is_set() and not self._failing

    def state(self) -> dict:
        """For /health."""
        return {
            "connected": self.connected,
            "stream": self.stream,
            "buffered": len(self._buffer),
            "sent": self.sent,
            "received": self.received,
            "dropped": self.dropped,
            "last_error": self.last_error,
        }
