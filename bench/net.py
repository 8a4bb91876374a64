"""What browser-grade fetching (curl_cffi) costs against the aiohttp client it replaced: installed size,
import time, RSS after one request, and the time per page on loopback. Prints one JSON line.

Each figure comes from a fresh interpreter (imports and RSS are per process), medians over --runs.

Usage: .venv/bin/python bench/net.py [--runs 5] [--pages 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: Run in a child: import the client, fetch one page from a local server, report import s, RSS and s/page.
CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

kind, pages = sys.argv[1], int(sys.argv[2])
from aiohttp import web  # the server side is the same for both
base_rss = rss_mb()
t0 = time.perf_counter()
if kind == "curl_cffi":
    import curl_cffi.requests  # the library alone; our client on top is timed below with the rest
else:
    import aiohttp
import_s = time.perf_counter() - t0
if kind == "curl_cffi":
    from aniworldd.providers.http import HttpClient

async def main():
    body = "<html><body>" + "x" * 20000 + "</body></html>"
    app = web.Application()
    app.router.add_get("/p", lambda r: web.Response(text=body, content_type="text/html"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/p"
    if kind == "curl_cffi":
        client = HttpClient(min_interval=0, retries=0, cache_ttl=0, max_concurrent=1)
        fetch = lambda: client.get(url, use_cache=False)
        close = client.close
    else:
        session = aiohttp.ClientSession()
        async def fetch():
            async with session.get(url) as resp:
                return await resp.text()
        close = session.close
    await fetch()
    first_rss = rss_mb()
    t = time.perf_counter()
    for _ in range(pages):
        await fetch()
    per_page = (time.perf_counter() - t) / pages
    await close()
    await runner.cleanup()
    return first_rss, per_page

first_rss, per_page = asyncio.run(main())
print(json.dumps({"import_s": import_s, "rss_delta_mb": first_rss - base_rss, "page_ms": per_page * 1000}))
"""


def installed_mb(dist: str) -> float:
    files = metadata.files(dist) or []
    return sum((f.size or 0) for f in files) / 1e6


def measure(kind: str, runs: int, pages: int) -> dict:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(pages)],
            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1],
        ).stdout  # fmt: skip
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {key: round(statistics.median(r[key] for r in results), 3) for key in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    curl = measure("curl_cffi", args.runs, args.pages)
    plain = measure("aiohttp", args.runs, args.pages)
    print(
        json.dumps(
            {
                "bench": "net",
                "curl_cffi_version": metadata.version("curl_cffi"),
                "curl_cffi_installed_mb": round(installed_mb("curl_cffi"), 2),
                "curl_cffi_import_s": curl["import_s"],
                "curl_cffi_rss_delta_mb": curl["rss_delta_mb"],
                "curl_cffi_page_ms": curl["page_ms"],
                "aiohttp_import_s": plain["import_s"],
                "aiohttp_rss_delta_mb": plain["rss_delta_mb"],
                "aiohttp_page_ms": plain["page_ms"],
                "runs": args.runs,
                "pages": args.pages,
            }
        )
    )


if __name__ == "__main__":
    main()
