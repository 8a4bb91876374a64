"""A captcha on s.to's hoster redirect (Turnstile) while the queue runs: the item waits with the reason
and a `health` event, the queue goes on with other items, and the item resumes by itself once the
captcha is gone.  Real queue, SQLite, curl_cffi through the TLS gate, real yt-dlp."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from aniworldd.config import load_text
from aniworldd.db import Store
from aniworldd.db.models import COMPLETED, PENDING
from aniworldd.events import HEALTH, EventBus
from aniworldd.providers.registry import build_providers
from aniworldd.providers.sources import SourceFinder
from aniworldd.services.download_service import DownloadService
from tests.fakesite.catalog import ANIWORLD, GER_DUB, STO, Catalog, make_series
from tests.fakesite.media import ffmpeg_available
from tests.fakesite.obstacles import obstacle_site
from tests.fakesite.state import FakeSiteState

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)"),
]


def seed(store: Store, *series) -> None:
    def q() -> None:
        e = store.e
        for item in series:
            link = f"/serie/{item.key}" if item.site == STO else f"/anime/stream/{item.key}"
            s = e.AnimeSeries(key=item.key, name=item.title, site=item.site, year=item.start_year, link=link)
            for season, eps in item.seasons.items():
                for ep in eps:
                    e.Episode(series=s, season=season, number=ep.number, languages=ep.languages(item.site))

    store.run_sync(q)


async def wait_for(predicate, what: str, seconds: float = 60.0):
    for _ in range(int(seconds * 20)):
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_turnstile_makes_the_item_wait_while_the_queue_goes_on_then_it_resumes(tmp_path):
    serie = make_series(STO, "cliff-house", "Cliff House", {1: 2}, languages=[GER_DUB], hosters=["Vidoza"])
    anime = make_series(
        ANIWORLD, "moon-garden", "Moon Garden", {1: 1}, languages=[GER_DUB], hosters=["Vidoza"]
    )
    state = FakeSiteState(catalog=Catalog([serie, anime]))
    async with obstacle_site(tmp_path, state=state, proxies=False, turnstile_after=1) as o:
        text = yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "library": {"roots": [str(tmp_path / "library")], "watch": False, "scan_on_start": False},
                "downloads": {
                    "autostart": False,
                    "min_free_gb": 0,
                    "max_concurrent": 1,
                    "language": ["ger-dub"],
                    "hosters": ["Vidoza"],
                },
                "provider": {
                    "aniworld_url": o.aniworld_url,
                    "sto_url": o.sto_urls[0],
                    "ca_file": o.ca_file,
                    "resolve": o.resolve,
                    "min_interval": 0,
                    "retries": 0,
                    "challenge_retry": "1s",
                },
            }
        )
        cfg = load_text(text, "config.yaml", env={}, base_dir=tmp_path)
        await asyncio.to_thread(Path(cfg["library"]["roots"][0]).mkdir, parents=True)
        store = Store(cfg["database"]["url"], cfg["data_dir"])
        seed(store, serie, anime)
        bus = EventBus()
        events: list = []
        bus.add_listener(events.append)
        providers = build_providers(cfg["provider"], data_dir=cfg["data_dir"])
        finder = SourceFinder(providers.for_site, providers.client, ["Vidoza"], ["ger-dub"])
        queue = DownloadService(cfg, store, bus, finder)
        try:
            first, second = await queue.add("cliff-house", [(1, 1), (1, 2)])
            [other] = await queue.add("moon-garden", [(1, 1)])
            await queue.start()

            def row(item_id: int) -> dict:
                r = store.e.DownloadQueueItem[item_id]
                return {
                    "status": r.status,
                    "error": r.error,
                    "attempts": r.attempts,
                    "next": r.next_attempt_at,
                }

            async def status(item_id: int) -> dict:
                return await store.run(row, item_id)

            await wait_for(lambda: _is(status, first["id"], COMPLETED), "the first s.to episode")
            await wait_for(lambda: _is(status, other["id"], COMPLETED), "the aniworld episode")
            waiting = await wait_for(lambda: _waiting(status, second["id"]), "the captcha to hold episode 2")
            assert waiting["status"] == PENDING and waiting["attempts"] == 0  # no retry used up
            assert "captcha" in waiting["error"] and "serienstream.test" in waiting["error"]
            blocked = [e.data for e in events if e.type == HEALTH and e.data["status"] == "blocked"]
            assert len(blocked) == 1 and blocked[0]["challenge"] == "turnstile"
            assert "provider" == blocked[0]["component"] and blocked[0]["hint"]

            o.state.turnstile_after = None  # someone solved it in a browser / it expired
            await wait_for(lambda: _is(status, second["id"], COMPLETED), "episode 2 to resume by itself")
            assert [e.data["status"] for e in events if e.type == HEALTH] == ["blocked", "ok"]
            assert queue.provider_health.snapshot() == {}
        finally:
            await queue.close()
            await providers.close()
            store.close()
    assert o.state.turnstile_served >= 1


async def _is(status, item_id: int, wanted: str) -> bool:
    return (await status(item_id))["status"] == wanted


async def _waiting(status, item_id: int) -> dict | None:
    row = await status(item_id)
    # pending between tries (challenge_retry is 1 s here, so on a busy machine a poll may meet a new try)
    return row if row["status"] == PENDING and row["error"] and "captcha" in row["error"] else None
