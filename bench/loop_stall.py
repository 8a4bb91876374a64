"""How long heavy requests stall the event loop: /health latency while a daemon handles them. ONE JSON line.

A real daemon process is started; a thread polls `/health` every 10 ms over one keep-alive connection and
records every answer's latency while, one after the other:

* a 1 MB config PUT (under server.max_body_bytes, over the 256 KB config cap: refused before any YAML),
* a config PUT just under the cap (~250 KB: validated, dumped and saved, in a worker thread),
* adding a series whose provider page is 3 MB (a real aniworld page padded with markup; served by a
  look-alike site in this process).

The figure per phase is the worst /health latency during it; the target (issue 16) is <= 100 ms.

Usage: .venv/bin/python bench/loop_stall.py [--page-mb 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from aiohttp import web

PAGES = Path(__file__).resolve().parents[1] / "tests" / "fixtures_pages" / "aniworld"
KEY = "kaguya-sama-love-is-war"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def padded_series_page(size: int) -> str:
    """The real series page with filler markup before </body> until it is `size` bytes."""
    page = (PAGES / f"series-{KEY}.html").read_text()
    block = '<div class="filler"><span title="x">lorem ipsum dolor sit amet</span><a href="#">x</a></div>\n'
    count = max(0, (size - len(page)) // len(block))
    return page.replace("</body>", block * count + "</body>", 1)


async def start_site(page_bytes: int) -> tuple[web.AppRunner, str]:
    series = padded_series_page(page_bytes)
    seasons = {n: (PAGES / f"season-{KEY}-{n}.html").read_text() for n in (1, 2, 3)}

    async def series_page(request: web.Request) -> web.Response:
        return web.Response(text=series, content_type="text/html")

    async def season_page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return web.Response(text=seasons.get(n, seasons[1]), content_type="text/html")

    async def movies_page(request: web.Request) -> web.Response:
        return web.Response(text=(PAGES / f"filme-{KEY}.html").read_text(), content_type="text/html")

    app = web.Application()
    app.router.add_get(f"/anime/stream/{KEY}", series_page)
    app.router.add_get(f"/anime/stream/{KEY}/staffel-{{n:\\d+}}", season_page)
    app.router.add_get(f"/anime/stream/{KEY}/filme", movies_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
    return runner, f"http://127.0.0.1:{port}"


class Poller(threading.Thread):
    """GET /health every 10 ms; `samples` holds (start time, latency s)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                conn.request("GET", "/health")
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.samples.append((t, time.perf_counter() - t))
            time.sleep(0.01)
        conn.close()

    def worst_ms(self, start: float, end: float) -> float:
        window = [lat for t, lat in self.samples if start - 0.2 <= t <= end]
        return round(max(window) * 1000, 1) if window else float("nan")


def call(port: int, method: str, path: str, body: bytes | None, token: str | None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def login(port: int) -> str:
    body = json.dumps({"password": PASSWORD}).encode()
    call(port, "POST", "/api/auth/setup", body, None)
    status, data = call(port, "POST", "/api/auth/login", body, None)
    assert status == 200, data
    return json.loads(data)["access_token"]


def config_doc(tmp: Path, port: int, origin: str, padding: int) -> dict:
    """A valid config document, `padding` bytes of it in long (but well-formed) CORS origins."""
    each = max(1, padding // 64)
    return {
        "data_dir": str(tmp / "data"),
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "cors_origins": [f"http://h{i}.example/" + "x" * each for i in range(64)],
        },
        "library": {"roots": [str(tmp / "library")], "watch": False, "scan_on_start": False},
        "downloads": {"autostart": False},
        "provider": {"aniworld_url": origin, "sto_url": origin, "min_interval": 0, "retries": 0},
    }


def start_daemon(cfg: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "aniworldd", "run", "--config", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(port: int) -> None:
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the daemon did not answer /health")


def phase(poller: Poller, fn) -> tuple[float, object, float]:
    start = time.perf_counter()
    result = fn()
    end = time.perf_counter()
    time.sleep(0.05)
    return poller.worst_ms(start, end), result, round((end - start) * 1000, 1)


async def main(page_mb: float) -> dict:
    page_bytes = int(page_mb * 1024 * 1024)
    runner, origin = await start_site(page_bytes)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "library").mkdir()
        port = free_port()
        cfg = tmp / "config.yaml"
        cfg.write_text(json.dumps(config_doc(tmp, port, origin, 0)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")}
        proc = start_daemon(cfg, env)
        poller = Poller(port)
        try:
            await asyncio.to_thread(wait_ready, port)
            token = await asyncio.to_thread(login, port)
            poller.start()
            await asyncio.sleep(1.0)  # a baseline
            big = json.dumps(config_doc(tmp, port, origin, 1_000_000)).encode()
            under = json.dumps(config_doc(tmp, port, origin, 250 * 1024 - 2000)).encode()
            link = json.dumps({"link": f"{origin}/anime/stream/{KEY}"}).encode()

            def run_all() -> dict:
                figures: dict = {}
                worst, (status, _), took = phase(poller, lambda: call(port, "PUT", "/api/config", big, token))
                figures.update(config_1mb_worst_health_ms=worst, config_1mb_status=status, config_1mb_ms=took)
                worst, (status, _), took = phase(
                    poller, lambda: call(port, "PUT", "/api/config", under, token)
                )
                figures.update(
                    config_250kb_worst_health_ms=worst, config_250kb_status=status, config_250kb_ms=took
                )
                worst, (status, body), took = phase(
                    poller, lambda: call(port, "POST", "/api/anime/add", link, token)
                )
                figures.update(
                    provider_page_worst_health_ms=worst,
                    provider_page_status=status,
                    provider_page_ms=took,
                    provider_page_error=None if status == 200 else body.decode(errors="replace")[:200],
                )
                return figures

            figures = await asyncio.to_thread(run_all)
            poller.stop.set()
            poller.join(5)
            latencies = [lat for _, lat in poller.samples]
            return {
                "bench": "loop_stall",
                "config_1mb_bytes": len(big),
                "config_250kb_bytes": len(under),
                "provider_page_bytes": page_bytes,
                **figures,
                "health_polls": len(latencies),
                "health_median_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
                "target_ms": 100,
            }
        finally:
            poller.stop.set()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page-mb", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.page_mb))))
