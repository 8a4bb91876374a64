"""/ws/connect: auth, rooms, envelope, ping/pong, logout, and dropping a client that does not read."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from aniworldd import events
from aniworldd.api.ws import CLOSE_REVOKED, HUB
from tests.api.conftest import Api

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _progress(i: int = 0, **extra) -> dict:
    return {
        "download_id": i,
        "key": "some-show",
        "folder": "Some Show",
        "season": 1,
        "episode": i,
        "language": "ger-dub",
        "percent": 50.0,
        **extra,
    }


async def _next(ws: aiohttp.ClientWebSocketResponse, skip: tuple[str, ...] = ()) -> dict:
    while True:
        msg = await asyncio.wait_for(ws.receive_json(), 10)
        if msg["type"] not in skip:
            return msg


async def _connect(api: Api, **kwargs) -> aiohttp.ClientWebSocketResponse:
    return await api.client.ws_connect("/ws/connect", **kwargs)


async def _barrier(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Messages are handled in order: once the pong is back, everything sent before it took effect."""
    await ws.send_json({"action": "ping"})
    assert (await _next(ws, skip=("queue_status",)))["type"] == "pong"


async def _join(ws: aiohttp.ClientWebSocketResponse, room: str) -> None:
    await ws.send_json({"action": "join", "room": room})
    await _barrier(ws)


@pytest.mark.parametrize("query", ["", "?token=garbage"])
async def test_connect_needs_a_valid_token(logged_in: Api, query: str) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await logged_in.client.ws_connect(f"/ws/connect{query}")
    assert exc.value.status == 401


async def test_plain_http_get_is_400(logged_in: Api) -> None:
    status, data = await logged_in.call("GET", "/ws/connect")
    assert status == 400 and data["error"]["code"] == "bad_request"


async def test_rooms_envelope_and_routing(logged_in: Api) -> None:
    ws = await _connect(logged_in, params={"token": logged_in.token})
    await _join(ws, "download_progress")
    bus = logged_in.ctx.bus
    bus.publish(events.SCAN_PROGRESS, {"key": "x", "folder": "X", "current": 1, "total": 2, "percent": 50.0})
    bus.publish(events.DOWNLOAD_COMPLETE, {**_progress(1), "path": "/x", "size_bytes": 1})
    bus.publish(events.DOWNLOAD_PROGRESS, _progress(2))
    msg = await _next(ws)
    # only the joined room's type arrives, in the seed's envelope
    assert msg["type"] == "download_progress"
    assert set(msg) == {"type", "timestamp", "data"}
    assert TIMESTAMP.match(msg["timestamp"])
    assert msg["data"]["key"] == "some-show" and msg["data"]["folder"] == "Some Show"
    assert msg["data"]["episode"] == 2

    await _join(ws, "scan_progress")
    bus.publish(
        events.SCAN_COMPLETE,
        {"series": 1, "episodes": 2, "missing_episodes": 0, "unmatched": 0, "duration_s": 0.1},
    )
    msg = await _next(ws)
    assert msg["type"] == "scan_complete" and "key" in msg["data"] and "folder" in msg["data"]

    await ws.send_json({"action": "leave", "room": "download_progress"})
    await _barrier(ws)
    bus.publish(events.DOWNLOAD_PROGRESS, _progress(3))
    bus.publish(events.SCAN_FAILED, {"error": "disk gone"})
    msg = await _next(ws)
    assert msg["type"] == "scan_failed"
    await ws.close()


async def test_downloads_room_gets_queue_snapshot_then_changes(logged_in: Api) -> None:
    ws = await _connect(logged_in, headers=logged_in.headers)  # the header works as well as ?token=
    await ws.send_json({"action": "join", "room": "downloads"})
    snapshot = await _next(ws)
    assert snapshot["type"] == "queue_status" and "pending_queue" in snapshot["data"]
    assert set(snapshot) == {"type", "timestamp", "data"}
    logged_in.ctx.bus.publish(
        events.DOWNLOAD_FAILED, {**_progress(5), "reason": "x", "attempts": 1, "will_retry": True}
    )
    msg = await _next(ws)
    assert msg["type"] == "download_failed" and msg["data"]["will_retry"] is True
    await ws.close()


async def test_initial_rooms_from_query(logged_in: Api) -> None:
    ws = await logged_in.client.ws_connect(
        "/ws/connect", params={"token": logged_in.token, "rooms": "download_progress,nope"}
    )
    await _barrier(ws)
    logged_in.ctx.bus.publish(events.SCAN_PROGRESS, {"key": "x", "folder": "X", "current": 1, "total": 1})
    logged_in.ctx.bus.publish(events.DOWNLOAD_PROGRESS, _progress(7))
    assert (await _next(ws))["data"]["episode"] == 7
    await ws.close()


async def test_only_seed_types_pong_and_error_are_sent(logged_in: Api) -> None:
    """Joining and leaving are silent; the first message a client sees is an event it asked for."""
    ws = await _connect(logged_in, params={"token": logged_in.token})
    await ws.send_json({"action": "join", "room": "download_progress"})
    await ws.send_json({"action": "leave", "room": "download_progress"})
    await ws.send_json({"action": "join", "room": "scan_progress"})
    await _barrier(ws)
    logged_in.ctx.bus.publish(
        events.SCAN_PROGRESS, {"key": "x", "folder": "X", "current": 1, "total": 4, "percent": 25.0}
    )
    msg = await _next(ws)
    assert msg["type"] == "scan_progress" and msg["data"]["percent"] == 25.0
    await ws.close()


async def test_protocol_errors_and_ping(logged_in: Api) -> None:
    ws = await _connect(logged_in, params={"token": logged_in.token})
    await ws.send_json({"action": "join", "room": "everything"})
    err = await _next(ws)
    assert err["type"] == "error" and "downloads" in err["data"]["rooms"]
    await ws.send_str("{broken")
    assert (await _next(ws))["type"] == "error"
    await ws.send_json({"action": "dance"})
    assert (await _next(ws))["type"] == "error"
    await ws.send_json({"action": "ping"})
    assert (await _next(ws))["type"] == "pong"
    await ws.send_str("ping")
    assert (await _next(ws))["type"] == "pong"
    assert not ws.closed
    await ws.close()


async def test_api_key_connects_until_revoked(logged_in: Api) -> None:
    _, created = await logged_in.call("POST", "/api/auth/api-keys", json={"name": "ha"})
    ws = await _connect(logged_in, headers={"X-Api-Key": created["key"]})
    await _join(ws, "downloads")
    status, _ = await logged_in.call("DELETE", f"/api/auth/api-keys/{created['id']}")
    assert status == 200
    while True:
        msg = await asyncio.wait_for(ws.receive(), 10)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_REVOKED


async def test_socket_closes_when_its_token_expires(api_factory) -> None:
    api = await api_factory("auth:\n  token_ttl: 3\n")
    await api.setup_and_login()
    ws = await _connect(api, params={"token": api.token})
    while True:
        msg = await asyncio.wait_for(ws.receive(), 15)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_REVOKED


async def test_logout_closes_that_sessions_sockets(logged_in: Api) -> None:
    ws = await _connect(logged_in, params={"token": logged_in.token})
    status, _ = await logged_in.call("POST", "/api/auth/logout")
    assert status == 200
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_REVOKED
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await logged_in.client.ws_connect("/ws/connect", params={"token": logged_in.token})


async def test_slow_client_is_dropped_and_others_get_everything(logged_in: Api) -> None:
    hub = logged_in.client.app[HUB]
    hub.max_buffer = 256 * 1024
    fast = await _connect(logged_in, params={"token": logged_in.token})
    slow = await _connect(logged_in, params={"token": logged_in.token})
    await _join(fast, "download_progress")
    await _join(slow, "download_progress")
    total = 300
    padding = "x" * 100_000  # large frames fill the slow client's socket buffers quickly
    received: list[int] = []
    # lock-step with the fast client: it is never behind by more than one message, the slow one never reads
    for i in range(total):
        logged_in.ctx.bus.publish(events.DOWNLOAD_PROGRESS, _progress(i, padding=padding))
        msg = await _next(fast)
        received.append(msg["data"]["download_id"])
    assert received == list(range(total))
    assert hub.dropped_slow == 1
    assert len(hub.clients) == 1
    # the slow client finds its connection cut once it reads again
    while True:
        msg = await asyncio.wait_for(slow.receive(), 10)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            break
    assert slow.closed
    await fast.close()
