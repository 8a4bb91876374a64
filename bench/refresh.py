"""Scheduled refresh benchmark: one pass over N monitored series against the look-alike site. ONE JSON line.

    .venv/bin/python bench/refresh.py                # 2,000 series: ~40 min at the default politeness
    .venv/bin/python bench/refresh.py --series 200   # scaled down; `projected_s` extrapolates to --project

The fake aniworld.to serves N series (1-3 seasons of 12 episodes each); the database knows them all as
monitored and due, with their episode lists one refresh old (every 10th series gets a new episode on the
site). One RefreshService pass runs with the real AnimeService, ProviderSet and HttpClient using the
config defaults for `provider.max_concurrent` and `provider.min_interval` (override with the flags).

The fake site gets a rate limiter in front (like a CDN's): more than --site-limit requests in any
one-second window are answered 429 with Retry-After. Reported:
  requests, duration_s, requests_per_s      site requests of the pass and their average rate
  peak_requests_per_s                       most requests that started in any one-second window
  max_inflight                              most concurrent requests the site saw
  http_429, http_503                        rate-limit / overload answers the site gave (want: 0)
  refreshed, failed, new_episodes           the pass's own result
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web  # noqa: E402

from aniworldd.config import load_text  # noqa: E402
from aniworldd.db import Store  # noqa: E402
from aniworldd.db.models import utcnow  # noqa: E402
from aniworldd.events import EventBus  # noqa: E402
from aniworldd.providers.http import HttpClient  # noqa: E402
from aniworldd.providers.registry import build_providers  # noqa: E402
from aniworldd.services.anime_service import AnimeService  # noqa: E402
from aniworldd.services.refresh_service import RefreshService  # noqa: E402
from tests.fakesite.app import make_app  # noqa: E402
from tests.fakesite.catalog import ANIWORLD, GER_DUB, GER_SUB, Catalog, Episode, make_series  # noqa: E402
from tests.fakesite.state import FakeSiteState  # noqa: E402

EPISODES_PER_SEASON = 12


def build_catalog(n: int) -> Catalog:
    series = []
    for i in range(n):
        seasons = {s: EPISODES_PER_SEASON for s in range(1, 2 + i % 3)}
        series.append(
            make_series(
                ANIWORLD,
                f"bench-series-{i}",
                f"Bench Series {i}",
                seasons,
                languages=[GER_DUB, GER_SUB],
                hosters=["VOE"],
                start_year=2000 + i % 25,
            )
        )
    return Catalog(series)


def seed(store: Store, catalog: Catalog) -> None:
    """Every series known, monitored and due, with the episode list of its last refresh."""
    old = utcnow() - timedelta(days=2)

    def q() -> None:
        e = store.e
        for s in catalog.all():
            row = e.AnimeSeries(
                key=s.key,
                name=s.title,
                site=s.site,
                folder=s.title,
                monitored=True,
                last_refreshed=old,
                link=f"/anime/stream/{s.key}",
            )
            for season, eps in s.seasons.items():
                for ep in eps:
                    e.Episode(
                        series=row,
                        season=season,
                        number=ep.number,
                        title=ep.title_de,
                        languages=ep.languages(s.site),
                        first_seen=old,
                    )

    store.run_sync(q)


def limiter(limit: int, counts: dict[int, int]) -> web.middleware:
    """At most `limit` site requests per sliding second, else 429 (Retry-After: 1); counts statuses."""
    starts: list[float] = []

    @web.middleware
    async def middleware(request: web.Request, handler):  # noqa: ANN202
        now = time.monotonic()
        while starts and starts[0] <= now - 1.0:
            starts.pop(0)
        if limit and len(starts) >= limit:
            counts[429] = counts.get(429, 0) + 1
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        starts.append(now)
        resp = await handler(request)
        counts[resp.status] = counts.get(resp.status, 0) + 1
        return resp

    return middleware


def peak_per_second(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


async def run(args: argparse.Namespace) -> dict:
    catalog = build_catalog(args.series)
    state = FakeSiteState(catalog=catalog, search_noise=False)
    counts: dict[int, int] = {}
    app = make_app(state)
    app.middlewares.insert(0, limiter(args.site_limit, counts))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001

    tmp = Path(tempfile.mkdtemp(prefix="aniworldd-bench-refresh-"))
    overrides = ""
    if args.max_concurrent is not None:
        overrides += f"  max_concurrent: {args.max_concurrent}\n"
    if args.min_interval is not None:
        overrides += f"  min_interval: {args.min_interval}\n"
    cfg = load_text(
        f"data_dir: {tmp / 'data'}\nlibrary:\n  roots: [{tmp / 'library'}]\n"
        f"provider:\n  aniworld_url: {origin}\n  sto_url: {origin}\n{overrides}",
        "config.yaml",
        env={},
        base_dir=tmp,
    )
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    seed(store, catalog)
    for i, s in enumerate(catalog.all()):  # the site lists one new episode for every 10th series
        if i % 10 == 0:
            season = max(s.seasons)
            s.seasons[season].append(
                Episode(number=EPISODES_PER_SEASON + 1, title_de="Neu", links={GER_SUB: ["VOE"]})
            )

    providers = build_providers(cfg["provider"], HttpClient.from_config(cfg["provider"]))
    anime = AnimeService(
        store, providers, cfg["library"]["roots"], EventBus(), languages=cfg["downloads"]["language"]
    )
    refresh = RefreshService(store, anime, None, cfg["provider"], cfg["downloads"])
    due = await refresh.due_keys()
    state.request_log.clear()
    started = time.monotonic()
    result = await refresh.refresh_all(due)
    duration = time.monotonic() - started
    times = [r["time"] for r in state.site_requests()]
    await providers.close()
    store.close()
    await runner.cleanup()

    requests = len(times)
    rate = requests / duration if duration else 0.0
    out = {
        "bench": "refresh",
        "series": args.series,
        "due": len(due),
        "max_concurrent": cfg["provider"]["max_concurrent"],
        "min_interval": cfg["provider"]["min_interval"],
        "site_limit_per_s": args.site_limit,
        "requests": requests,
        "duration_s": round(duration, 2),
        "requests_per_s": round(rate, 3),
        "peak_requests_per_s": peak_per_second(times),
        "max_inflight": max(state.max_inflight.values(), default=0),
        "http_429": counts.get(429, 0),
        "http_503": counts.get(503, 0),
        "refreshed": result["refreshed"],
        "failed": len(result["failed"]),
        "new_episodes": sum(len(v) for v in result["new_episodes"].values()),
    }
    if args.series and args.series != args.project:
        out[f"projected_s_{args.project}_series"] = round(duration * args.project / args.series, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument(
        "--max-concurrent", type=int, default=None, help="provider.max_concurrent (default: config)"
    )
    parser.add_argument(
        "--min-interval", type=float, default=None, help="provider.min_interval (default: config)"
    )
    parser.add_argument(
        "--site-limit", type=int, default=4, help="site requests allowed per second (0 = none)"
    )
    parser.add_argument(
        "--project", type=int, default=2000, help="series count to extrapolate the duration to"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
