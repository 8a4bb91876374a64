"""Web UI benchmark in real headless Chromium: library page weight and time to interactive. ONE JSON line.

    .venv/bin/python bench/ui.py [--series 500] [--runs 5]

A real daemon process (`python -m aniworldd run`) serves a library of --series series (two seasons of 12
episodes, a third of them missing) seeded straight into its SQLite file; the browser is Debian chromium
driven by Playwright, logged in through localStorage, opening `/#/library`.

  page_weight_bytes        bytes on the wire for the library page with an empty cache (document, CSS, JS,
                           the GET /api/anime answer, headers included; Chrome's encodedDataLength), median;
                           poster images are not included: they load lazily (only cards near the screen)
                           after the page is interactive, and are counted apart
  page_weight_warm_bytes   the same on a reload with the cache filled (vendor files are immutable-cached,
                           the app's own files revalidate with 304)
  requests, requests_warm  HTTP requests of those loads (the WebSocket is not counted)
  api_anime_bytes          the GET /api/anime answer alone (part of page_weight_bytes)
  poster_requests/_bytes   the lazy poster images (GET /api/anime/{key}/poster) loaded during the cold load's
                           measurement (the seeded series have no poster.jpg: each is the SVG placeholder)
  tti_ms / tti_warm_ms     time to interactive, median: from navigation start until the library list is
                           rendered with its handlers attached (the app's `aniworldd:ready:library` mark)
                           and no long task (> 50 ms) is still running, i.e. max(ready mark, end of the last
                           long task)
  fcp_ms, dcl_ms           first contentful paint and DOMContentLoaded, cold, median
No throttling: this is the LAN a NAS is used on; weight is what decides a slow link.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aniworldd.db import Store  # noqa: E402
from tests.e2e.harness import CHROMIUM_ARGS, DaemonProcess, chromium_path  # noqa: E402

PASSWORD = "bench-password-1"

# Long tasks (main thread busy > 50 ms), recorded from the very start of the page.
INIT_SCRIPT = """
window.__longTasks = [];
try {
  new PerformanceObserver((list) => list.getEntries().forEach(
    (e) => window.__longTasks.push(e.startTime + e.duration))).observe({type: "longtask", buffered: true});
} catch (e) {}
"""

TIMINGS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const ready = performance.getEntriesByName("aniworldd:ready:library")[0];
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const lastLong = Math.max(0, ...window.__longTasks);
  return {ready: ready ? ready.startTime : null, last_long_task_end: lastLong,
          fcp: fcp ? fcp.startTime : null, dcl: nav.domContentLoadedEventEnd,
          rows: document.querySelectorAll(".series-row").length};
}"""


def seed(data_dir: Path, count: int) -> int:
    """Write `count` series straight into the daemon's SQLite file; returns the number of missing episodes."""
    store = Store(None, data_dir)

    def fill() -> int:
        e = store.e
        missing = 0
        for i in range(count):
            name = f"Bench Series {i:04d}"
            site = "aniworld" if i % 3 else "sto"
            key = f"bench-series-{i:04d}"
            link = (
                f"https://aniworld.to/anime/stream/{key}"
                if site == "aniworld"
                else f"https://s.to/serie/{key}"
            )
            series = e.AnimeSeries(
                key=key,
                name=name,
                site=site,
                folder=f"{name} (20{i % 25:02d})",
                link=link,
                description=f"{name}: a series made up for the UI benchmark.",
            )
            for season in (1, 2):
                for number in range(1, 13):
                    present = (i + season * 12 + number) % 3 != 0
                    missing += not present
                    e.Episode(
                        series=series,
                        season=season,
                        number=number,
                        title=f"Episode {number}",
                        languages=["ger-sub", "eng-sub"],
                        on_disk_path=f"/library/{name}/S{season:02d}E{number:03d}.mp4" if present else None,
                        on_disk_language="ger-sub" if present else None,
                    )
        return missing

    async def run() -> int:
        try:
            return await store.run(fill)
        finally:
            await asyncio.to_thread(store.close)

    return asyncio.run(run())


def _is_poster(url: str) -> bool:
    path = urlsplit(url).path
    return path.endswith("/poster") or path.endswith("/poster-placeholder.svg")


def load(page: object, cdp: object, url: str, reload: bool = False) -> dict:
    """Navigate (or reload) and wait until the library is interactive; returns bytes, requests, timings."""
    finished: dict[str, float] = {}
    urls: dict[str, str] = {}

    def on_response(params: dict) -> None:
        urls[params["requestId"]] = params["response"]["url"]

    def on_finished(params: dict) -> None:
        finished[params["requestId"]] = params["encodedDataLength"]

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    if reload:
        page.reload(wait_until="load")
    else:
        page.goto(url, wait_until="load")
    page.wait_for_selector("html[data-ready=library]", timeout=60_000)
    page.wait_for_timeout(1000)  # let late long tasks and the last responses be reported
    t = page.evaluate(TIMINGS)
    cdp.remove_listener("Network.responseReceived", on_response)
    cdp.remove_listener("Network.loadingFinished", on_finished)
    posters = {rid for rid in finished if _is_poster(urls.get(rid, ""))}
    page = {rid: size for rid, size in finished.items() if rid not in posters}
    api = sum(size for rid, size in page.items() if urlsplit(urls.get(rid, "")).path == "/api/anime")
    return {
        "bytes": int(sum(page.values())),
        "requests": len(page),
        "api_anime_bytes": int(api),
        "poster_requests": len(posters),
        "poster_bytes": int(sum(finished[rid] for rid in posters)),
        "tti_ms": max(t["ready"], t["last_long_task_end"]),
        "fcp_ms": t["fcp"],
        "dcl_ms": t["dcl"],
        "rows": t["rows"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    chromium = chromium_path()
    if chromium is None:
        print(json.dumps({"error": "Debian chromium is not installed"}))
        return 1
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="aniworldd-bench-ui-"))
    daemon = DaemonProcess(workdir, "http://127.0.0.1:9")  # provider never contacted
    try:
        missing = seed(daemon.data_dir, args.series)
        daemon.start()
        token = daemon.ensure_login(PASSWORD)
        url = daemon.url + "/#/library"
        cold: list[dict] = []
        warm: list[dict] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            version = browser.version
            for _ in range(args.runs):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(f"localStorage.setItem('aniworldd.token', {json.dumps(token)});")
                context.add_init_script(INIT_SCRIPT)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cold.append(load(page, cdp, url))
                warm.append(load(page, cdp, url, reload=True))
                context.close()
            browser.close()
        rows = {r["rows"] for r in cold + warm}
        if rows != {args.series}:
            raise RuntimeError(f"the library showed {rows} rows, expected {args.series}")

        def med(runs: list[dict], key: str) -> float:
            return round(statistics.median(r[key] for r in runs), 1)

        print(
            json.dumps(
                {
                    "series": args.series,
                    "missing_episodes": missing,
                    "runs": args.runs,
                    "page_weight_bytes": int(med(cold, "bytes")),
                    "page_weight_warm_bytes": int(med(warm, "bytes")),
                    "requests": int(med(cold, "requests")),
                    "requests_warm": int(med(warm, "requests")),
                    "api_anime_bytes": int(med(cold, "api_anime_bytes")),
                    "poster_requests": int(med(cold, "poster_requests")),
                    "poster_bytes": int(med(cold, "poster_bytes")),
                    "tti_ms": med(cold, "tti_ms"),
                    "tti_warm_ms": med(warm, "tti_ms"),
                    "fcp_ms": med(cold, "fcp_ms"),
                    "dcl_ms": med(cold, "dcl_ms"),
                    "chromium": version,
                }
            )
        )
        return 0
    finally:
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
