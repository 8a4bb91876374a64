"""Hoster health end to end: the queue against the look-alike site with one hoster down (state.down_hosters),
real resolvers, real yt-dlp. The failing hoster's record shows in HosterHealth, /api/system/status and
/metrics; the adaptive order stops trying it first; a hoster in its cool-down is skipped and the item says
so; the record survives a restart (its JSON file)."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from aniworldd.api import system
from aniworldd.api.context import AppContext
from aniworldd.api.health import CTX
from aniworldd.db.models import PENDING, utcnow
from aniworldd.events import DOWNLOAD_COMPLETE, DOWNLOAD_FAILED
from aniworldd.services.hoster_health import HOSTER_HEALTH, HosterHealth
from tests.fakesite.media import ffmpeg_available
from tests.integration.download_helpers import KEY, Site, build_series, fake_state
from tests.integration.test_download_service import Env

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)")


@pytest.fixture
async def make_env(tmp_path):
    made: list[tuple[Env, Site]] = []

    async def make(series, downloads: str, down: set[str]) -> Env:
        state = fake_state(series)
        state.down_hosters |= down
        site = await Site(state).start()
        env = Env(tmp_path, site, series, downloads)
        env.build()
        made.append((env, site))
        return env

    yield make
    for env, site in made:
        await env.close()
        await site.stop()


def hoster_requests(env: Env, hoster: str, since: int = 0) -> list[dict]:
    return [r for r in env.site.state.request_log[since:] if r.get("hoster") == hoster]


async def download(env: Env, episode: int) -> int:
    [item] = await env.queue.add(KEY, [(1, episode)])
    await env.queue.start()
    await env.until(DOWNLOAD_COMPLETE, item["id"])
    return item["id"]


async def api_get(env: Env, path: str):
    """The real system handlers (status, metrics) on a bare app around this queue."""
    ctx = AppContext(config=env.config, store=env.store, bus=env.bus)
    ctx.queue = env.queue
    app = web.Application()
    app[CTX] = ctx
    for route in system.ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    system.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(path)
        assert resp.status == 200
        return await (resp.json() if path.startswith("/api/") else resp.text())


async def test_failing_hoster_is_visible_and_adaptive_order_moves_it_back(make_env) -> None:
    env = await make_env(
        build_series(3, hosters=("Vidoza", "VOE")),
        "  hoster_order: adaptive\n  hoster_failures_before_cooldown: 5\n",
        {"vidoza"},
    )
    first = await download(env, 1)
    assert env.row(first)["hoster"] == "VOE"  # Vidoza (first in downloads.hosters) is down
    assert hoster_requests(env, "vidoza")  # ... and was tried first

    snap = env.queue.hoster_health.snapshot()
    vidoza, voe = snap["Vidoza"], snap["VOE"]
    assert (vidoza["attempts"], vidoza["successes"], vidoza["failures_in_a_row"]) == (1, 0, 1)
    assert vidoza["last_error"] and vidoza["last_error_at"] and vidoza["success_rate_24h"] == 0.0
    assert vidoza["state"] == "failing"
    assert (voe["attempts"], voe["successes"], voe["success_rate_24h"]) == (1, 1, 1.0)
    published = [e.data for e in env.events if e.type == HOSTER_HEALTH]
    assert any(d["hoster"] == "Vidoza" and d["state"] == "failing" for d in published)

    # Adaptive: the hoster that worked goes first now; the failing one is not even asked.
    seen = len(env.site.state.request_log)
    second = await download(env, 2)
    assert env.row(second)["hoster"] == "VOE"
    assert hoster_requests(env, "vidoza", seen) == []
    assert env.queue.hoster_health.snapshot()["Vidoza"]["attempts"] == 1
    assert env.queue.hoster_health.snapshot()["VOE"]["successes"] == 2

    status = await api_get(env, "/api/system/status")
    assert status["hosters"]["Vidoza"]["failures_in_a_row"] == 1
    assert status["hosters"]["Vidoza"]["last_error"] == vidoza["last_error"]
    assert status["hosters"]["VOE"]["successes"] == 2
    metrics = await api_get(env, "/metrics")
    samples = {
        (s.name, s.labels.get("hoster")): s.value
        for fam in text_string_to_metric_families(metrics)
        for s in fam.samples
    }
    assert samples[("aniworldd_hoster_attempts_total", "Vidoza")] == 1
    assert samples[("aniworldd_hoster_success_rate_24h", "Vidoza")] == 0
    assert samples[("aniworldd_hoster_successes_total", "VOE")] == 2

    # The record outlives the process: a new HosterHealth reads the same from the data dir.
    await env.queue.close()
    assert HosterHealth.from_config(env.config).snapshot() == env.queue.hoster_health.snapshot()


async def test_fixed_order_keeps_trying_the_configured_first_hoster(make_env) -> None:
    env = await make_env(
        build_series(2, hosters=("Vidoza", "VOE")),
        "  hoster_order: fixed\n  hoster_failures_before_cooldown: 5\n",
        {"vidoza"},
    )
    await download(env, 1)
    seen = len(env.site.state.request_log)
    second = await download(env, 2)
    assert env.row(second)["hoster"] == "VOE"
    assert hoster_requests(env, "vidoza", seen)
    assert env.queue.hoster_health.snapshot()["Vidoza"]["attempts"] == 2


async def test_cooling_down_hoster_is_skipped_and_the_item_says_so(make_env) -> None:
    env = await make_env(
        build_series(1, hosters=("Vidoza",)),
        "  hoster_failures_before_cooldown: 1\n  hoster_cooldown: 1h\n",
        {"vidoza"},
    )
    [item] = await env.queue.add(KEY, [(1, 1)])
    await env.queue.start()
    failed = await env.until(DOWNLOAD_FAILED, item["id"], count=2)
    assert "Vidoza (ger-dub)" in failed[0]["reason"]  # really tried and failed
    assert failed[0]["attempts"] == 1
    skip = re.search(r"Vidoza skipped: cooling down after \d+ failures until \d\d:\d\d", failed[1]["reason"])
    assert skip, failed[1]["reason"]
    # Not the item's fault: the attempt does not count, and it waits for the cool-down to end.
    assert failed[1]["attempts"] == 1 and failed[1]["will_retry"]
    row = env.row(item["id"])
    assert row["status"] == PENDING and row["attempts"] == 1 and "cooling down" in row["error"]

    def due() -> float:
        return (env.store.e.DownloadQueueItem[item["id"]].next_attempt_at - utcnow()).total_seconds()

    assert env.store.run_sync(due) > 3000
    snap = env.queue.hoster_health.snapshot()["Vidoza"]
    assert snap["state"] == "cooling_down" and snap["cooling_down_until"]
