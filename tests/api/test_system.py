"""GET /api/system/status and GET /metrics against a real SQLite store and event bus.

The handlers are mounted on a bare application here so these tests see the handlers themselves; the auth
middleware in front of /api is create_app's business and is tested with the API.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from aniworldd import __version__
from aniworldd import events as ev
from aniworldd.api import system
from aniworldd.api.context import AppContext
from aniworldd.api.health import CTX
from aniworldd.db import Store
from aniworldd.events import EventBus
from aniworldd.metrics import Metrics


class QueueStandIn:
    """Answers status() like DownloadService: the seed's QueueStatus."""

    def __init__(self, stats: dict, fail: bool = False) -> None:
        self.stats = stats
        self.fail = fail
        self.calls = 0

    async def status(self) -> dict:
        self.calls += 1
        if self.fail:
            raise RuntimeError("queue worker crashed")
        return {
            "is_running": True,
            "is_paused": False,
            "active_downloads": [],
            "pending_queue": [],
            "completed_downloads": [],
            "failed_downloads": [],
            "statistics": self.stats,
        }


class MqttStandIn:
    connected = True


@pytest.fixture
def ctx(config_factory, tmp_path: Path) -> AppContext:
    cfg = config_factory(f"library:\n  roots: [{tmp_path / 'lib-a'}, {tmp_path / 'missing'}]\n")
    (tmp_path / "lib-a").mkdir()
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    bus = EventBus()
    context = AppContext(config=cfg, store=store, bus=bus, started_at=time.monotonic() - 42)
    context.extras["metrics"] = Metrics(bus)
    yield context
    store.close()


@pytest.fixture
async def client(aiohttp_client, ctx: AppContext):
    app = web.Application()
    app[CTX] = ctx
    for route in system.ROUTES:  # create_app registers these through its wrapper (auth); here: bare
        app.router.add_route(route.method, route.path, route.handler)
    system.add_routes(app)
    return await aiohttp_client(app)


def _add_queue_rows(store: Store, statuses: list[str]) -> None:
    def q() -> None:
        series = store.e.AnimeSeries(key="attack-on-titan", name="Attack on Titan", folder="AoT")
        for i, status in enumerate(statuses, start=1):
            store.e.DownloadQueueItem(series=series, season=1, episode=i, status=status)

    store.run_sync(q)


async def test_status_reports_version_uptime_disks_database(client, ctx: AppContext, tmp_path: Path) -> None:
    resp = await client.get("/api/system/status")
    assert resp.status == 200
    body = await resp.json()
    assert body["version"] == __version__
    assert body["uptime_s"] >= 42
    assert body["started_at"].endswith("Z")
    assert body["database"]["provider"] == "sqlite"
    assert body["database"]["size_bytes"] == ctx.store.size_bytes() > 0
    roots = {d["root"]: d for d in body["library"]}
    present, missing = roots[str(tmp_path / "lib-a")], roots[str(tmp_path / "missing")]
    assert present["exists"] is True and 0 < present["free_bytes"] <= present["total_bytes"]
    assert missing["exists"] is False and missing["free_bytes"] is None and missing["error"]
    assert body["mqtt"] == {"enabled": False, "connected": None, "host": None, "port": 1883}


async def test_queue_counts_from_the_database_without_a_queue_service(client, ctx: AppContext) -> None:
    _add_queue_rows(
        ctx.store, ["pending", "pending", "downloading", "completed", "failed", "failed", "failed"]
    )
    body = await (await client.get("/api/system/status")).json()
    queue = body["queue"]
    assert (queue["pending"], queue["active"], queue["completed"], queue["failed"]) == (2, 1, 1, 3)
    assert queue["source"] == "database"


async def test_queue_counts_and_mqtt_from_the_services(client, ctx: AppContext) -> None:
    ctx.queue = QueueStandIn({"pending": 5, "active": 2, "completed": 80, "failed": 1, "speed_mbps": 3.5})
    ctx.mqtt = MqttStandIn()
    ctx.config["mqtt"]["host"] = "broker.lan"
    body = await (await client.get("/api/system/status")).json()
    assert body["queue"] == {
        "pending": 5,
        "active": 2,
        "completed": 80,
        "failed": 1,
        "is_running": True,
        "is_paused": False,
        "speed_mbps": 3.5,
        "source": "queue",
    }
    assert body["mqtt"]["enabled"] is True and body["mqtt"]["connected"] is True


async def test_a_failing_component_is_reported_not_a_500(client, ctx: AppContext) -> None:
    ctx.queue = QueueStandIn({}, fail=True)
    ctx.config["mqtt"]["host"] = "broker.lan"  # configured, but no bridge running
    resp = await client.get("/api/system/status")
    assert resp.status == 200
    body = await resp.json()
    assert "queue worker crashed" in body["queue"]["error"]
    assert body["mqtt"]["connected"] is False


async def test_metrics_endpoint_parses_and_counts_bus_events(client, ctx: AppContext) -> None:
    ctx.queue = QueueStandIn({"pending": 4, "active": 1, "completed": 9, "failed": 0, "speed_mbps": 1.0})
    ctx.bus.publish(ev.DOWNLOAD_COMPLETE, {"download_id": 1, "key": "k", "size_bytes": 4096})
    ctx.bus.publish(
        ev.SCAN_COMPLETE,
        {"series": 3, "episodes": 30, "missing_episodes": 4, "unmatched": 0, "duration_s": 1.5},
    )
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    fams = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    value = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples}
    assert value[("aniworldd_downloads_completed_total", ())] == 1
    assert value[("aniworldd_downloaded_bytes_total", ())] == 4096
    assert value[("aniworldd_scan_duration_seconds_count", ())] == 1
    assert value[("aniworldd_scans_total", (("result", "complete"),))] == 1
    assert value[("aniworldd_queue_items", (("state", "pending"),))] == 4  # seeded from the queue service
    assert value[("aniworldd_uptime_seconds", ())] >= 42
    assert fams["aniworldd_downloads_completed"].type == "counter"
    assert fams["aniworldd_scan_duration_seconds"].type == "histogram"
    # once queue_status events flow, scrapes no longer ask the service
    ctx.bus.publish(
        ev.QUEUE_STATUS, {"statistics": {"pending": 0, "active": 0, "completed": 10, "failed": 0}}
    )
    calls = ctx.queue.calls
    text = await (await client.get("/metrics")).text()
    assert 'aniworldd_queue_items{state="completed"} 10' in text
    assert ctx.queue.calls == calls


async def test_through_create_app_status_needs_a_token_metrics_does_not(api) -> None:
    """The real app: auth middleware, the real queue and scan services, the OpenAPI document."""
    status, body = await api.call("GET", "/api/system/status")
    assert status == 401 and body["error"]["code"]
    status, text = await api.call("GET", "/metrics")  # scrapers carry no token
    assert status == 200
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "aniworldd_downloads_completed",
        "aniworldd_scan_duration_seconds",
        "aniworldd_queue_items",
    } <= names

    await api.setup_and_login()
    status, body = await api.call("GET", "/api/system/status")
    assert status == 200, body
    assert body["version"] == __version__
    assert body["queue"]["source"] == "queue"  # from DownloadService.status()
    assert {"pending", "active", "completed", "failed"} <= set(body["queue"])
    assert isinstance(body["scan"], dict) and "running" in body["scan"]  # ScanService.state()
    status, spec = await api.call("GET", "/api/openapi.json")
    operation = spec["paths"]["/api/system/status"]["get"]
    assert operation["security"] and "401" in operation["responses"]
