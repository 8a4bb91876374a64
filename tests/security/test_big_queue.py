"""Issue 16 item 11: a big queue must not break the `downloads` room or the status route.

5,000 pending items made every `queue_status` a 1.95 MB message, over the 1 MB WebSocket client buffer, so
every client was dropped as "too slow" on every change, and GET /api/queue/status took 1.5 s. Now the status
carries counts, flags and the first page of each list with `<list>_total`; the REST route pages with
`?limit=&offset=`. Speed is measured by bench/big_queue.py; these tests assert sizes and behaviour.
All against the real DownloadService on a real SQLite store.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from pony.orm import flush

from aniworldd import events
from aniworldd.api.ws import HUB
from aniworldd.mqtt.commands import CommandDispatcher
from aniworldd.mqtt.state import MirrorState, dumps
from tests.api.conftest import Api

PENDING = 5000
COMPLETED = 30
FAILED = 30
BOUND = 100 * 1024  # bytes: the default status, a WebSocket queue_status message
LISTS = ("active_downloads", "pending_queue", "completed_downloads", "failed_downloads")


async def _seed(api: Api) -> list[int]:
    """One series, 5,000 pending (the last 100 of them high priority), 30 completed, 30 failed items.
    Returns the pending ids in queue order (high priority first, then first in, first out)."""

    def q() -> list[int]:
        e = api.ctx.store.e
        series = e.AnimeSeries(key="big-show", name="Big Show", folder="Big Show (2020)")
        rows = []
        for j in range(PENDING + COMPLETED + FAILED):
            status = "pending" if j < PENDING else "completed" if j < PENDING + COMPLETED else "failed"
            high = PENDING - 100 <= j < PENDING
            rows.append(
                e.DownloadQueueItem(
                    series=series,
                    season=j // 1000 + 1,
                    episode=j % 1000 + 1,
                    status=status,
                    priority="high" if high else "normal",
                    priority_rank=0 if high else 1,
                    error="no hoster left" if status == "failed" else None,
                )
            )
        flush()  # so the rows have ids
        pending = [r for r in rows if r.status == "pending"]
        return [r.id for r in sorted(pending, key=lambda r: (r.priority_rank, r.id))]

    ids = await api.ctx.store.run(q)
    api.ctx.bus.publish(events.QUEUE_STATUS, {})  # the response cache forgets what it held
    return ids


async def _get(api: Api, path: str) -> tuple[int, bytes]:
    resp = await api.client.get(path, headers={**api.headers, "Accept-Encoding": "identity"})
    return resp.status, await resp.read()


async def test_default_status_is_bounded_and_counts_everything(logged_in: Api) -> None:
    order = await _seed(logged_in)
    status, raw = await _get(logged_in, "/api/queue/status")
    assert status == 200
    assert len(raw) < BOUND, f"{len(raw)} bytes for {PENDING} pending items"
    doc = json.loads(raw)
    assert [i["id"] for i in doc["pending_queue"]] == order[:50]  # queue order: high priority first
    assert doc["pending_queue"][0]["priority"] == "high"
    assert len(doc["completed_downloads"]) == len(doc["failed_downloads"]) == 20
    assert doc["active_downloads"] == []
    assert doc["pending_queue_total"] == PENDING
    assert doc["completed_downloads_total"] == COMPLETED and doc["failed_downloads_total"] == FAILED
    assert doc["active_downloads_total"] == 0
    assert doc["statistics"] == {
        "pending": PENDING,
        "active": 0,
        "completed": COMPLETED,
        "failed": FAILED,
        "speed_mbps": 0.0,
    }
    # queue actions answer with the same bounded status
    resp = await logged_in.client.post("/api/queue/stop", json={}, headers=logged_in.headers)
    body = await resp.read()
    assert resp.status == 200 and len(body) < BOUND
    assert json.loads(body)["queue"]["pending_queue_total"] == PENDING


async def test_pages_walk_every_list(logged_in: Api) -> None:
    order = await _seed(logged_in)
    seen: list[int] = []
    for offset in range(0, PENDING, 200):
        status, raw = await _get(logged_in, f"/api/queue/status?limit=200&offset={offset}")
        assert status == 200, raw
        doc = json.loads(raw)
        assert doc["pending_queue_total"] == PENDING
        seen += [i["id"] for i in doc["pending_queue"]]
        if offset == 0:  # limit applies to every list
            assert len(doc["completed_downloads"]) == COMPLETED and len(doc["failed_downloads"]) == FAILED
    assert seen == order  # every item once, in queue order
    status, raw = await _get(logged_in, f"/api/queue/status?limit=10&offset={PENDING - 3}")
    doc = json.loads(raw)
    assert [i["id"] for i in doc["pending_queue"]] == order[-3:]
    assert doc["completed_downloads"] == [] and doc["failed_downloads"] == []
    # limit=0: counts and flags only
    status, raw = await _get(logged_in, "/api/queue/status?limit=0")
    doc = json.loads(raw)
    assert status == 200 and all(doc[name] == [] for name in LISTS)
    assert doc["pending_queue_total"] == PENDING and len(raw) < 2048
    # an offset alone pages with the default sizes
    status, raw = await _get(logged_in, "/api/queue/status?offset=50")
    assert [i["id"] for i in json.loads(raw)["pending_queue"]] == order[50:100]


async def test_bad_page_values_are_400(logged_in: Api) -> None:
    await _seed(logged_in)
    for query in (
        "limit=-1",
        "limit=201",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "limit=%EF%BC%91",  # a full-width digit one
        "offset=-3",
        "offset=99999999999",
        "offset=1e3",
        "limit=10&offset=x",
    ):
        status, raw = await _get(logged_in, f"/api/queue/status?{query}")
        assert status == 400, (query, status, raw[:200])
        error = json.loads(raw)["error"]
        assert error["code"] and "Traceback" not in error["message"], (query, error)
        assert "limit" in raw.decode() or "offset" in raw.decode()
    status, _ = await _get(logged_in, "/api/queue/status?limit=200&offset=2147483647")
    assert status == 200  # the caps themselves are fine


async def _queue_status(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict, int]:
    """The next queue_status message and its size; fails (not hangs) when the server drops the client."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"socket ended: {msg.type} {msg.data!r} {ws.close_code}"
        doc = json.loads(msg.data)
        if doc["type"] == "queue_status":
            return doc["data"], len(msg.data.encode())


async def test_websocket_clients_stay_connected_as_a_big_queue_changes(logged_in: Api) -> None:
    order = await _seed(logged_in)
    hub = logged_in.client.app[HUB]
    ws = await logged_in.client.ws_connect("/ws/connect", params={"token": logged_in.token})
    await ws.send_json({"action": "join", "room": "downloads"})
    snapshot, size = await _queue_status(ws)  # sent on joining
    assert size < BOUND and snapshot["pending_queue_total"] == PENDING
    assert len(snapshot["pending_queue"]) == 50

    # five queue changes: removals and priority changes of pending items
    for n in range(5):
        item = order[n]
        if n % 2 == 0:
            resp = await logged_in.client.delete(f"/api/queue/{item}", headers=logged_in.headers)
        else:
            resp = await logged_in.client.patch(
                f"/api/queue/{item}", json={"priority": "low"}, headers=logged_in.headers
            )
        assert resp.status == 200, await resp.text()
        while True:  # the change arrives as a bounded queue_status
            data, size = await _queue_status(ws)
            assert size < BOUND, f"{size} bytes"
            if item not in [i["id"] for i in data["pending_queue"]]:
                break
    assert data["pending_queue_total"] == PENDING - 3  # three removed, two moved to the end
    assert hub.dropped_slow == 0 and not ws.closed
    await ws.send_json({"action": "ping"})
    while True:
        msg = await asyncio.wait_for(ws.receive_json(), 10)
        if msg["type"] == "pong":
            break
    await ws.close()


async def test_mqtt_side_stays_bounded(logged_in: Api) -> None:
    """`queue/state` holds counts only, `queue/failed` the newest 20, and the `queue/status` command
    answers with the same bounded status (it answered with every item before)."""
    await _seed(logged_in)
    state = MirrorState()
    state.set_queue_status(await logged_in.ctx.queue.status())
    assert len(dumps(state.queue_payload())) < 1024
    assert state.queue_payload()["statistics"]["pending"] == PENDING
    assert len(dumps(state.failed_payload())) < 16 * 1024
    assert state.failed_payload()["count"] == FAILED
    assert len(dumps(state.active_payload())) < 16 * 1024

    class Services:
        queue = logged_in.ctx.queue
        scan = None

    answer = await CommandDispatcher(Services()).handle("queue/status", b"")
    assert answer["status"] == "ok"
    assert len(dumps(answer)) < BOUND
    assert answer["data"]["pending_queue_total"] == PENDING


async def test_a_message_bigger_than_the_buffer_bound_reaches_a_client_that_keeps_up(logged_in: Api) -> None:
    """A client is too slow when unsent bytes pile up: a single message over the bound (the ~36 KB status
    against a 16 KB bound) goes to a client whose buffer is empty instead of dropping every reader at once."""
    await _seed(logged_in)
    hub = logged_in.client.app[HUB]
    hub.max_buffer = 16 * 1024
    ws = await logged_in.client.ws_connect("/ws/connect", params={"token": logged_in.token})
    await ws.send_json({"action": "join", "room": "downloads"})
    snapshot, size = await _queue_status(ws)
    assert size > hub.max_buffer and snapshot["pending_queue_total"] == PENDING
    resp = await logged_in.client.post("/api/queue/stop", json={}, headers=logged_in.headers)
    assert resp.status == 200
    data, size = await _queue_status(ws)  # the change, published to the room: still delivered
    assert size > hub.max_buffer and data["pending_queue_total"] == PENDING
    assert hub.dropped_slow == 0 and not ws.closed
    await ws.close()
