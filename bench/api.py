"""REST + WebSocket benchmark of the real daemon: prints ONE JSON line.

    .venv/bin/python bench/api.py [--series 2000 --episodes 50 --concurrency 32 --clients 500]

A temp data dir gets a real SQLite database with 2,000 series and 100,000 episodes (every second series
misses its last 10 episodes; a queue with pending, completed and failed items). The daemon runs as a child
process (`aniworldd`'s Daemon, exactly as `aniworldd run` builds it) so its RSS and CPU are its own; this
process is the load generator:
  anime_p50_ms / anime_p99_ms / anime_rps      GET /api/anime at concurrency 32 (1,000 series with missing)
  queue_p50_ms / queue_p99_ms / queue_rps      GET /api/queue/status at concurrency 32
  ws_fanout_p50_ms / ws_fanout_p99_ms          500 WebSocket clients in the download_progress room, the daemon
                                               publishing 10 progress events/s: publish -> received delay
  daemon_rss_mb / daemon_peak_rss_mb           the daemon's resident memory after the run / its peak
Targets (issue 6): anime_p99_ms <= 50, queue_rps >= 2000, ws_fanout_p99_ms <= 100.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "benchmark password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- seeding ------------------------------------------------------------------------------------------------


def write_config(tmp: Path, port: int) -> Path:
    path = tmp / "config.yaml"
    path.write_text(
        f"data_dir: {tmp / 'data'}\n"
        f"server:\n  port: {port}\n"
        f"library:\n  roots: [{tmp / 'library'}]\n  watch: false\n  scan_on_start: false\n"
        "  write_nfo: false\n"
        "downloads:\n  autostart: false\n"
        "provider:\n  aniworld_url: http://127.0.0.1:9\n  sto_url: http://127.0.0.1:9\n"
        "  refresh_interval: 30d\n"
        "logging:\n  level: WARNING\n"
    )
    return path


def seed(config_path: Path, series: int, episodes: int) -> None:
    """Create the schema through the Store, then bulk insert with sqlite3 (fast, same tables)."""
    from aniworldd.config import load_config
    from aniworldd.db import Store

    cfg = load_config(config_path, env={})
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    db_path = store.sqlite_path
    store.close()
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    con = sqlite3.connect(db_path)
    with con:
        con.executemany(
            "INSERT INTO anime_series (id, key, name, site, folder, root, link, alt_titles, genres,"
            " monitored, matched, last_refreshed, created_at, updated_at)"
            " VALUES (?, ?, ?, 'aniworld', ?, ?, ?, '[]', '[]', 1, 1, ?, ?, ?)",
            [
                (
                    i,
                    f"series-{i:04d}",
                    f"Series {i:04d}",
                    f"Series {i:04d} (2020)",
                    cfg["library"]["roots"][0],
                    f"https://aniworld.to/anime/stream/series-{i:04d}",
                    now,
                    now,
                    now,
                )
                for i in range(1, series + 1)
            ],
        )
        rows = []
        for i in range(1, series + 1):
            for n in range(1, episodes + 1):
                season, number = (n - 1) // 25 + 1, (n - 1) % 25 + 1
                missing = i % 2 == 0 and n > episodes - 10
                path = None if missing else f"/library/Series {i:04d}/S{season:02d}E{number:03d}.mp4"
                rows.append(
                    (
                        i,
                        season,
                        number,
                        f"Episode {number}",
                        '["ger-dub", "ger-sub"]',
                        path,
                        None if missing else "ger-dub",
                        now,
                        now,
                        now,
                    )
                )
        con.executemany(
            "INSERT INTO episode (series, season, number, title, languages, listed, on_disk_path,"
            " on_disk_language, first_seen, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            rows,
        )
        queue = []
        for j, status in enumerate(["pending"] * 40 + ["completed"] * 60 + ["failed"] * 10):
            sid = 2 * (j % (series // 2)) + 2
            queue.append((sid, 3 + j // 100, j % 25 + 1, status, now, now))
        con.executemany(
            "INSERT INTO download_queue_item (series, season, episode, status, priority, priority_rank,"
            " progress, downloaded_bytes, attempts, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'normal', 1, 0, 0, 0, ?, ?)",
            queue,
        )
    con.close()


# --- the daemon side (child process) ------------------------------------------------------------------------


async def serve(config_path: Path) -> None:
    """Run the real Daemon; publish progress events when the parent asks (one command line on stdin)."""
    from aniworldd import events
    from aniworldd.config import load_config
    from aniworldd.daemon import Daemon

    cfg = load_config(config_path)
    daemon = Daemon(cfg, config_path)
    await daemon.start()
    ctx = daemon.ctx
    print(f"READY {daemon.port} {os.getpid()}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if not line or line == "quit":
            break
        cmd, count, rate = line.split()
        if cmd == "events":
            interval = 1.0 / float(rate)
            start = time.perf_counter()
            for i in range(int(count)):
                await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
                ctx.bus.publish(
                    events.DOWNLOAD_PROGRESS,
                    {
                        "download_id": i,
                        "key": "series-0002",
                        "folder": "Series 0002 (2020)",
                        "season": 2,
                        "episode": 16,
                        "language": "ger-dub",
                        "percent": round(100 * i / int(count), 1),
                        "downloaded_bytes": i * 1_000_000,
                        "total_bytes": int(count) * 1_000_000,
                        "speed_mbps": 4.2,
                        "eta_seconds": int(count) - i,
                        "sent_at": time.time(),
                    },
                )
            print("DONE", flush=True)
    await daemon.stop()


# --- the load generator (parent process) --------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def load(session: aiohttp.ClientSession, url: str, headers: dict, concurrency: int, total: int) -> dict:
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}")
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {
        "p50": round(pct(latencies, 50), 2),
        "p99": round(pct(latencies, 99), 2),
        "rps": round(len(latencies) / elapsed, 1),
    }


async def fanout(
    base: str, token: str, clients: int, proc: subprocess.Popen, seconds: int, rate: int
) -> dict:
    delays: list[float] = []
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sockets = []
    try:
        for _ in range(clients):
            ws = await session.ws_connect(f"{base}/ws/connect", params={"token": token})
            await ws.send_json({"action": "join", "room": "download_progress"})
            await ws.send_json({"action": "ping"})  # answered after the join took effect
            if (await ws.receive_json())["type"] != "pong":
                raise RuntimeError("expected pong")
            sockets.append(ws)
        expected = seconds * rate

        async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
            got = 0
            while got < expected:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"socket closed: {msg}")
                data = json.loads(msg.data)
                if data["type"] == "download_progress":
                    delays.append((time.time() - data["data"]["sent_at"]) * 1000)
                    got += 1

        readers = [asyncio.ensure_future(reader(ws)) for ws in sockets]
        proc.stdin.write(f"events {expected} {rate}\n")
        proc.stdin.flush()
        await asyncio.wait_for(asyncio.gather(*readers), seconds + 30)
    finally:
        for ws in sockets:
            await ws.close()
        await session.close()
    return {"p50": round(pct(delays, 50), 2), "p99": round(pct(delays, 99), 2), "messages": len(delays)}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (load-independent cost, unlike latency on a busy box)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return round(int(fields["VmRSS"].split()[0]) / 1024, 1), round(int(fields["VmHWM"].split()[0]) / 1024, 1)


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="aniworldd-bench-api-") as tmpdir:
        tmp = Path(tmpdir)
        port = free_port()
        config_path = write_config(tmp, port)
        seed(config_path, args.series, args.episodes)
        env = {**os.environ, "ANIWORLDD_MASTER_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(  # noqa: ASYNC220 - the daemon under test; talked to through pipes
            [sys.executable, __file__, "--serve", str(config_path)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            ready = proc.stdout.readline().split()
            if not ready or ready[0] != "READY":
                raise RuntimeError(f"daemon did not start: {ready}")
            base, pid = f"http://127.0.0.1:{ready[1]}", int(ready[2])
            # The load generator does not inflate gzip bodies: that is client work (a browser does it in C),
            # and on a 2-core box it would steal CPU from the daemon being measured.
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
                async with session.post(f"{base}/api/auth/login", json={"password": PASSWORD}) as resp:
                    token = (await resp.json())["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                t0 = time.perf_counter()  # the first request builds the summaries (cache miss)
                async with session.get(
                    f"{base}/api/anime", headers={**headers, "Accept-Encoding": "identity"}
                ) as resp:
                    summaries = await resp.json()
                    anime_bytes = len(await resp.read())
                anime_cold_ms = (time.perf_counter() - t0) * 1000
                async with session.get(f"{base}/api/anime", headers=headers) as resp:
                    anime_gzip_bytes = len(await resp.read())
                await load(session, f"{base}/api/anime", headers, args.concurrency, 200)  # warm-up
                cpu0 = cpu_s(pid)
                anime = await load(session, f"{base}/api/anime", headers, args.concurrency, args.requests)
                anime_cpu = (cpu_s(pid) - cpu0) / args.requests
                await load(session, f"{base}/api/queue/status", headers, args.concurrency, 500)
                cpu0 = cpu_s(pid)
                queue = await load(
                    session, f"{base}/api/queue/status", headers, args.concurrency, args.requests * 2
                )
                queue_cpu = (cpu_s(pid) - cpu0) / (args.requests * 2)
            cpu0 = cpu_s(pid)
            ws = await fanout(base, token, args.clients, proc, args.seconds, args.rate)
            ws_cpu = cpu_s(pid) - cpu0
            proc.stdout.readline()  # DONE
            rss, peak = rss_mb(pid)
        finally:
            if proc.poll() is None:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return {
        "bench": "api",
        "series": args.series,
        "episodes": args.series * args.episodes,
        "anime_listed": len(summaries),
        "anime_body_kb": round(anime_bytes / 1024, 1),
        "anime_gzip_kb": round(anime_gzip_bytes / 1024, 1),
        "anime_cold_ms": round(anime_cold_ms, 1),
        "concurrency": args.concurrency,
        "anime_p50_ms": anime["p50"],
        "anime_p99_ms": anime["p99"],
        "anime_rps": anime["rps"],
        "anime_daemon_cpu_us": round(anime_cpu * 1e6),
        "queue_p50_ms": queue["p50"],
        "queue_p99_ms": queue["p99"],
        "queue_rps": queue["rps"],
        "queue_daemon_cpu_us": round(queue_cpu * 1e6),
        "ws_clients": args.clients,
        "ws_events_per_s": args.rate,
        "ws_messages": ws["messages"],
        "ws_fanout_p50_ms": ws["p50"],
        "ws_fanout_p99_ms": ws["p99"],
        "ws_daemon_cpu_s": round(ws_cpu, 2),
        "daemon_rss_mb": rss,
        "daemon_peak_rss_mb": peak,
        "load_avg_1m": os.getloadavg()[0],
        "targets_met": anime["p99"] <= 50 and queue["rps"] >= 2000 and ws["p99"] <= 100,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=50, help="episodes per series")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000, help="GET /api/anime requests measured")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=int, default=10, help="progress events per second")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve)))
        return 0
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
