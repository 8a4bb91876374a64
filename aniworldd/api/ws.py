"""/ws/connect: live events in rooms, the seed's message types and envelope.

One subscription to the EventBus feeds every client: each event is encoded ONCE into a complete WebSocket
frame and that same frame is written to the transport of every member of its room (events.WS_ROOMS) —
no per-client task wake-up or re-encoding per message, which is what keeps the fan-out to hundreds of
clients cheap on a 2-core NAS. Each client's send queue is its transport's write buffer, bounded in bytes:
a client that does not read fills only its own buffer and, past the bound, is dropped (its connection is
cut) — it never slows the others, the publisher or the daemon. Protocol-level ping/pong (aiohttp heartbeat)
drops dead peers; `{"action": "ping"}` answers a `pong` message for clients that want an app-level keep-alive.
Server messages are the seed's event types only, plus `pong` (answering ping) and `error` (answering a
message the server cannot use); joins and leaves are not acknowledged, a ping after them is the barrier.
Writing whole frames straight to the transport is safe next to aiohttp's own writer because compression is
off and every write is one complete frame issued on the event loop (frames never interleave).
A socket lives no longer than its credential: logout and key revocation close the sockets opened with that
credential at once, and while sockets are open a sweep twice a second re-checks each one's credential in
memory (one stat of auth.json), so a password changed by `aniworldd set-password` in another process closes
the sockets of every older token within a second, with CLOSE_REVOKED.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import struct
from datetime import UTC, datetime

from aiohttp import WSCloseCode, WSMsgType, web

from aniworldd import events
from aniworldd.api.cache import CACHE
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
CLOSE_REVOKED = 4401  # 4000 + HTTP 401: logged out, password changed, key revoked or token expired
#: Seconds between two credential checks of the open sockets.
REVOCATION_SWEEP = 0.5


def frame(text: str) -> bytes:
    """A complete unmasked, uncompressed text frame (RFC 6455 section 5.2), as a server sends it."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def message(type_: str, data: dict) -> bytes:
    return frame(dumps({"type": type_, "timestamp": iso_timestamp(), "data": data}))


def encode_event(event: Event) -> bytes:
    data = event.data
    if event.type in _KEYED and ("key" not in data or "folder" not in data):
        data = {"key": None, "folder": None, **data}
    return frame(dumps({"type": event.type, "timestamp": iso_timestamp(event.timestamp), "data": data}))


class Client:
    __slots__ = ("id", "ws", "rooms", "jti", "closed", "expiry", "transport", "max_buffer", "identity")

    def __init__(
        self,
        client_id: int,
        ws: web.WebSocketResponse,
        max_buffer: int,
        jti: str | None,
        transport: asyncio.Transport | None,
    ) -> None:
        self.id = client_id
        self.ws = ws
        self.rooms: set[str] = set()
        self.jti = jti
        self.closed = False
        self.expiry: asyncio.TimerHandle | None = None
        self.transport = transport
        self.max_buffer = max_buffer
        self.identity: object | None = None

    def offer(self, data: bytes) -> bool:
        """Write one frame without waiting; False when the client is too far behind (buffer full).

        "Behind" means unsent bytes are waiting: a frame bigger than the bound still goes to a client whose
        buffer is empty (it kept up; the message is big), or one big message drops every reader at once.
        """
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return True  # going away anyway; the receive loop cleans up
        waiting = transport.get_write_buffer_size()
        if waiting and waiting + len(data) > self.max_buffer:
            return False
        transport.write(data)
        return True


class Hub:
    def __init__(self, bus: EventBus, max_buffer: int = 1 << 20, heartbeat: float = 30.0) -> None:
        self.bus = bus
        #: bytes a client may have unsent before it counts as too slow and is dropped
        self.max_buffer = max_buffer
        self.heartbeat = heartbeat
        self.rooms: dict[str, set[Client]] = {room: set() for room in ROOMS}
        self.clients: dict[int, Client] = {}
        self._ids = itertools.count(1)
        self._sub: events.Subscription | None = None
        self._task: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()
        self._auth: object | None = None
        self._sweeper: asyncio.Task | None = None
        self.dropped_slow = 0
        self.sent = 0

    # --- life cycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._sub = self.bus.subscribe(set(events.WS_ROOMS), maxsize=10_000, scope="cluster")
            self._task = asyncio.ensure_future(self._fanout())
            self._task.set_name("ws-fanout")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
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
        data = encode_event(event)
        for client in list(members):
            if client.offer(data):
                self.sent += 1
            else:
                self.dropped_slow += 1
                log.info("WebSocket client %s dropped: it does not keep up (send queue full)", client.id)
                self.drop(client, CLOSE_TOO_SLOW, "too slow: send queue full")

    # --- clients --------------------------------------------------------------------------------------

    def register(self, ws: web.WebSocketResponse, request: web.Request) -> Client:
        """Track a connection; a login token's expiry schedules its close (API keys do not expire)."""
        identity = request.get(IDENTITY)
        transport = request.transport if isinstance(request.transport, asyncio.Transport) else None
        client = Client(next(self._ids), ws, self.max_buffer, identity.jti if identity else None, transport)
        client.identity = identity
        self.clients[client.id] = client
        auth = request.app[CTX].auth
        if identity is not None and auth is not None:
            self._auth = auth
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = asyncio.ensure_future(self._sweep())
                self._sweeper.set_name("ws-revocation")
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

    async def _sweep(self) -> None:
        """Close the sockets whose credential no longer holds; runs while any socket is open."""
        while self.clients:
            await asyncio.sleep(REVOCATION_SWEEP)
            auth = self._auth
            if auth is None:
                return
            for client in list(self.clients.values()):
                if client.closed or client.identity is None:
                    continue
                try:
                    reason = auth.revoked_reason(client.identity)
                except Exception:  # a check that cannot run must not end the sweep for everybody
                    log.exception("cannot re-check the credential of WebSocket client %s", client.id)
                    continue
                if reason is not None:
                    log.info("WebSocket client %s closed: %s", client.id, reason)
                    self.drop(client, CLOSE_REVOKED, reason)

    async def disconnect_session(self, jti: str) -> None:
        """Logout or a revoked API key: connections opened with that credential end too."""
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
    """On joining `downloads`, send the current queue status so a fresh page does not wait for a change.

    Built from the same cached, already encoded status GET /api/queue/status answers with.
    """
    if room != "downloads":
        return
    queue = request.app[CTX].queue
    if queue is None:
        return
    try:
        entry = await request.app[CACHE].queue.get("status", queue.status)
    except Exception:
        log.debug("queue snapshot for WebSocket client failed", exc_info=True)
        return
    head = f'{{"type":"{events.QUEUE_STATUS}","timestamp":"{iso_timestamp()}","data":'
    client.offer(frame(head + entry.body.decode("utf-8") + "}"))


async def _handle(request: web.Request, hub: Hub, client: Client, raw: str) -> None:
    text = raw.strip()
    if text.lower() == "ping":
        client.offer(message("pong", {}))
        return
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: `[[[[...` nested 50,000 deep
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
            if action == "join":
                await _snapshot(request, client, room)
        return
    client.offer(message("error", {"message": f"unknown action {action!r}; expected join, leave or ping"}))


async def connect(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=hub.heartbeat, max_msg_size=64 * 1024, compress=False)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="expected a WebSocket upgrade request")
    await ws.prepare(request)
    client = hub.register(ws, request)
    try:
        initial = [r.strip() for r in request.query.get("rooms", "").split(",") if r.strip()]
        for room in initial:
            if room in ROOMS:
                hub.join(client, room)
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
