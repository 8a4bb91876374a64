"""Cluster scaling: aggregate download throughput with 1, 2 and 4 worker processes, and the WebSocket fan-out
latency of events relayed through Redis to 500 clients on 2 api processes.

Throughput: for each worker count a fresh cluster (tests/cluster/harness.py: real `aniworldd run --role`
processes, one api + K workers, a PostgreSQL database and a redis-server of the bench's own) downloads the
same N episodes from the look-alike site, every download capped at `--rate` bytes/s (`state.media_rate_bps`,
a per-connection cap like a hoster's). The figure is bytes / seconds from POST /api/queue/add to the last
download_complete seen on a WebSocket. With the cap the limit is the number of downloads running at once,
so 2 workers should give about twice the throughput of one (target scale_1_2 >= 1.8); where it does not,
the queue (claims, leases) or the machine (2 cores) is the bottleneck.

Fan-out: 2 api processes and one worker; `--clients` WebSocket clients (half on each api process, joined to
downloads and download_progress, in 2 child processes so reading them does not load the bench's own loop,
which serves the site) while the worker downloads. Latency = client receipt time minus the event envelope's
`timestamp` (set where the event was published: in the worker), so it covers the worker -> Redis -> api ->
client path. Target p99 <= 100 ms.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, a database per run is created and dropped), redis-server
and ffmpeg. Prints ONE JSON line:
  {"throughput": {"1": {"workers", "episodes", "seconds", "bytes_per_s", "fetches"}, "2": ..., "4": ...},
   "scale_1_2", "scale_1_4", "ws": {"clients", "apis", "received", "expected", "p50_ms", "p99_ms",
   "max_ms"}, "targets": {...}, "rate_bps", "episode_bytes"}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster.conftest import RedisServer, fresh_database  # noqa: E402
from tests.cluster.harness import Cluster, ClusterSite  # noqa: E402
from tests.fakesite.catalog import GER_DUB  # noqa: E402
from tests.fakesite.media import make_media  # noqa: E402
from tests.integration.download_helpers import KEY, build_series, fake_state, set_code  # noqa: E402

COMPLETE = "download_complete"
MEASURED = ("download_progress", "download_complete")

# ---- WebSocket clients in a child process -----------------------------------------------------------------

CHILD = r"""
import asyncio, json, sys, time
from datetime import datetime
import aiohttp

url, count = sys.argv[1], int(sys.argv[2])
sizes = [0]
MEASURED = ("download_progress", "download_complete")

def stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

async def client(http, lat, ready):
    async with http.ws_connect(url, heartbeat=None) as ws:
        await ws.send_str('{"action": "ping"}')
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            sizes[0] += len(msg.data)
            if not msg.data.startswith(('{"type":"download_', '{"type":"pong"')):
                continue  # queue_status & co.: received, not parsed (the measure is the server's delivery)
            m = json.loads(msg.data)
            if m["type"] == "pong":
                ready.append(1)
            elif m["type"] in MEASURED:
                key = f'{m["type"]}|{m["data"].get("download_id")}|{m["timestamp"]}'
                lat.append((key, now, round((now - stamp(m["timestamp"])) * 1000, 2)))

async def main():
    lat, ready = [], []
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        tasks = [asyncio.ensure_future(client(http, lat, ready)) for _ in range(count)]
        while len(ready) < count:
            if any(t.done() for t in tasks):
                [t.result() for t in tasks if t.done()]
            await asyncio.sleep(0.05)
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes it
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"receipts": lat, "bytes": sizes[0]}), flush=True)

asyncio.run(main())
"""


async def start_clients(url: str, count: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, url, str(count),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    if line.strip() != b"READY":
        raise RuntimeError(f"WebSocket clients did not connect: {line!r}")
    return proc


async def stop_clients(proc: asyncio.subprocess.Process) -> dict:
    """{"receipts": [[event key, receipt time, latency ms] of every measured message], "bytes": all bytes
    the child's clients received}."""
    proc.stdin.close()
    out = await asyncio.wait_for(proc.stdout.read(), 60)
    await proc.wait()
    return json.loads(out.decode().strip().splitlines()[-1])


# ---- one cluster run --------------------------------------------------------------------------------------


def code(n: int, seconds: int) -> str:
    return f"bench{n:03d}-{seconds}s"


async def run_cluster(
    args, workdir: Path, redis: RedisServer, workers: int, apis: int, body, slots: int | None = None
) -> dict:
    """A fresh database, Redis, site and cluster of `apis` api + `workers` worker processes; `body` runs.
    `downloads.max_concurrent` holds for the whole cluster: by default each worker brings --concurrent."""
    series = build_series(episodes=args.episodes, hosters=("Vidoza",))
    for n in range(1, args.episodes + 1):
        set_code(series, 1, n, GER_DUB, "Vidoza", code(n, args.seconds))
    state = fake_state(series)
    state.media_rate_bps = args.rate
    redis.restart()  # empty
    site = await ClusterSite(state).start()
    with fresh_database("aw_bench") as pg_url:
        root = workdir / f"run-{workers}w-{apis}a-{secrets.token_hex(3)}"
        slots = slots or args.concurrent * workers
        cluster = Cluster(root, pg_url, redis.url, site, max_concurrent=slots, lease=10.0)
        try:
            await cluster.write_config()
            cluster.seed(series)
            api_nodes = [await cluster.start("api")]
            rest = await cluster.start_many(["api"] * (apis - 1) + ["worker"] * workers)
            api_nodes += [n for n in rest if n.role == "api"]
            return await body(cluster, site, api_nodes)
        finally:
            await cluster.close()
            await site.stop()
            shutil.rmtree(root, ignore_errors=True)


async def download_all(cluster: Cluster, api, episodes: int, limit_s: float) -> tuple[float, list[int]]:
    """Queue every episode through `api`; seconds until the last download_complete on a WebSocket."""
    watcher = await cluster.ws(api, rooms="downloads")
    start = time.monotonic()
    ids = await cluster.queue(api, KEY, [(1, n) for n in range(1, episodes + 1)])
    want = set(ids)
    deadline = start + limit_s
    while not want <= {m["data"]["download_id"] for m in watcher.of(COMPLETE)}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"downloads not done after {limit_s:.0f}s\n{cluster.logs(1500)}")
        failed = watcher.of("download_failed")
        if failed:
            raise RuntimeError(f"download failed: {failed[0]}\n{cluster.logs(1500)}")
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - start
    await watcher.close()
    return seconds, ids


async def throughput(
    args, workdir: Path, redis: RedisServer, workers: int, size: int, slots: int | None = None
) -> dict:
    async def body(cluster: Cluster, site: ClusterSite, apis) -> dict:
        seconds, _ = await download_all(cluster, apis[0], args.episodes, args.timeout)
        fetches = [site.fetches(code(n, args.seconds)) for n in range(1, args.episodes + 1)]
        ports = site.port_names()
        share = Counter(ports.get(f[0].port, "?") for f in fetches if f)
        return {
            "workers": workers,
            "slots": slots or args.concurrent * workers,
            "episodes": args.episodes,
            "seconds": round(seconds, 2),
            "bytes_per_s": round(size * args.episodes / seconds),
            "media_requests": sum(len(f) for f in fetches),  # 2 per download (yt-dlp looks first)
            "per_worker": dict(sorted(share.items())),  # episodes each worker downloaded
        }

    return await run_cluster(args, workdir, redis, workers, 1, body, slots)


async def fanout(args, workdir: Path, redis: RedisServer) -> dict:
    async def body(cluster: Cluster, site: ClusterSite, apis) -> dict:
        per_api = [args.clients // len(apis) + (i < args.clients % len(apis)) for i in range(len(apis))]
        children = []
        try:
            for api, count in zip(apis, per_api, strict=True):
                token = await cluster.token(api)
                url = f"ws://127.0.0.1:{api.port}/ws/connect?token={token}&rooms=downloads,download_progress"
                children.append(await start_clients(url, count))
            probe = await cluster.ws(apis[-1])  # how many events there were, for the expected count
            await download_all(cluster, apis[0], args.episodes, args.timeout)
            await asyncio.sleep(0.5)  # the last events reach every client
            events = sum(1 for _, m in probe.messages if m.get("type") in MEASURED)
            xadd = await asyncio.to_thread(stream_times, redis.url)
            got: list[list] = []
            first: list[float] = []  # per api process and event: its first client's receipt
            received_bytes = 0
            for child in children:
                answer = await stop_clients(child)
                mine = answer["receipts"]
                received_bytes += answer["bytes"]
                got += mine
                earliest: dict[str, float] = {}
                for key, recv, _ in mine:
                    earliest[key] = min(recv, earliest.get(key, recv))
                first += [(recv - xadd[key][1]) * 1000 for key, recv in earliest.items() if key in xadd]
            children = []
        finally:
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        if args.dump:
            raw = json.dumps({"stream": xadd, "receipts": got, "per_api": per_api})
            await asyncio.to_thread(Path(args.dump).write_text, raw)
        # Where the time goes: publish -> XADD (the publishing worker), XADD -> receipt (Redis read, api
        # fan-out, the client process).
        to_redis = [ms for ms, _ in xadd.values()]
        from_redis = [(recv - xadd[key][1]) * 1000 for key, recv, _ in got if key in xadd]
        return {
            "clients": args.clients,
            "apis": len(apis),
            "received": len(got),
            "received_mb": round(received_bytes / 1e6, 1),  # every message, queue_status included
            "expected": events * args.clients,
            **quantiles([lat for _, _, lat in got]),
            "publish_to_redis": quantiles(to_redis),
            "redis_to_client": quantiles(from_redis),
            "redis_to_first_client": quantiles(first),  # high too: before the api's fan-out
        }

    return await run_cluster(args, workdir, redis, 1, 2, body)


def quantiles(values: list[float]) -> dict:
    """p50, p99 (nearest rank) and max, in ms."""
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 1)

    return {"p50_ms": rank(0.50), "p99_ms": rank(0.99), "max_ms": round(ordered[-1], 1)}


def stream_times(redis_url: str) -> dict[str, tuple[float, float]]:
    """Event key -> (ms from its publication to its XADD, XADD time) for every entry of the event stream
    (an entry id's first part is the Redis server's clock at XADD, in ms; same machine, same clock)."""
    import redis

    from aniworldd.events import Event, iso_timestamp

    client = redis.Redis.from_url(redis_url)
    try:
        entries = client.xrange("aniworldd:events")
    finally:
        client.close()
    times = {}
    for entry_id, fields in entries:
        event = Event.from_wire(fields[b"e"])
        if event.type not in MEASURED:
            continue
        at = int(entry_id.split(b"-")[0]) / 1000
        key = f"{event.type}|{event.data.get('download_id')}|{iso_timestamp(event.timestamp)}"
        times[key] = ((at - event.timestamp.timestamp()) * 1000, at)
    return times


async def main(args) -> dict:
    size = make_media(fake_state().media_dir, args.seconds).mp4.stat().st_size
    if args.rate == 0:
        args.rate = max(size // args.download_s, 10_000)
    workdir = Path(tempfile.mkdtemp(prefix="aw-bench-cluster-"))
    redis = RedisServer(workdir / "redis")
    redis.start()
    try:
        result: dict = {"throughput": {}}
        for workers in args.workers:
            result["throughput"][str(workers)] = await throughput(args, workdir, redis, workers, size)
        if args.control and 2 in args.workers:
            # The same downloads at once as 2 workers, in one worker process: what the machine gives.
            slots = 2 * args.concurrent
            result["one_worker_same_slots_as_2"] = await throughput(args, workdir, redis, 1, size, slots)
        t = result["throughput"]
        for a, b in (("1", "2"), ("1", "4")):
            if a in t and b in t:
                result[f"scale_{a}_{b}"] = round(t[b]["bytes_per_s"] / t[a]["bytes_per_s"], 2)
        if args.clients:
            result["ws"] = await fanout(args, workdir, redis)
        result["targets"] = {"scale_1_2": ">= 1.8", "ws_p99_ms": "<= 100"}
        result |= {"rate_bps": args.rate, "episode_bytes": size, "concurrent_per_worker": args.concurrent}
        return result
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20, help="video length of each episode (size)")
    parser.add_argument("--download-s", type=int, default=10, help="seconds one capped download takes")
    parser.add_argument(
        "--rate", type=int, default=0, help="per-download cap, bytes/s (0: from --download-s)"
    )
    parser.add_argument("--concurrent", type=int, default=2, help="downloads.max_concurrent per worker")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients (0: no fan-out run)")
    parser.add_argument(
        "--no-control", dest="control", action="store_false", help="skip 1 worker with 2 workers' slots"
    )
    parser.add_argument("--dump", help="write the fan-out's raw receipts and stream times here (JSON)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run at most")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if shutil.which("redis-server") is None:
        sys.exit("redis-server not installed")
    # yt-dlp's first look at a media URL hangs up mid-body: the site's handler would log every one.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    print(json.dumps(asyncio.run(main(parse()))))
