"""/ws/connect: live events in rooms, the seed's message types and envelope.

One subscription to the EventBus feeds every client: each event is encoded once and offered to the
members of its room (events.WS_ROOMS). Each client has a bounded send queue drained by its own task, so a
client that cannot keep up fills only its own queue and is then dropped (close code 1008) — it never slows
the others, the publisher or the daemon. Protocol-level ping/pong (aiohttp heartbeat) drops dead peers;
`{"action": "ping"}` answers a `pong` message for clients that want an application-level keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from datetime import UTC, datetime

from aiohttp import WSCloseCode, WSMsgType, web

from aniworldd import events
from aniworldd.api.common import CTX, IDENTITY, dumps
from aniworldd.events import Event, EventBus, iso_timestamp

log = logging.getLogger(__name__)

ROOMS = tuple(sorted(set(events.WS_ROOMS.values())))
#: Types whose data describe one series: the envelope promises "key" and "folder" in them.
_KEYED = {
    events.DOWNLOAD_PROGRESS,
    events.DOWNLOAD_COMPLETE,
    events.DOWNLOAD_FAILED,
    events.SCAN_PROGRESS,
    events.SCAN_COMPLETE,
    events.SCAN_FAILED,
}
CLOSE_TOO_SLOW = 1008  # policy violation: the client does not read fast enough
CLOSE_REVOKED = 4001  # the session was logged out or expired


def message(type_: str, data: dict) -> str:
    return dumps({"type": type_, "timestamp": iso_timestamp(), "data": data})


def encode_event(event: Event) -> str:
    data = event.data
    if event.type in _KEYED and ("key" not in data or "folder" not in data):
        data = {"key": None, "folder": None, **data}
    return dumps({"type": event.type, "timestamp": iso_timestamp(event.timestamp), "data": data})


class Client:
    __slots__ = ("id", "ws", "rooms", "queue", "jti", "sender", "closed", "expiry", "transport")

    def __init__(
        self,
        client_id: int,
        ws: web.WebSocketResponse,
        queue_size: int,
        jti: str | None,
        transport: asyncio.BaseTransport | None,
    ) -> None:
        self.id = client_id
        self.ws = ws
        self.rooms: set[str] = set()
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.jti = jti
        self.sender: asyncio.Task | None = None
        self.closed = False
        self.expiry: asyncio.TimerHandle | None = None
        self.transport = transport

    def offer(self, text: str) -> bool:
        """Queue a message without waiting; False when the queue is full (the client is too slow)."""
        if self.closed:
            return True
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True


class Hub:
    def __init__(self, bus: EventBus, queue_size: int = 256, heartbeat: float = 30.0) -> None:
        self.bus = bus
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self.rooms: dict[str, set[Client]] = {room: set() for room in ROOMS}
        self.clients: dict[int, Client] = {}
        self._ids = itertools.count(1)
        self._sub: events.Subscription | None = None
        self._task: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()
        self.dropped_slow = 0
        self.sent = 0

    # --- life cycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._sub = self.bus.subscribe(set(events.WS_ROOMS), maxsize=10_000)
            self._task = asyncio.ensure_future(self._fanout())
            self._task.set_name("ws-fanout")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        clients = list(self.clients.values())
        await asyncio.gather(
            *(self._close(c, WSCloseCode.GOING_AWAY, "server shutting down") for c in clients),
            return_exceptions=True,
        )
        for task in list(self._closing):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task

    async def _fanout(self) -> None:
        assert self._sub is not None
        async for event in self._sub:
            try:
                self.publish(event)
            except Exception:  # one bad payload must not end the fan-out for everybody
                log.exception("cannot send %s to WebSocket clients", event.type)

    def publish(self, event: Event) -> None:
        room = events.WS_ROOMS.get(event.type)
        members = self.rooms.get(room) if room else None
        if not members:
            return
        text = encode_event(event)
        for client in list(members):
            if not client.offer(text):
                self.dropped_slow += 1
                log.info("WebSocket client %s dropped: it does not keep up (send queue full)", client.id)
                self.drop(client, CLOSE_TOO_SLOW, "too slow: send queue full")

    # --- clients --------------------------------------------------------------------------------------

    def register(self, ws: web.WebSocketResponse, request: web.Request) -> Client:
        identity = request.get(IDENTITY)
        client = Client(
            next(self._ids), ws, self.queue_size, identity.jti if identity else None, request.transport
        )
        self.clients[client.id] = client
        client.sender = asyncio.ensure_future(self._send_loop(client))
        expires = getattr(identity, "expires_at", None)
        if expires is not None:
            delay = max(0.0, (expires - datetime.now(UTC)).total_seconds())
            client.expiry = asyncio.get_running_loop().call_later(
                delay, self.drop, client, CLOSE_REVOKED, "token expired"
            )
        return client

    def unregister(self, client: Client) -> None:
        client.closed = True
        self.clients.pop(client.id, None)
        for room in client.rooms:
            self.rooms[room].discard(client)
        client.rooms.clear()
        if client.expiry is not None:
            client.expiry.cancel()
        if client.sender is not None and not client.sender.done():
            client.sender.cancel()

    async def _send_loop(self, client: Client) -> None:
        try:
            while True:
                text = await client.queue.get()
                await client.ws.send_str(text)
                self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away; the receive loop notices and cleans up
            log.debug("send to WebSocket client %s failed", client.id, exc_info=True)
            self.drop(client, WSCloseCode.GOING_AWAY, "send failed")

    def drop(self, client: Client, code: int, reason: str) -> None:
        """Disconnect without waiting (callable from the fan-out loop and timers)."""
        if client.closed:
            return
        task = asyncio.ensure_future(self._close(client, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, client: Client, code: int, reason: str) -> None:
        self.unregister(client)
        if code == CLOSE_TOO_SLOW:
            # It does not read, so it would not take a close frame either: cut the connection.
            if client.transport is not None and not client.transport.is_closing():
                client.transport.abort()
            return
        try:
            await asyncio.wait_for(client.ws.close(code=code, message=reason.encode()), timeout=2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            if client.transport is not None and not client.transport.is_closing():
                client.transport.abort()

    async def disconnect_session(self, jti: str) -> None:
        """Logout: connections opened with that token end too."""
        for client in [c for c in self.clients.values() if c.jti == jti]:
            await self._close(client, CLOSE_REVOKED, "logged out")

    def join(self, client: Client, room: str) -> None:
        client.rooms.add(room)
        self.rooms[room].add(client)

    def leave(self, client: Client, room: str) -> None:
        client.rooms.discard(room)
        self.rooms[room].discard(client)

    def stats(self) -> dict:
        return {
            "clients": len(self.clients),
            "rooms": {room: len(members) for room, members in self.rooms.items()},
            "dropped_slow": self.dropped_slow,
            "sent": self.sent,
        }


HUB = web.AppKey("ws_hub", Hub)


async def _snapshot(request: web.Request, client: Client, room: str) -> None:
    """On joining `downloads`, send the current queue status so a fresh page does not wait for a change."""
    if room != "downloads":
        return
    queue = request.app[CTX].queue
    if queue is None:
        return
    try:
        client.offer(message(events.QUEUE_STATUS, await queue.status()))
    except Exception:
        log.debug("queue snapshot for WebSocket client failed", exc_info=True)


async def _handle(request: web.Request, hub: Hub, client: Client, raw: str) -> None:
    text = raw.strip()
    if text.lower() == "ping":
        client.offer(message("pong", {}))
        return
    try:
        msg = json.loads(text)
    except ValueError:
        client.offer(
            message(
                "error", {"message": 'expected a JSON object like {"action": "join", "room": "downloads"}'}
            )
        )
        return
    if not isinstance(msg, dict):
        client.offer(message("error", {"message": "expected a JSON object"}))
        return
    action = msg.get("action")
    if action == "ping":
        client.offer(message("pong", {}))
        return
    if action in ("join", "leave"):
        rooms = msg.get("rooms") if "rooms" in msg else [msg.get("room")]
        if not isinstance(rooms, list) or not rooms:
            rooms = [None]
        for room in rooms:
            if room not in ROOMS:
                client.offer(message("error", {"message": f"unknown room {room!r}", "rooms": list(ROOMS)}))
                continue
            if action == "join":
                hub.join(client, room)
            else:
                hub.leave(client, room)
            client.offer(
                message(
                    "joined" if action == "join" else "left", {"room": room, "rooms": sorted(client.rooms)}
                )
            )
            if action == "join":
                await _snapshot(request, client, room)
        return
    client.offer(message("error", {"message": f"unknown action {action!r}; expected join, leave or ping"}))


async def connect(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=hub.heartbeat, max_msg_size=64 * 1024)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="expected a WebSocket upgrade request")
    await ws.prepare(request)
    client = hub.register(ws, request)
    try:
        initial = [r.strip() for r in request.query.get("rooms", "").split(",") if r.strip()]
        for room in initial:
            if room in ROOMS:
                hub.join(client, room)
        client.offer(message("connected", {"rooms": sorted(client.rooms), "available_rooms": list(ROOMS)}))
        for room in sorted(client.rooms):
            await _snapshot(request, client, room)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await _handle(request, hub, client, msg.data)
            elif msg.type == WSMsgType.BINARY:
                client.offer(message("error", {"message": "binary messages are not supported"}))
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        hub.unregister(client)
    return ws
