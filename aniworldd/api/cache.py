"""Serialized-response cache for the hot read routes, invalidated by events.

GET /api/anime (thousands of series) and GET /api/queue/status (polled by every open UI and script) would
otherwise rebuild and re-encode the same JSON for each request. Every state change goes through the
EventBus, so entries are dropped when a relevant event is published; a generation counter makes sure a
value computed while an event arrived is not stored as fresh. Concurrent misses share one computation.
A short TTL is a safety net for changes that forgot to publish: an expired entry is served once more while
it is refreshed in the background (stale-while-revalidate), so the TTL never adds latency.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from aniworldd import events
from aniworldd.api.common import dumps
from aniworldd.events import Event, EventBus

log = logging.getLogger(__name__)

#: Gzip a cached body when it is at least this large and the client accepts it.
GZIP_MIN_BYTES = 4096

#: Events after which the queue status may have changed.
QUEUE_EVENTS = frozenset(
    {
        events.QUEUE_STATUS,
        events.DOWNLOAD_PROGRESS,
        events.DOWNLOAD_COMPLETE,
        events.DOWNLOAD_FAILED,
    }
)
#: Events that never change what GET /api/anime returns (everything else invalidates it). queue_status does
#: (each summary carries its queued_count); it is published once per queue change, not per progress tick.
ANIME_IGNORED = frozenset({events.DOWNLOAD_PROGRESS, events.SCAN_PROGRESS})


def _encode(data: Any) -> tuple[bytes, bytes | None]:
    body = dumps(data).encode("utf-8")
    return body, gzip.compress(body, compresslevel=5) if len(body) >= GZIP_MIN_BYTES else None


@dataclass(slots=True)
class Entry:
    body: bytes
    gzipped: bytes | None
    generation: int
    stored_at: float

    def payload(self, accept_gzip: bool) -> tuple[bytes, bool]:
        if accept_gzip and self.gzipped is not None:
            return self.gzipped, True
        return self.body, False


class Region:
    """One family of cached responses sharing an invalidation rule and a TTL."""

    def __init__(self, name: str, ttl: float, invalidated_by: Callable[[str], bool]) -> None:
        self.name = name
        self.ttl = ttl
        self.invalidated_by = invalidated_by
        self.generation = 0
        self._entries: dict[Any, Entry] = {}
        self._inflight: dict[Any, tuple[int, asyncio.Future]] = {}
        self.hits = 0
        self.misses = 0

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def get(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Entry:
        entry = self._entries.get(key)
        if entry is not None:
            self.hits += 1
            if time.monotonic() - entry.stored_at > self.ttl and key not in self._inflight:
                self._start(key, compute)  # refresh in the background, answer with what we have
            return entry
        self.misses += 1
        running = self._inflight.get(key)
        # A computation started before the last invalidation may predate the change: do not join it.
        future = (
            running[1] if running is not None and running[0] == self.generation else self._start(key, compute)
        )
        return await asyncio.shield(future)

    def _start(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> asyncio.Future:
        generation = self.generation
        future = asyncio.ensure_future(self._compute(key, compute, generation))
        self._inflight[key] = (generation, future)
        future.add_done_callback(lambda f: self._done(key, f))
        return future

    async def _compute(self, key: Any, compute: Callable[[], Awaitable[Any]], generation: int) -> Entry:
        data = await compute()
        # Encoding thousands of series takes milliseconds: keep it off the event loop.
        body, gzipped = await asyncio.to_thread(_encode, data)
        entry = Entry(body, gzipped, generation, time.monotonic())
        if generation == self.generation:
            self._entries[key] = entry
        return entry

    def _done(self, key: Any, future: asyncio.Future) -> None:
        running = self._inflight.get(key)
        if running is not None and running[1] is future:
            del self._inflight[key]
        if not future.cancelled() and future.exception() is not None:
            log.debug("computing %s failed", self.name, exc_info=future.exception())


class ResponseCache:
    def __init__(self, bus: EventBus) -> None:
        self.anime = Region("anime", ttl=30.0, invalidated_by=lambda t: t not in ANIME_IGNORED)
        self.queue = Region("queue", ttl=2.0, invalidated_by=lambda t: t in QUEUE_EVENTS)
        self.regions = (self.anime, self.queue)
        bus.add_listener(self._on_event, scope="cluster")

    def _on_event(self, event: Event) -> None:
        for region in self.regions:
            if region.invalidated_by(event.type):
                region.invalidate()

    def invalidate_all(self) -> None:
        for region in self.regions:
            region.invalidate()


CACHE = web.AppKey("response_cache", ResponseCache)


def cached_response(request: web.Request, entry: Entry) -> web.Response:
    """The cached body, gzipped when the client accepts it (a fraction of the bytes for big lists)."""
    accept_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    payload, gzipped = entry.payload(accept_gzip)
    response = web.Response(body=payload, content_type="application/json")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response
