"""RefreshService with the real AnimeService (fake provider site), SQLite and an idle DownloadService.

The queue is not started: the tests look at what gets queued (and what does not), not at downloads.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from aniworldd.db.models import FAILED, PENDING, utcnow
from aniworldd.events import EventBus
from aniworldd.services.anime_service import AnimeService
from aniworldd.services.calendar_service import CalendarService
from aniworldd.services.download_service import DownloadService
from aniworldd.services.refresh_service import HEALTH, RefreshService
from tests.fakesite.catalog import ANIWORLD, GER_DUB, GER_SUB, Episode, make_series

KAGUYA = "kaguya-sama-love-is-war"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def env(config_factory, store, fakesite, fakesite_providers, fakesite_state):
    cfg = config_factory(
        "downloads:\n  auto_queue: true\n  upgrade_language: true\n  language: [ger-dub, ger-sub]\n"
    )
    bus = EventBus()
    os.makedirs(cfg["library"]["roots"][0], exist_ok=True)  # the daemon never creates a root itself
    anime = AnimeService(
        store, fakesite_providers, cfg["library"]["roots"], bus, languages=cfg["downloads"]["language"]
    )
    queue = DownloadService(cfg, store, bus)
    clock = Clock()
    refresh = RefreshService(store, anime, queue, cfg["provider"], cfg["downloads"], bus=bus, clock=clock)

    class Env:
        pass

    e = Env()
    e.cfg, e.bus, e.anime, e.queue, e.refresh, e.clock, e.store = (
        cfg,
        bus,
        anime,
        queue,
        refresh,
        clock,
        store,
    )
    e.site, e.origin, e.root = fakesite_state, fakesite, Path(cfg["library"]["roots"][0])
    yield e
    await queue.close()


def _items(store) -> list[tuple]:
    def q() -> list[tuple]:
        return sorted(
            (i.series.key, i.season, i.episode, i.language, i.status, i.replaces_path)
            for i in store.e.DownloadQueueItem.select()
        )

    return store.run_sync(q)


async def test_new_episode_is_queued_and_listed_in_the_calendar(env) -> None:
    await env.anime.add(f"{env.origin}/anime/stream/{KAGUYA}")
    result = await env.refresh.refresh_all(force=True)
    assert result["refreshed"] == 1 and result["new_episodes"] == {} and _items(env.store) == []

    env.site.catalog.get(ANIWORLD, KAGUYA).seasons[3].append(
        Episode(number=14, title_de="Neu", links={GER_SUB: ["VOE"]})
    )
    result = await env.refresh.refresh_all(force=True)
    assert [(e["season"], e["episode"]) for e in result["new_episodes"][KAGUYA]] == [(3, 14)]
    assert result["queued"] == {KAGUYA: 1}
    assert _items(env.store) == [(KAGUYA, 3, 14, None, PENDING, None)]
    # queued already: the next pass does not queue it twice
    await env.refresh.refresh_all(force=True)
    assert len(_items(env.store)) == 1

    cal = await CalendarService(env.store).entries(7)
    assert [(e["type"], e["season"], e["episode"]) for e in cal["entries"]] == [("listed", 3, 14)]


async def test_series_found_on_disk_gets_a_quiet_first_listing(env) -> None:
    """A series the scanner made from a marker: its first refresh lists the back catalogue, not news."""
    week_ago = utcnow() - timedelta(days=6)

    def scanned() -> None:
        s = env.store.e.AnimeSeries(
            key=KAGUYA, name="Kaguya", site="aniworld", folder="Kaguya", root=str(env.root)
        )
        env.store.e.Episode(series=s, season=1, number=1, listed=False, first_seen=week_ago)

    env.store.run_sync(scanned)
    result = await env.refresh.refresh_all(force=True)
    assert result["refreshed"] == 1 and result["new_episodes"] == {}
    assert _items(env.store) == []  # auto_queue only takes news
    cal = await CalendarService(env.store).entries(7)
    assert cal["entries"] == []


async def test_language_upgrades(env) -> None:
    series = make_series(
        ANIWORLD, "upgrade-me", "Upgrade Me", {1: 3}, languages=[GER_DUB, GER_SUB], hosters=["VOE"]
    )
    env.site.catalog.add(series)
    added = await env.anime.add(f"{env.origin}/anime/stream/upgrade-me")
    folder = env.root / added["folder"]
    paths = {n: folder / f"Upgrade Me - S01E00{n} - (x).mp4" for n in (1, 2, 3)}
    for p in paths.values():
        p.write_bytes(b"old")

    def on_disk() -> None:
        s = env.store.e.AnimeSeries.get(key="upgrade-me")
        for n, lang in ((1, GER_SUB), (2, None), (3, GER_DUB)):  # sub: upgradable; untagged; already best
            ep = env.store.e.Episode.get(series=s, season=1, number=n)
            ep.on_disk_path, ep.on_disk_language = str(paths[n]), lang

    env.store.run_sync(on_disk)
    ups = await env.refresh.queue_upgrades("upgrade-me")
    assert [(u["season"], u["episode"], u["language"]) for u in ups] == [(1, 1, GER_DUB)]
    assert _items(env.store) == [("upgrade-me", 1, 1, GER_DUB, PENDING, str(paths[1]))]
    assert await env.refresh.queue_upgrades("upgrade-me") == []  # already queued

    def fail_it() -> None:
        for i in env.store.e.DownloadQueueItem.select():
            i.status = FAILED

    env.store.run_sync(fail_it)
    assert await env.refresh.queue_upgrades("upgrade-me") == []  # a failed upgrade is not retried every pass


async def test_blocked_provider_ends_the_pass_and_says_so(env) -> None:
    keys = [KAGUYA] + [f"show-{i}" for i in range(4)]
    for key in keys[1:]:
        env.site.catalog.add(make_series(ANIWORLD, key, key.title(), {1: 2}))
    for key in keys:
        await env.anime.add(f"{env.origin}/anime/stream/{key}")
    sub = env.bus.subscribe({HEALTH})
    env.site.blocked = True
    requests_before = len(env.site.site_requests())
    result = await env.refresh.refresh_all(force=True)
    # only the series already in flight (max_concurrent) hit the wall; the rest were not even asked
    limit = env.cfg["provider"]["max_concurrent"]
    assert 1 <= len(result["failed"]) <= limit and result["skipped"] == len(keys) - len(result["failed"])
    assert len(env.site.site_requests()) - requests_before <= limit
    assert env.refresh.blocked and env.refresh.status()["blocked"]
    assert (sub.get_nowait()).data["status"] == "degraded"
    assert sub.get_nowait() is None

    env.site.blocked = False
    env.clock.now += env.cfg["provider"]["refresh_interval"] + 1  # the pause is over
    result = await env.refresh.refresh_all(force=True)
    assert result["refreshed"] == len(keys)
    assert (sub.get_nowait()).data["status"] == "ok"
    assert sub.get_nowait() is None  # one event per change, not one per failed series


async def test_a_failing_series_backs_off_and_monitoring_can_be_turned_off(env) -> None:
    env.site.catalog.add(make_series(ANIWORLD, "vanishing", "Vanishing", {1: 1}))
    await env.anime.add(f"{env.origin}/anime/stream/vanishing")
    await env.anime.add(f"{env.origin}/anime/stream/{KAGUYA}")

    def make_due() -> None:
        for s in env.store.e.AnimeSeries.select():
            s.last_refreshed = utcnow() - timedelta(days=1)

    env.store.run_sync(make_due)
    env.site.catalog.remove(ANIWORLD, "vanishing")  # the provider no longer has it: 404
    result = await env.refresh.refresh_all()
    assert list(result["failed"]) == ["vanishing"]
    env.store.run_sync(make_due)
    assert await env.refresh.due_keys() == [KAGUYA]  # backing off
    env.clock.now += 60 * 2
    assert await env.refresh.due_keys() == [KAGUYA, "vanishing"]

    assert await env.refresh.set_monitored("vanishing", False) == {"key": "vanishing", "monitored": False}
    assert await env.refresh.due_keys() == [KAGUYA]
    assert await env.refresh.due_keys(force=True) == [KAGUYA]
