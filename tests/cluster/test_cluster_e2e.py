"""Issue 19 end to end: api and worker processes (`aniworldd run --role api|worker`) sharing PostgreSQL,
Redis, data_dir and temp_dir, downloading from the look-alike site.

What only several real processes can show: every queued episode is downloaded once although every worker
takes from the same queue; the events of a download done in a worker reach a WebSocket client of another
api process; a worker that dies mid-download leaves its item to another (lease) and the file is whole;
a logout on one api process holds on every other; a Redis restart loses no event published after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.conftest import RedisServer, needs_postgres, needs_redis
from tests.cluster.harness import Cluster, ClusterSite, WsClient, until
from tests.fakesite.catalog import GER_DUB
from tests.fakesite.media import ffmpeg_available, make_media
from tests.integration.download_helpers import KEY, NAME, build_series, fake_state, set_code, sha256

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    needs_redis,
    needs_postgres,
    pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)"),
]

COMPLETE, PROGRESS, FAILED = "download_complete", "download_progress", "download_failed"


def code(episode: int, seconds: int) -> str:
    return f"cl{episode:02d}-{seconds}s"


def target(cluster: Cluster, episode: int) -> Path:
    folder = cluster.library / f"{NAME} (2020)" / "Season 01"
    return folder / f"{NAME} - S01E{episode:03d} - (German Dub).mp4"


async def make_cluster(tmp_path: Path, pg_url: str, redis_url: str, episodes: int, seconds: int, **kw):
    """The series (every episode a `seconds`-long video on Vidoza), the site and a cluster config."""
    series = build_series(episodes=episodes, hosters=("Vidoza",))
    for n in range(1, episodes + 1):
        set_code(series, 1, n, GER_DUB, "Vidoza", code(n, seconds))
    state = fake_state(series)
    source = make_media(state.media_dir, seconds).mp4
    site = await ClusterSite(state).start()
    cluster = Cluster(tmp_path / "cluster", pg_url, redis_url, site, **kw)
    await cluster.write_config()
    cluster.seed(series)
    return cluster, site, source


@pytest.fixture
async def teardown() -> AsyncIterator[list]:
    """Clusters and sites to close after the test, whatever happened (no process left behind)."""
    things: list = []
    yield things
    errors = []
    for thing in reversed(things):
        try:
            await thing.close() if isinstance(thing, Cluster) else await thing.stop()
        except Exception as exc:  # close the rest anyway
            errors.append(exc)
    if errors:
        raise errors[0]


def completes(ws: WsClient) -> Counter:
    return Counter(m["data"]["download_id"] for m in ws.of(COMPLETE))


async def wait_complete(cluster: Cluster, ws: WsClient, ids: list[int], within: float) -> None:
    """Until `ws` saw download_complete for every id; a download_failed or a dead node ends it early."""
    deadline = time.monotonic() + within
    want = set(ids)
    while not want <= set(completes(ws)):
        failed = [m["data"] for m in ws.of(FAILED) if m["data"].get("download_id") in want]
        dead = [n.name for n in cluster.nodes if not n.alive and n.proc.returncode != -9]
        missing = sorted(want - set(completes(ws)))
        if failed or dead or time.monotonic() > deadline:
            raise AssertionError(
                f"missing download_complete for {missing}; failed={failed[:3]} dead={dead}\n{cluster.logs()}"
            )
        await asyncio.sleep(0.2)


def temp_leftovers(cluster: Cluster) -> list[str]:
    return sorted(str(p.relative_to(cluster.temp_dir)) for p in cluster.temp_dir.rglob("*") if p.is_file())


# ---- a) 2 api + 2 worker processes, 40 episodes --------------------------------------------------------


async def test_forty_episodes_through_two_apis_and_two_workers_each_downloaded_once(
    tmp_path: Path, pg_url: str, redis_server: RedisServer, teardown: list
) -> None:
    cluster, site, source = await make_cluster(tmp_path, pg_url, redis_server.url, 40, 1, max_concurrent=4)
    teardown += [site, cluster]
    api1 = await cluster.start("api")  # first alone: it sets the master password in the shared data_dir
    api2, w1, w2 = await cluster.start_many(["api", "worker", "worker"])
    watcher = await cluster.ws(api2)

    ids = await cluster.queue(api1, KEY, [(1, n) for n in range(1, 41)])
    assert len(ids) == 40
    await wait_complete(cluster, watcher, ids, within=75)

    seen = completes(watcher)
    assert {i: seen[i] for i in ids if seen[i] != 1} == {}, "each download_complete exactly once on api2"
    assert {m["data"]["download_id"] for m in watcher.of(PROGRESS)} & set(ids), "progress events on api2"
    size = source.stat().st_size
    for n in range(1, 41):
        assert target(cluster, n).is_file(), f"episode {n} missing"
        assert target(cluster, n).stat().st_size == size
    files = [p for p in cluster.library.rglob("*") if p.is_file() and p.suffix == ".mp4"]
    assert len(files) == 40, sorted(p.name for p in files)

    # One download of a direct mp4 is two GETs by one process (yt-dlp's generic extractor looks at the URL
    # first): so each file's requests all came to one worker's port, and no file was asked for more often.
    ports = site.port_names()
    fetches = {n: site.fetches(code(n, 1)) for n in range(1, 41)}
    per_download = min(len(f) for f in fetches.values())
    assert 1 <= per_download <= 2, fetches[1]
    assert {n: len(f) for n, f in fetches.items() if len(f) != per_download} == {}, "downloaded once each"
    assert {n: f for n, f in fetches.items() if len({r.port for r in f}) != 1} == {}, "each by one worker"
    by_worker = Counter(ports.get(f[0].port, "?") for f in fetches.values())
    assert set(by_worker) <= {w1.name, w2.name}, by_worker
    assert len(by_worker) == 2, f"both workers downloaded: {by_worker}"

    await until(lambda: temp_leftovers(cluster) == [], 5)  # the workers' last clean-ups
    assert temp_leftovers(cluster) == []

    # /metrics per process: each says what it is, and exactly one worker runs the scheduled jobs
    scrapes = {}
    for node in (api1, api2, w1, w2):
        status, text = await cluster.call(node, "GET", "/metrics")
        assert status == 200
        scrapes[node.name] = text
    for node, role in ((api1, "api"), (api2, "api"), (w1, "worker"), (w2, "worker")):
        assert f'aniworldd_cluster_node_info{{role="{role}",node="{node.name}"}} 1' in scrapes[node.name]
    jobs = [n for n in (w1.name, w2.name) if 'aniworldd_cluster_leader{election="jobs"} 1' in scrapes[n]]
    assert len(jobs) == 1, jobs


# ---- b) a worker dies mid-download --------------------------------------------------------------------


async def test_killed_worker_item_completes_on_the_other_worker(
    tmp_path: Path, pg_url: str, redis_server: RedisServer, teardown: list
) -> None:
    cluster, site, source = await make_cluster(tmp_path, pg_url, redis_server.url, 1, 6, max_concurrent=1)
    teardown += [site, cluster]
    site.state.media_rate_bps = max(source.stat().st_size // 5, 20_000)  # about 5 s per whole download
    api = await cluster.start("api")
    w1, w2 = await cluster.start_many(["worker", "worker"])
    watcher = await cluster.ws(api)
    [item] = await cluster.queue(api, KEY, [(1, 1)])

    def first_fetch():
        return site.fetches(code(1, 6))

    assert await until(first_fetch, 30), f"no worker started the download\n{cluster.logs()}"

    def partial() -> int:
        return sum(p.stat().st_size for p in cluster.temp_dir.glob("aw-*") if p.suffix != ".pid")

    # Well into the download: a fifth of the file is in the shared temp_dir (yt-dlp writes it in blocks).
    assert await until(lambda: partial() >= source.stat().st_size // 5, 20), temp_leftovers(cluster)
    holder_name = site.port_names()[first_fetch()[0].port]
    holder, other = (w1, w2) if holder_name == w1.name else (w2, w1)
    assert item not in completes(watcher), "the download was not slow enough to be killed mid-way"
    cluster.kill(holder, children=False)  # kill -9 of the worker's pid: its download child dies with it
    assert holder.descendants, "the worker had started a download process"
    assert await until(lambda: not cluster.alive_children(holder), 5), cluster.alive_children(holder)

    await wait_complete(cluster, watcher, [item], within=45)
    assert sha256(target(cluster, 1)) == sha256(source)
    later = [f for f in first_fetch() if site.port_names()[f.port] == other.name]
    assert later, f"the other worker fetched the file: {first_fetch()}"
    done = watcher.of(COMPLETE)[-1]["data"]
    assert done["download_id"] == item and done["size_bytes"] == source.stat().st_size
    await until(lambda: temp_leftovers(cluster) == [], 5)
    assert temp_leftovers(cluster) == []  # the dead worker's partial file and pid file too


# ---- c) logout on one api process holds on the other ---------------------------------------------------


async def test_logout_on_one_api_is_refused_by_the_other_within_a_second(
    tmp_path: Path, pg_url: str, redis_server: RedisServer, teardown: list
) -> None:
    cluster, site, _ = await make_cluster(tmp_path, pg_url, redis_server.url, 1, 1)
    teardown += [site, cluster]
    api1 = await cluster.start("api")
    api2 = await cluster.start("api")
    token = await cluster.login(api1)
    status, _ = await cluster.call(api2, "GET", "/api/queue/status", token=token)
    assert status == 200  # api2 knows (and may have cached) the session
    watcher = await cluster.ws(api2, token=token)

    status, answer = await cluster.call(api1, "POST", "/api/auth/logout", token=token)
    assert status == 200, answer
    refused_after = None
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        status, _ = await cluster.call(api2, "GET", "/api/queue/status", token=token)
        if status == 401:
            refused_after = time.monotonic() - start
            break
        await asyncio.sleep(0.05)
    assert refused_after is not None, f"api2 still accepts the token 1 s after the logout\n{cluster.logs()}"
    await watcher.wait(lambda: watcher.closed is not None, 5, "close after logout")
    assert watcher.closed[0] == 4401


# ---- d) Redis restarts mid-run ---------------------------------------------------------------------------


async def test_redis_restart_loses_no_event_published_after_it(
    tmp_path: Path, pg_url: str, redis_server: RedisServer, teardown: list
) -> None:
    cluster, site, source = await make_cluster(tmp_path, pg_url, redis_server.url, 6, 2, max_concurrent=2)
    teardown += [site, cluster]
    site.state.media_rate_bps = max(source.stat().st_size // 2, 20_000)  # about 2 s per download
    api1 = await cluster.start("api")
    api2, _worker = await cluster.start_many(["api", "worker"])
    watchers = [await cluster.ws(api1), await cluster.ws(api2)]
    first = await cluster.queue(api1, KEY, [(1, n) for n in range(1, 4)])
    await wait_complete(cluster, watchers[0], first[:1], within=30)

    await asyncio.to_thread(redis_server.restart, 0.5)  # mid-run: items 2-3 are queued or downloading
    after = await cluster.queue(api2, KEY, [(1, n) for n in range(4, 7)])

    for watcher in watchers:
        await wait_complete(cluster, watcher, first + after, within=60)
        seen = completes(watcher)
        assert {i: seen[i] for i in after if seen[i] != 1} == {}, f"{watcher.node.name}: each once"
    for n in range(1, 7):
        assert target(cluster, n).stat().st_size == source.stat().st_size
    assert all(n.alive for n in cluster.nodes), cluster.logs()
    late = await cluster.ws(api1)  # a client connecting after the restart gets live events too
    assert late.closed is None


# ---- e) queue control and removal through one api act on every worker ---------------------------------


async def test_pause_resume_and_remove_on_an_api_act_on_every_worker(
    tmp_path: Path, pg_url: str, redis_server: RedisServer, teardown: list
) -> None:
    cluster, site, source = await make_cluster(tmp_path, pg_url, redis_server.url, 3, 6, max_concurrent=2)
    teardown += [site, cluster]
    site.state.media_rate_bps = max(source.stat().st_size // 6, 20_000)  # about 6 s per download
    api1 = await cluster.start("api")
    api2, w1, w2 = await cluster.start_many(["api", "worker", "worker"])
    watcher = await cluster.ws(api2)
    ids = await cluster.queue(api1, KEY, [(1, n) for n in range(1, 4)])

    def partials() -> dict[str, int]:
        return {p.name: p.stat().st_size for p in cluster.temp_dir.glob("aw-*.part")}

    # one download per worker: their shares of max_concurrent 2
    assert await until(lambda: len([s for s in partials().values() if s > 0]) == 2, 30), temp_leftovers(
        cluster
    )
    holders = {site.port_names()[r.port] for n in range(1, 4) for r in site.fetches(code(n, 6))}
    assert holders == {w1.name, w2.name}, holders

    status, _ = await cluster.call(api2, "POST", "/api/queue/pause")  # the other api process than queued
    assert status == 200
    assert (await cluster.queue_status(api1))["is_paused"] is True
    await asyncio.sleep(1.0)  # the workers got the event and stopped their yt-dlp process groups
    paused = partials()
    await asyncio.sleep(1.5)
    assert partials() == paused, "nothing is written while the queue is paused, on either worker"

    active = (await cluster.queue_status(api1))["active_downloads"]
    assert len(active) == 2
    removed = active[0]["id"]
    status, _ = await cluster.call(api1, "DELETE", f"/api/queue/{removed}")
    assert status == 200
    gone = f"aw-{removed}-"
    assert await until(lambda: not any(p.startswith(gone) for p in temp_leftovers(cluster)), 15), (
        f"the worker kept the removed item's files: {temp_leftovers(cluster)}\n{cluster.logs()}"
    )

    status, _ = await cluster.call(api1, "POST", "/api/queue/resume")
    assert status == 200
    rest = [i for i in ids if i != removed]
    await wait_complete(cluster, watcher, rest, within=60)
    assert removed not in completes(watcher)
    episodes = {i: n for n, i in zip(range(1, 4), ids, strict=True)}
    assert not target(cluster, episodes[removed]).exists()
    for item in rest:
        assert sha256(target(cluster, episodes[item])) == sha256(source)
    await until(lambda: temp_leftovers(cluster) == [], 5)
    assert temp_leftovers(cluster) == []
