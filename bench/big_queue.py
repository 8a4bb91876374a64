"""A big queue against the real daemon (issue 16 item 11): prints ONE JSON line.

    .venv/bin/python bench/big_queue.py [--pending 5000 --rounds 30]

A temp data dir gets a real SQLite database with one series and a queue of 5,000 pending, 300 completed and
100 failed items. The daemon runs as a child process (`aniworldd`'s Daemon, as `aniworldd run` builds it);
this process measures:
  status_cold_p50_ms / _p99_ms   GET /api/queue/status right after a queue change (PATCH of a priority),
                                 so the response cache is empty and the status is built from the database:
                                 the case the issue measured at 1.5 s (target <= 50 ms)
  status_warm_p50_ms             the same request answered from the cache (nothing changed in between)
  page_p50_ms                    GET /api/queue/status?limit=200&offset=2500 (a deep page, never cached)
  status_bytes                   size of the default answer (the WebSocket snapshot is the same document)
  ws_messages / ws_max_bytes     queue_status messages a client joined to `downloads` received during the
                                 rounds and the biggest one; ws_connected: still connected at the end (before
                                 the fix: one 1.95 MB message over the 1 MB client buffer, client dropped)
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "benchmark password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp: Path, port: int) -> Path:
    (tmp / "library").mkdir(exist_ok=True)
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


def seed(config_path: Path, pending: int, completed: int, failed: int) -> None:
    """Create the schema through the Store, then bulk insert with sqlite3 (fast, same tables)."""
    from aniworldd.config import load_config
    from aniworldd.db import Store

    cfg = load_config(config_path, env={})
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    db_path = store.sqlite_path
    store.close()
    start = datetime.now(UTC).replace(tzinfo=None)
    con = sqlite3.connect(db_path)
    with con:
        now = start.isoformat(sep=" ")
        con.execute(
            "INSERT INTO anime_series (id, key, name, site, folder, root, link, alt_titles, genres,"
            " monitored, matched, created_at, updated_at)"
            " VALUES (1, 'big-show', 'Big Show', 'aniworld', 'Big Show (2020)', ?, ?, '[]', '[]', 1, 1,"
            " ?, ?)",
            (cfg["library"]["roots"][0], "https://aniworld.to/anime/stream/big-show", now, now),
        )
        rows = []
        statuses = ["pending"] * pending + ["completed"] * completed + ["failed"] * failed
        for j, status in enumerate(statuses):
            stamp = (start + timedelta(seconds=j)).isoformat(sep=" ")
            done = stamp if status == "completed" else None
            error = "no hoster offered the episode" if status == "failed" else None
            rows.append((j // 1000 + 1, j % 1000 + 1, status, error, done, stamp, stamp))
        con.executemany(
            "INSERT INTO download_queue_item (series, season, episode, language, status, priority,"
            " priority_rank, progress, downloaded_bytes, attempts, error, completed_at, created_at,"
            " updated_at)"
            " VALUES (1, ?, ?, 'ger-dub', ?, 'normal', 1, 0, 0, 0, ?, ?, ?, ?)",
            rows,
        )
    con.close()


async def serve(config_path: Path) -> None:
    from aniworldd.config import load_config
    from aniworldd.daemon import Daemon

    daemon = Daemon(load_config(config_path), config_path)
    await daemon.start()
    print(f"READY {daemon.port} {os.getpid()}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    await daemon.stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def timed_get(session: aiohttp.ClientSession, url: str, headers: dict) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    async with session.get(url, headers=headers) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{url}: HTTP {resp.status}: {body[:200]!r}")
    return (time.perf_counter() - t0) * 1000, body


async def measure(base: str, rounds: int) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/auth/login", json={"password": PASSWORD}) as resp:
            token = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        ws = await session.ws_connect(f"{base}/ws/connect", params={"token": token}, max_msg_size=0)
        ws_sizes: list[int] = []
        closed: list[str] = []

        async def reader() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "queue_status":
                    ws_sizes.append(len(msg.data.encode()))
            closed.append(f"closed: {ws.close_code}")

        task = asyncio.ensure_future(reader())
        await ws.send_json({"action": "join", "room": "downloads"})
        _, first = await timed_get(session, f"{base}/api/queue/status", headers)
        pending_ids = [i["id"] for i in json.loads(first)["pending_queue"]][:5]
        cold: list[float] = []
        warm: list[float] = []
        page: list[float] = []
        body = first
        for n in range(rounds):
            item = pending_ids[n % len(pending_ids)]
            priority = "high" if n % 2 == 0 else "normal"
            async with session.patch(
                f"{base}/api/queue/{item}", json={"priority": priority}, headers=headers
            ) as resp:
                await resp.read()
            ms, body = await timed_get(session, f"{base}/api/queue/status", headers)
            cold.append(ms)
            warm.append((await timed_get(session, f"{base}/api/queue/status", headers))[0])
            page.append(
                (await timed_get(session, f"{base}/api/queue/status?limit=200&offset=2500", headers))[0]
            )
        await asyncio.sleep(0.5)  # the last queue_status reaches the socket
        connected = not ws.closed and not closed
        await ws.close()
        await asyncio.wait_for(task, 10)
    doc = json.loads(body)
    return {
        "status_cold_p50_ms": round(pct(cold, 50), 2),
        "status_cold_p99_ms": round(pct(cold, 99), 2),
        "status_warm_p50_ms": round(pct(warm, 50), 2),
        "page_p50_ms": round(pct(page, 50), 2),
        "status_bytes": len(body),
        "pending_listed": len(doc["pending_queue"]),
        "pending_total": doc.get("pending_total", doc.get("statistics", {}).get("pending")),
        "ws_messages": len(ws_sizes),
        "ws_max_bytes": max(ws_sizes, default=0),
        "ws_connected": connected,
    }


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="aniworldd-bench-bigqueue-") as tmpdir:
        tmp = Path(tmpdir)
        port = free_port()
        config_path = write_config(tmp, port)
        seed(config_path, args.pending, args.completed, args.failed)
        env = {**os.environ, "ANIWORLDD_MASTER_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(  # noqa: ASYNC220 - the daemon under test; talked to through a pipe
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
            figures = await measure(f"http://127.0.0.1:{ready[1]}", args.rounds)
        finally:
            if proc.poll() is None:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return {
        "bench": "big_queue",
        "pending": args.pending,
        "completed": args.completed,
        "failed": args.failed,
        "rounds": args.rounds,
        **figures,
        "load_avg_1m": os.getloadavg()[0],
        "targets_met": figures["status_cold_p99_ms"] <= 50 and figures["ws_connected"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pending", type=int, default=5000)
    parser.add_argument("--completed", type=int, default=300)
    parser.add_argument("--failed", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30, help="queue changes, each followed by the GETs")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve)))
        return 0
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
