"""Download throughput: curl vs the daemon's queue (add -> complete) on the same local file.

A local HTTP server (aiohttp, in its own process) serves a 200 MB file. `curl` downloads it; then the
same file goes through a running DownloadService (SQLite queue, worker, yt-dlp child, progress parsing,
fsync + atomic rename into the library, events), and the time from `add()` to the download_complete
event is taken. Finally 4 x 50 MB are queued at once with max_concurrent 4.

The source is handed to the queue by a one-line finder, so the figure measures the download path, not
the hoster page resolution (a few small HTTP requests that do not depend on the file size). The queue
runs as in a daemon working through its queue (one untimed download first): its yt-dlp child started
ahead (`downloads.warm_start`) is ready when an item is added. Every run starts with the page cache
written back (`sync`), so one run's dirty data does not slow the next, and every run's output is
deleted afterwards (curl's file and the daemon's episode alike), so each run writes into the same
free space.

The headline figures are taken with the server sending at `--rate` (default 112 MiB/s, a full 1 Gbit/s
line, the fastest link a home server downloads over). The `unthrottled` figures (loopback, about
1 GB/s here) are printed as well; there the daemon is bound by making 200 MB durable on disk before
the episode enters the library, which curl does not do, so `curl_fsync_s` (curl, then fsync of its
file) is printed beside it for the same guarantee. Each figure is the median of `--runs` runs.
Prints ONE JSON line:
  {"curl_s", "daemon_s", "ratio", "curl_fsync_s", "ratio_vs_curl_fsync", "concurrent_4x50_s",
   "rate_bps", "size_mb", "runs", "unthrottled": {...}}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aniworldd.config import load_text  # noqa: E402
from aniworldd.db import Store  # noqa: E402
from aniworldd.events import DOWNLOAD_COMPLETE, DOWNLOAD_FAILED, EventBus  # noqa: E402
from aniworldd.providers.hosters.base import MediaSource  # noqa: E402
from aniworldd.services.download_service import DownloadService  # noqa: E402

SERVER = r"""
import asyncio, sys
from aiohttp import web
root, port = sys.argv[1], int(sys.argv[2])

async def handler(request):
    path = f"{root}/{request.match_info['name']}"
    rate = int(request.query.get("rate", "0"))
    if not rate:
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})
    import os
    size = os.path.getsize(path)
    rng = request.http_range
    start = rng.start or 0
    resp = web.StreamResponse(status=206 if rng.start else 200)
    resp.content_type = "video/mp4"
    resp.content_length = size - start
    resp.headers["Accept-Ranges"] = "bytes"
    if rng.start:
        resp.headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    began, sent = loop.time(), 0
    with open(path, "rb") as fh:
        fh.seek(start)
        while chunk := fh.read(256 * 1024):
            await resp.write(chunk)
            sent += len(chunk)
            ahead = sent / rate - (loop.time() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
    return resp

app = web.Application()
app.router.add_get("/{name}", handler)
web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for i in range(size // len(block)):
            fh.write(block[:8] + i.to_bytes(8, "big") + block[16:])  # distinct blocks, cheap to make


@dataclass
class Candidate:
    source: MediaSource
    language: str = "ger-dub"
    hoster: str = "VOE"


class OneSource:
    """A finder that answers every episode with a fixed URL per (season, episode)."""

    def __init__(self, urls: dict[tuple[int, int], str]) -> None:
        self.urls = urls

    def candidates(self, site, key, season, episode, *, languages=None):
        url = self.urls[(season, episode)]

        class Attempts:
            def __init__(self) -> None:
                self._given = False

            def __aiter__(self):
                return self

            async def __anext__(self) -> Candidate:
                if self._given:
                    raise StopAsyncIteration
                self._given = True
                # The kind a hoster resolver reports: an HLS playlist goes to the HLS downloader.
                kind = "hls" if ".m3u8" in url else "mp4"
                return Candidate(MediaSource(url=url, kind=kind, hoster="VOE"))

            def record(self, *args) -> None:
                pass

            def error(self) -> Exception:
                return RuntimeError("download failed")

            async def aclose(self) -> None:
                pass

        return Attempts()


def wait_port(port: int) -> None:
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("bench server did not start")


def settle() -> None:
    """Write back what earlier runs left dirty, so it does not slow the next timed run down."""
    os.sync()


def time_curl(url: str, out: Path, durable: bool = False) -> float:
    """curl to a file; `durable` adds the fsync the daemon does before a file enters the library."""
    settle()
    began = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(out), url], check=True)
    if durable:
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    took = time.perf_counter() - began
    out.unlink()
    return took


class Queue:
    """A running DownloadService (as in the daemon) on a fresh data dir, fed one batch at a time."""

    def __init__(
        self, work: Path, base: str, concurrent: int, query: str, warmup: str = "warmup.mp4", extra: str = ""
    ) -> None:
        self.work, self.base, self.concurrent, self.query = work, base, concurrent, query
        #: The untimed first download (a name under `base`), and more `downloads` settings (YAML flow).
        self.warmup, self.extra = warmup, extra
        self.next_episode = 1
        self.urls: dict[tuple[int, int], str] = {}
        self.library = work / "q" / "library"

    async def __aenter__(self) -> Queue:
        shutil.rmtree(self.work / "q", ignore_errors=True)
        self.library.mkdir(parents=True)  # a mounted library root (the queue waits while one is missing)
        cfg = load_text(
            f"""
data_dir: {self.work / "q" / "data"}
library: {{roots: [{self.library}]}}
downloads: {{max_concurrent: {self.concurrent}, min_free_gb: 0, autostart: true{self.extra}}}
""",
            "bench.yaml",
            env={},
            base_dir=self.work,
        )
        self.store = Store(cfg["database"]["url"], cfg["data_dir"])
        self.key = "bench-series"

        def seed() -> None:
            s = self.store.e.AnimeSeries(key=self.key, name="Bench", site="aniworld", folder="Bench")
            for i in range(1, 201):
                self.store.e.Episode(series=s, season=1, number=i, languages=["ger-dub"])

        self.store.run_sync(seed)
        self.bus = EventBus()
        self.done: set[int] = set()
        self.failed: list[str] = []
        self.changed = asyncio.Event()
        self.bus.add_listener(self._listen)
        self.service = DownloadService(cfg, self.store, self.bus, OneSource(self.urls))
        await self.service.start()
        await self.time_batch([self.warmup])  # untimed: a daemon that has been working through its queue
        return self

    async def __aexit__(self, *exc) -> None:
        await self.service.close()
        self.store.close()

    def _listen(self, ev) -> None:
        if ev.type == DOWNLOAD_COMPLETE:
            self.done.add(ev.data["download_id"])
            self.changed.set()
        elif ev.type == DOWNLOAD_FAILED:
            self.failed.append(ev.data["reason"])
            self.changed.set()

    async def time_batch(self, names: list[str]) -> float:
        """Seconds from add() of the files until every download_complete event."""
        settle()
        await self.service.runner.launcher.wait_warm()  # a running daemon has its spare ready
        episodes = []
        for name in names:
            n = self.next_episode
            self.next_episode += 1
            self.urls[(1, n)] = f"{self.base}/{name}{self.query}"
            episodes.append((1, n))
        began = time.perf_counter()
        items = await self.service.add(self.key, episodes)
        ids = {i["id"] for i in items}
        while not ids <= self.done:
            if self.failed:
                raise RuntimeError(f"bench download failed: {self.failed}")
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 3600)
        took = time.perf_counter() - began
        self.clear_library()
        return took

    def clear_library(self) -> None:
        """Delete the finished episodes, untimed, as curl's output is deleted after each of its runs.

        Both sides then write every run into the same free space: on a VM disk, blocks never written
        before cost about twice as much as reused ones, which alone doubled the daemon's unthrottled time.
        """
        for path in self.library.rglob("*"):
            if path.is_file():
                path.unlink()


async def time_queue(
    work: Path, base: str, batches: list[list[str]], concurrent: int, query: str
) -> list[float]:
    async with Queue(work, base, concurrent, query) as queue:
        return [await queue.time_batch(names) for names in batches]


def measure(work: Path, base: str, small: list[str], runs: int, rate: int) -> dict:
    query = f"?rate={rate}" if rate else ""
    curl, durable = [], []
    for _ in range(runs):
        curl.append(time_curl(f"{base}/big.mp4{query}", work / "curl.out"))
        durable.append(time_curl(f"{base}/big.mp4{query}", work / "curl.out", durable=True))
    daemon = asyncio.run(time_queue(work, base, [["big.mp4"]] * runs, 1, query))
    concurrent = asyncio.run(time_queue(work, base, [small] * max(1, runs - 1), 4, query))
    curl_s, daemon_s = statistics.median(curl), statistics.median(daemon)
    durable_s = statistics.median(durable)
    return {
        "curl_s": round(curl_s, 3),
        "daemon_s": round(daemon_s, 3),
        "ratio": round(daemon_s / curl_s, 3),
        "curl_fsync_s": round(durable_s, 3),
        "ratio_vs_curl_fsync": round(daemon_s / durable_s, 3),
        "concurrent_4x50_s": round(statistics.median(concurrent), 3),
        "curl_runs": [round(x, 3) for x in curl],
        "daemon_runs": [round(x, 3) for x in daemon],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--small-mb", type=int, default=50)
    parser.add_argument("--rate", type=int, default=112 << 20, help="server rate in bytes/s (0 = unlimited)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-unthrottled", action="store_true", help="skip the unthrottled figures")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="aniworldd-bench-dl-"))
    served = work / "served"
    served.mkdir()
    make_file(served / "big.mp4", args.size_mb << 20)
    make_file(served / "warmup.mp4", 1 << 20)
    small = [f"small{i}.mp4" for i in range(4)]
    for name in small:
        make_file(served / name, args.small_mb << 20)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(served), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        result = measure(work, base, small, args.runs, args.rate)
        result.update(rate_bps=args.rate or None, size_mb=args.size_mb, runs=args.runs)
        if args.rate and not args.no_unthrottled:
            result["unthrottled"] = measure(work, base, small, args.runs, 0)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
