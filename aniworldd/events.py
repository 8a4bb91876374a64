"""The in-process event bus every state change goes through.

Services publish and never know who listens; the WebSocket hub, the MQTT bridge, webhooks and metrics
are only subscribers. A slow subscriber loses its oldest events instead of slowing the publisher.

Two scopes, for more than one process: a "local" subscriber (webhooks, metrics ...) sees the events
published in its own process, so a side effect happens once, where the thing happened; a "cluster" subscriber
(WebSocket hub, MQTT bridge, response cache) sees the events of every process, because its clients may be
connected to any of them. Without a relay (one process) both scopes get every event at once, as they always
did.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

DOWNLOAD_PROGRESS = "download_progress"
DOWNLOAD_COMPLETE = "download_complete"
DOWNLOAD_FAILED = "download_failed"
QUEUE_STATUS = "queue_status"
#: Started/stopped/paused changed (several processes: the workers apply what an API process saved).
QUEUE_CONTROL = "queue_control"
SCAN_PROGRESS = "scan_progress"
SCAN_COMPLETE = "scan_complete"
SCAN_FAILED = "scan_failed"
SERIES_ADDED = "series_added"
SERIES_UPDATED = "series_updated"
NEW_EPISODES = "new_episodes"
#: A series was removed from the library (DELETE /api/anime/{key}): open UIs leave its page, MQTT tells it.
SERIES_REMOVED = "series_removed"
CONFIG_CHANGED = "config_changed"
#: Provider reachability changed (a captcha / browser check started or ended): webhooks, MQTT, UI banner.
HEALTH = "health"

#: The seed's WebSocket message types and the room each one goes to.
WS_ROOMS: dict[str, str] = {
    DOWNLOAD_PROGRESS: "download_progress",
    DOWNLOAD_COMPLETE: "downloads",
    DOWNLOAD_FAILED: "downloads",
    QUEUE_STATUS: "downloads",
    SCAN_PROGRESS: "scan_progress",
    SCAN_COMPLETE: "scan_progress",
    SCAN_FAILED: "scan_progress",
    HEALTH: "downloads",
    SERIES_REMOVED: "downloads",
}


def json_default(value: Any) -> Any:
    """Encode what service dicts carry: datetimes as ISO-8601 UTC `...Z` (naive ones come from the DB and
    are UTC), dates, paths, sets, enums, objects with `to_dict()`; anything else is a TypeError."""
    if isinstance(value, datetime):
        return iso_timestamp(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Enum):
        return value.value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _lenient_default(value: Any) -> Any:
    try:
        return json_default(value)
    except TypeError:
        return str(value)


def to_json(data: Any, *, lenient: bool = False) -> str:
    """Compact JSON for every wire (API, WebSocket, MQTT, webhooks). `lenient` turns values that cannot be
    encoded into strings instead of failing: for publishers that must never drop a message over one field."""
    default = _lenient_default if lenient else json_default
    return json.dumps(data, default=default, ensure_ascii=False, separators=(",", ":"))


def iso_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`, as the seed's envelope requires."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


Scope = Literal["local", "cluster"]
SCOPES: tuple[Scope, ...] = ("local", "cluster")


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    data: dict
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The node that published it ("" in a single process): tells a relayed event from one of our own.
    origin: str = ""

    def envelope(self) -> dict:
        return {"type": self.type, "timestamp": iso_timestamp(self.timestamp), "data": self.data}

    def to_wire(self) -> bytes:
        """JSON for the Redis stream; lenient, because a relayed event must never fail over one field (the
        receiving side gets such values as strings, which is what every wire would have sent anyway)."""
        wire = {"type": self.type, "data": self.data, "ts": self.timestamp.isoformat(), "origin": self.origin}
        return to_json(wire, lenient=True).encode()

    @classmethod
    def from_wire(cls, raw: bytes | str) -> Event:
        wire = json.loads(raw)
        return cls(
            wire["type"], wire.get("data") or {}, datetime.fromisoformat(wire["ts"]), wire.get("origin", "")
        )


class Relay(Protocol):
    """Carries events to every process (aniworldd/cluster/event_relay.py) and hands each one back to
    `EventBus.deliver_cluster` in every process, this one included."""

    node: str

    def send(self, event: Event) -> None: ...


class Subscription:
    """A bounded mailbox; when full, the oldest event is dropped (counted in `dropped`)."""

    def __init__(self, bus: EventBus, types: set[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.types = types
        self._items: collections.deque[Event] = collections.deque(maxlen=maxsize)
        self._waiter = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def _offer(self, event: Event) -> None:
        if self.types is not None and event.type not in self.types:
            return
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(event)
        self._waiter.set()

    def get_nowait(self) -> Event | None:
        return self._items.popleft() if self._items else None

    async def get(self) -> Event:
        while not self._items:
            if self.closed:
                raise StopAsyncIteration
            self._waiter.clear()
            await self._waiter.wait()
        return self._items.popleft()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def close(self) -> None:
        self.closed = True
        self._waiter.set()
        self._bus._remove(self)


class EventBus:
    """Publish from anywhere (even a worker thread); deliver on the event loop."""

    def __init__(self) -> None:
        self._subs: dict[Scope, list[Subscription]] = {scope: [] for scope in SCOPES}
        self._listeners: dict[Scope, list[Callable[[Event], None]]] = {scope: [] for scope in SCOPES}
        self._relay: Relay | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def _bind(self) -> None:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
                self._loop_thread = threading.get_ident()
            except RuntimeError:
                pass

    def subscribe(
        self, types: set[str] | None = None, maxsize: int = 1000, *, scope: Scope = "local"
    ) -> Subscription:
        self._bind()
        sub = Subscription(self, set(types) if types is not None else None, maxsize)
        self._subs[_checked(scope)].append(sub)
        return sub

    def add_listener(self, listener: Callable[[Event], None], *, scope: Scope = "local") -> None:
        """A synchronous callback run on the loop for every event (counters, metrics). Must be cheap."""
        self._listeners[_checked(scope)].append(listener)

    def _remove(self, sub: Subscription) -> None:
        for subs in self._subs.values():
            if sub in subs:
                subs.remove(sub)

    def set_relay(self, relay: Relay | None) -> None:
        """From now on cluster-scope subscribers get events only through `deliver_cluster` (called by the
        relay for every event of every process, ours included), so each one arrives exactly once."""
        self._relay = relay

    @property
    def relay(self) -> Relay | None:
        return self._relay

    def publish(self, type: str, data: dict) -> Event:
        relay = self._relay
        event = Event(type, data, origin=relay.node if relay is not None else "")
        self._bind()
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._dispatch, event)
        else:
            self._dispatch(event)
        return event

    def _dispatch(self, event: Event) -> None:
        relay = self._relay
        if relay is None:
            self._deliver(event, SCOPES)
            return
        self._deliver(event, ("local",))
        try:
            relay.send(event)
        except Exception:  # the relay must never break the publisher
            log.exception("event relay failed for %s", event.type)

    def deliver_cluster(self, event: Event) -> None:
        """An event from the relay (any process): to cluster-scope subscribers only. Call on the loop."""
        self._deliver(event, ("cluster",))

    def _deliver(self, event: Event, scopes: tuple[Scope, ...]) -> None:
        for scope in scopes:
            for listener in list(self._listeners[scope]):
                try:
                    listener(event)
                except Exception:  # a broken listener must never break the publisher
                    log.exception("event listener failed for %s", event.type)
        for scope in scopes:
            for sub in list(self._subs[scope]):
                sub._offer(event)


def _checked(scope: str) -> Scope:
    if scope not in SCOPES:
        raise ValueError(f"unknown event scope {scope!r} (expected one of {', '.join(SCOPES)})")
    return scope  # type: ignore[return-value]
