"""EventBus: delivery, filtering, bounded mailboxes, thread-safe publishing, the seed's envelope."""

from __future__ import annotations

import asyncio
import re
import threading

from aniworldd.events import DOWNLOAD_PROGRESS, QUEUE_STATUS, EventBus


async def test_subscriber_receives_filtered_events() -> None:
    bus = EventBus()
    all_sub = bus.subscribe()
    progress = bus.subscribe({DOWNLOAD_PROGRESS})
    bus.publish(QUEUE_STATUS, {"is_running": True})
    bus.publish(DOWNLOAD_PROGRESS, {"key": "one-piece", "percent": 5})
    assert (await all_sub.get()).type == QUEUE_STATUS
    assert (await all_sub.get()).type == DOWNLOAD_PROGRESS
    ev = await progress.get()
    assert ev.data == {"key": "one-piece", "percent": 5}
    assert progress.get_nowait() is None


async def test_envelope_shape() -> None:
    bus = EventBus()
    ev = bus.publish(QUEUE_STATUS, {"key": "a"})
    env = ev.envelope()
    assert set(env) == {"type", "timestamp", "data"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", env["timestamp"])


async def test_slow_subscriber_drops_oldest_and_never_blocks() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=3)
    for i in range(10):
        bus.publish(DOWNLOAD_PROGRESS, {"i": i})
    assert sub.dropped == 7
    assert [(await sub.get()).data["i"] for _ in range(3)] == [7, 8, 9]


async def test_publish_from_thread_is_delivered_on_loop() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    seen_threads = []
    bus.add_listener(lambda ev: seen_threads.append(threading.get_ident()))
    t = threading.Thread(target=bus.publish, args=(QUEUE_STATUS, {"from": "thread"}))
    t.start()
    t.join()
    ev = await asyncio.wait_for(sub.get(), 5)
    assert ev.data == {"from": "thread"}
    assert seen_threads == [threading.get_ident()]


async def test_broken_listener_does_not_break_publish() -> None:
    bus = EventBus()

    def boom(_ev):
        raise RuntimeError("x")

    bus.add_listener(boom)
    sub = bus.subscribe()
    bus.publish(QUEUE_STATUS, {})
    assert (await sub.get()).type == QUEUE_STATUS


async def test_closed_subscription_stops_iteration() -> None:
    bus = EventBus()
    sub = bus.subscribe()

    async def consume():
        return [ev async for ev in sub]

    task = asyncio.create_task(consume())
    bus.publish(QUEUE_STATUS, {"n": 1})
    await asyncio.sleep(0)
    sub.close()
    assert [e.data for e in await asyncio.wait_for(task, 5)] == [{"n": 1}]
    bus.publish(QUEUE_STATUS, {"n": 2})
    assert sub.get_nowait() is None


def test_to_json_encodes_service_values_and_strictness() -> None:
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    import pytest

    from aniworldd.events import to_json

    naive = datetime(2026, 1, 2, 3, 4, 5, 6000)
    out = json.loads(to_json({"t": naive, "a": datetime(2026, 1, 2, tzinfo=UTC), "p": Path("/x"), "s": {1}}))
    assert out == {"t": "2026-01-02T03:04:05.006Z", "a": "2026-01-02T00:00:00.000Z", "p": "/x", "s": [1]}
    with pytest.raises(TypeError):
        to_json({"o": object()})
    assert json.loads(to_json({"o": 1j}, lenient=True)) == {"o": "1j"}
