"""Provider benchmark: prints ONE JSON line.

    .venv/bin/python bench/provider.py [--series 40] [--library 2000]

Measures, on this machine, against the local fake site (no internet, min_interval 0):
  parse_series_ms / parse_season_ms / parse_episode_ms   median time to parse one fixture page
  get_series_cold_ms   Kaguya-sama (series page + 3 seasons + movies = 5 GETs) through HTTP, empty cache
  get_series_cached_ms the same again, all pages from the TTL cache
  refresh_series_per_s AnimeService.refresh of `--series` generated series (2 seasons x 12 episodes each)
                       with provider.max_concurrent=2 (what the refresh loop does every refresh_interval)
  list_missing_ms      AnimeService.list_missing over `--library` series x 25 episodes in SQLite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aniworldd.db import Store  # noqa: E402
from aniworldd.db.models import utcnow  # noqa: E402
from aniworldd.providers import aniworld  # noqa: E402
from aniworldd.providers.common import SiteUrls  # noqa: E402
from aniworldd.providers.http import HttpClient  # noqa: E402
from aniworldd.providers.registry import build_providers  # noqa: E402
from aniworldd.services.anime_service import AnimeService  # noqa: E402
from tests.fakesite.app import start_fakesite  # noqa: E402
from tests.fakesite.catalog import ANIWORLD, make_series  # noqa: E402
from tests.fakesite.state import FakeSiteState  # noqa: E402

PAGES = Path(__file__).resolve().parents[1] / "tests" / "fixtures_pages" / "aniworld"


def _median_ms(fn, repeat: int = 30) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def parse_figures() -> dict:
    urls = SiteUrls("aniworld", "http://127.0.0.1:1")
    url = "https://aniworld.to/anime/stream/kaguya-sama-love-is-war"
    series = (PAGES / "series-kaguya-sama-love-is-war.html").read_text()
    season = (PAGES / "season-kaguya-sama-love-is-war-3.html").read_text()
    episode = (PAGES / "episode-kaguya-sama-love-is-war-1-1.html").read_text()
    return {
        "parse_series_ms": _median_ms(
            lambda: aniworld.parse_series_page(series, url, urls, "kaguya-sama-love-is-war")
        ),
        "parse_season_ms": _median_ms(lambda: aniworld.parse_season_page(season, url, urls, 3)),
        "parse_episode_ms": _median_ms(lambda: aniworld.parse_episode_page(episode, url, urls)),
    }


async def http_figures(n_series: int, tmp: Path) -> dict:
    state = FakeSiteState()
    for i in range(n_series):
        state.catalog.add(make_series(ANIWORLD, f"bench-series-{i}", f"Bench Series {i}", {1: 12, 2: 12}))
    runner, origin = await start_fakesite(state)
    cfg = {"aniworld_url": origin, "sto_url": origin, "min_interval": 0.0, "max_concurrent": 2, "retries": 1}
    providers = build_providers(cfg, client=HttpClient.from_config(cfg))
    store = Store(None, tmp / "data")
    try:
        t = time.perf_counter()
        await providers.aniworld.get_series("kaguya-sama-love-is-war")
        cold = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        await providers.aniworld.get_series("kaguya-sama-love-is-war")
        cached = (time.perf_counter() - t) * 1000

        service = AnimeService(store, providers, [tmp / "lib"], None)
        for i in range(n_series):
            await service.add(f"{origin}/anime/stream/bench-series-{i}")
        sem = asyncio.Semaphore(2)

        async def one(i: int) -> None:
            async with sem:
                await service.refresh(f"bench-series-{i}")

        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n_series)))
        refresh_s = time.perf_counter() - t
        return {
            "get_series_cold_ms": round(cold, 1),
            "get_series_cached_ms": round(cached, 2),
            "refresh_series_per_s": round(n_series / refresh_s, 1),
            "requests": providers.client.stats["requests"],
        }
    finally:
        await providers.close()
        await runner.cleanup()
        store.close()


async def list_missing_figure(n_series: int, tmp: Path) -> dict:
    store = Store(None, tmp / "data-missing")
    try:

        def fill() -> None:
            now = utcnow()
            for i in range(n_series):
                s = store.e.AnimeSeries(
                    key=f"lib-series-{i}",
                    name=f"Lib Series {i}",
                    site="aniworld",
                    folder=f"Lib Series {i}",
                    root=str(tmp),
                    last_refreshed=now,
                )
                for n in range(1, 26):
                    store.e.Episode(
                        series=s,
                        season=1,
                        number=n,
                        languages=["ger-sub"],
                        listed=True,
                        on_disk_path=f"/x/{i}/{n}.mp4" if n % 3 else None,
                    )

        await store.run(fill)
        service = AnimeService(store, None, [tmp], None)  # type: ignore[arg-type]
        times = []
        for _ in range(3):
            t = time.perf_counter()
            rows = await service.list_missing()
            times.append((time.perf_counter() - t) * 1000)
        assert len(rows) == n_series
        return {"list_missing_ms": round(statistics.median(times), 1), "library_series": n_series}
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=40)
    parser.add_argument("--library", type=int, default=2000)
    args = parser.parse_args()
    out = parse_figures()
    with tempfile.TemporaryDirectory() as tmp:
        out.update(asyncio.run(http_figures(args.series, Path(tmp))))
        out.update(asyncio.run(list_missing_figure(args.library, Path(tmp))))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
