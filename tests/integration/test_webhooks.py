"""Webhooks against a real local receiver: delivery, filtering, retries, a dead endpoint never blocks."""

from __future__ import annotations

import asyncio

from aniworldd.events import DOWNLOAD_COMPLETE, DOWNLOAD_FAILED, QUEUE_STATUS, EventBus
from aniworldd.services.notifications import WebhookNotifier
from tests.conftest import webhook_receiver


async def _wait_for(predicate, limit: float = 10) -> None:
    for _ in range(int(limit / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met")


async def test_events_delivered_in_envelope_with_filter_and_retry() -> None:
    server, received = await webhook_receiver(fail_first=1)
    bus = EventBus()
    url = str(server.make_url("/hook"))
    notifier = WebhookNotifier(
        bus, [{"url": url, "events": ["download_complete"], "timeout": 5}], retries=2, backoff=0.01
    )
    await notifier.start()
    try:
        bus.publish(QUEUE_STATUS, {"is_running": True})  # never forwarded
        bus.publish(DOWNLOAD_FAILED, {"key": "x"})  # not in this hook's filter
        bus.publish(DOWNLOAD_COMPLETE, {"key": "one-piece", "folder": "One Piece", "season": 1, "episode": 2})
        await _wait_for(lambda: received)
        assert len(received) == 1
        body = received[0]
        assert body["type"] == "download_complete" and body["data"]["key"] == "one-piece"
        assert body["timestamp"].endswith("Z")
        assert notifier.status()[0]["delivered"] == 1
    finally:
        await notifier.close()
        await server.close()


async def test_dead_webhook_does_not_block_others() -> None:
    server, received = await webhook_receiver()
    bus = EventBus()
    hooks = [
        {"url": "http://127.0.0.1:9/dead", "events": ["download_complete"], "timeout": 1},
        {"url": str(server.make_url("/hook")), "events": ["download_complete"], "timeout": 5},
    ]
    notifier = WebhookNotifier(bus, hooks, retries=50, backoff=0.5)
    await notifier.start()
    try:
        for i in range(3):
            bus.publish(DOWNLOAD_COMPLETE, {"key": f"k{i}"})
        await _wait_for(lambda: len(received) == 3)
        assert [r["data"]["key"] for r in received] == ["k0", "k1", "k2"]
    finally:
        await notifier.close()
        await server.close()


async def test_test_endpoint_reports_results() -> None:
    server, received = await webhook_receiver()
    notifier = WebhookNotifier(
        EventBus(),
        [
            {"url": str(server.make_url("/hook")), "events": ["health"], "timeout": 5},
            {"url": "http://127.0.0.1:9/dead", "events": ["health"], "timeout": 1},
        ],
        retries=0,
    )
    try:
        results = await notifier.test()
        assert [r["ok"] for r in results] == [True, False]
        assert received[0]["type"] == "test"
        assert results[1]["error"]
    finally:
        await notifier.close()
        await server.close()


async def test_datetimes_in_event_data_are_delivered_as_iso_utc() -> None:
    """Event data built from DB rows carries naive UTC datetimes; they must not stop the sender."""
    from datetime import datetime

    server, received = await webhook_receiver()
    bus = EventBus()
    notifier = WebhookNotifier(
        bus, [{"url": str(server.make_url("/hook")), "events": ["download_complete"], "timeout": 5}]
    )
    await notifier.start()
    try:
        bus.publish(DOWNLOAD_COMPLETE, {"key": "a", "completed_at": datetime(2026, 11, 24, 20, 5, 1, 250000)})
        bus.publish(DOWNLOAD_COMPLETE, {"key": "b"})
        await _wait_for(lambda: len(received) == 2)
        assert received[0]["data"]["completed_at"] == "2026-11-24T20:05:01.250Z"
        assert received[1]["data"]["key"] == "b"
    finally:
        await notifier.close()
        await server.close()
