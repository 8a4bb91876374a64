"""DownloadService end to end in one process: real SQLite, real providers and hoster resolvers against the
fake aniworld.to, real yt-dlp children. Each test drives the queue the way the API does and checks the
files, the rows and the events."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from aniworldd.core.markers import read_marker
from aniworldd.core.scanner import scan_library
from aniworldd.db import Store
from aniworldd.db.models import COMPLETED, DOWNLOADING, FAILED, PENDING
from aniworldd.download.files import item_files
from aniworldd.events import DOWNLOAD_COMPLETE, DOWNLOAD_FAILED, DOWNLOAD_PROGRESS, QUEUE_STATUS, EventBus
from aniworldd.providers.registry import build_providers
from aniworldd.providers.sources import SourceFinder
from aniworldd.services.download_service import DownloadService
from aniworldd.services.errors import BadRequest, Conflict, NotFound
from tests.fakesite.catalog import GER_DUB, GER_SUB
from tests.fakesite.media import ffmpeg_available, make_media
from tests.integration.download_helpers import (
    KEY,
    NAME,
    UA,
    Site,
    build_series,
    can_mount,
    code_of,
    fake_state,
    head,
    make_config,
    proc_state,
    seed,
    set_code,
    sha256,
    tmpfs,
    until_state,
)

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)")

WAIT = 60  # generous upper bound for one event; a hang fails with a clear message instead of the timeout


def season_path(library: Path, episode: int, language: str = "German Dub", ext: str = "mp4") -> Path:
    return library / f"{NAME} (2020)" / "Season 01" / f"{NAME} - S01E{episode:03d} - ({language}).{ext}"


class Env:
    """One queue with everything real around it; `events` records what the bus carried."""

    def __init__(self, tmp_path: Path, site: Site, series, downloads: str = "") -> None:
        self.tmp_path = tmp_path
        self.site = site
        self.series = series
        self.config = make_config(tmp_path, site.origin, downloads)
        self.library = Path(self.config["library"]["roots"][0])
        self.library.mkdir(parents=True, exist_ok=True)
        self.temp_dir = Path(self.config["downloads"]["temp_dir"])
        self.store = Store(self.config["database"]["url"], self.config["data_dir"])
        seed(self.store, series)
        self.bus = EventBus()
        self.events: list = []
        self.bus.add_listener(self.events.append)
        self.providers = None
        self.queue: DownloadService | None = None

    def build(self) -> DownloadService:
        cfg = self.config
        self.providers = build_providers(cfg["provider"])
        finder = SourceFinder(
            self.providers.for_site, self.providers.client, cfg["downloads"]["hosters"],
            cfg["downloads"]["language"], UA,
        )  # fmt: skip
        self.queue = DownloadService(cfg, self.store, self.bus, finder)
        return self.queue

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.close()
        if self.providers is not None:
            await self.providers.close()
        self.store.close()

    def of(self, kind: str, item_id: int | None = None) -> list[dict]:
        return [
            ev.data
            for ev in self.events
            if ev.type == kind and (item_id is None or ev.data["download_id"] == item_id)
        ]

    async def until(self, kind: str, item_id: int, count: int = 1) -> list[dict]:
        """Wait until `count` events of `kind` for the item were published."""
        for _ in range(WAIT * 50):
            found = self.of(kind, item_id)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"no {kind} for item {item_id} after {WAIT}s; status: {await self.queue.status()}"
        )

    async def until_bytes(self, item_id: int, nbytes: int) -> None:
        for _ in range(WAIT * 50):
            if any(p["downloaded_bytes"] >= nbytes for p in self.of(DOWNLOAD_PROGRESS, item_id)):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"item {item_id} did not reach {nbytes} bytes")

    def row(self, item_id: int) -> dict:
        def q() -> dict:
            r = self.store.e.DownloadQueueItem[item_id]
            return {
                "status": r.status,
                "attempts": r.attempts,
                "error": r.error,
                "hoster": r.hoster,
                "language": r.language,
                "deleted": r.deleted_at is not None,
                "final_path": r.final_path,
            }

        return self.store.run_sync(q)

    def episode(self, number: int, season: int = 1) -> dict:
        def q() -> dict:
            s = self.store.e.AnimeSeries.get(key=KEY)
            ep = self.store.e.Episode.get(series=s, season=season, number=number)
            return {"path": ep.on_disk_path, "language": ep.on_disk_language, "folder": s.folder}

        return self.store.run_sync(q)


@pytest.fixture
async def make_env(tmp_path):
    made: list[tuple[Env, Site]] = []

    async def make(series=None, downloads: str = "", rate: int | None = None) -> Env:
        series = series or build_series()
        state = fake_state(series)
        state.media_rate_bps = rate
        site = await Site(state).start()
        env = Env(tmp_path, site, series, downloads)
        env.build()
        made.append((env, site))
        return env

    yield make
    for env, site in made:
        await env.close()
        await site.stop()


def library_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


async def test_mp4_episode_lands_in_the_library_complete(make_env):
    env = await make_env()
    source = make_media(env.site.state.media_dir, 3).mp4
    [item] = await env.queue.add(KEY, [{"season": 1, "episode": 1}])
    assert item["status"] == PENDING and item["key"] == KEY and item["serie_id"] == KEY
    await env.queue.start()
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])

    target = season_path(env.library, 1)
    assert done["path"] == str(target) and done["size_bytes"] == source.stat().st_size
    assert (done["key"], done["season"], done["episode"], done["language"]) == (KEY, 1, 1, GER_DUB)
    assert sha256(target) == sha256(source)
    assert library_files(env.library) == [target]
    marker = read_marker(target.parent.parent)
    assert marker is not None and marker.key == KEY
    # the library scanner sees the new folder as this series, with the episode present in its language
    [folder] = scan_library([str(env.library)]).folders
    assert folder.key == KEY
    found = [(f.path, f.season, f.episodes, f.language) for f in folder.files]
    assert found == [(str(target), 1, (1,), GER_DUB)]
    assert env.episode(1) == {"path": str(target), "language": GER_DUB, "folder": f"{NAME} (2020)"}
    row = env.row(item["id"])
    assert (row["status"], row["hoster"], row["error"]) == (COMPLETED, "Vidoza", None)
    assert item_files(env.temp_dir, item["id"]) == []
    status = await env.queue.status()
    assert [d["id"] for d in status["completed_downloads"]] == [item["id"]]
    assert status["statistics"]["completed"] == 1 and status["is_running"] is True
    assert env.of(QUEUE_STATUS) and all("pending_queue" in s for s in env.of(QUEUE_STATUS))


async def test_hls_episode_is_downloaded_and_remuxed(make_env):
    series = build_series(hosters=("Vidmoly",))  # Vidmoly serves HLS and checks the Referer
    env = await make_env(series)
    [item] = await env.queue.add(KEY, [(1, 2)], language=GER_SUB)
    await env.queue.start()
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])
    target = season_path(env.library, 2, "German Sub")
    assert done["path"] == str(target)
    assert head(target)[4:8] == b"ftyp"  # an mp4 container, not raw MPEG-TS
    assert env.row(item["id"])["hoster"] == "Vidmoly"


async def test_progress_events_are_throttled_and_pause_resume_keeps_the_connection(make_env):
    series = build_series(episodes=1)
    set_code(series, 1, 1, GER_DUB, "Vidoza", "slow-20s")
    env = await make_env(series, rate=200_000)
    source = make_media(env.site.state.media_dir, 20).mp4
    [item] = await env.queue.add(KEY, [(1, 1)])
    await env.queue.start()
    await env.until_bytes(item["id"], 300_000)

    await env.queue.pause()
    status = await env.queue.status()
    assert status["is_paused"] is True
    [active] = status["active_downloads"]
    assert active["id"] == item["id"] and active["status"] == DOWNLOADING and active["speed"] == 0.0
    pid = env.queue._active[item["id"]].proc.pid
    assert await until_state(pid, "T") == "T"

    env.site.state.media_rate_bps = None
    await env.queue.resume()
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])
    assert sha256(Path(done["path"])) == sha256(source)
    assert all(r is None for r in env.site.media_requests("slow-20s"))  # resumed in place, no reconnect

    progress = env.of(DOWNLOAD_PROGRESS, item["id"])
    assert len(progress) >= 3
    times = [ev.timestamp for ev in env.events if ev.type == DOWNLOAD_PROGRESS]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.45  # at most two per second
    assert set(progress[0]) >= {
        "download_id",
        "key",
        "folder",
        "season",
        "episode",
        "language",
        "percent",
        "downloaded_bytes",
        "total_bytes",
        "speed_mbps",
        "eta_seconds",
    }


async def test_stop_requeues_with_partial_and_start_resumes_it(make_env):
    series = build_series(episodes=1)
    set_code(series, 1, 1, GER_DUB, "Vidoza", "stop-20s")
    env = await make_env(series, rate=150_000)
    source = make_media(env.site.state.media_dir, 20).mp4
    [item] = await env.queue.add(KEY, [(1, 1)])
    await env.queue.start()
    await env.until_bytes(item["id"], 200_000)
    pid = env.queue._active[item["id"]].proc.pid

    await env.queue.stop()
    assert proc_state(pid) is None
    row = env.row(item["id"])
    assert row["status"] == PENDING and row["attempts"] == 0
    [part] = [p for p in item_files(env.temp_dir, item["id"]) if p.name.endswith(".part")]
    kept = part.stat().st_size
    assert kept > 0
    status = await env.queue.status()
    assert status["is_running"] is False and [p["id"] for p in status["pending_queue"]] == [item["id"]]

    env.site.state.media_rate_bps = None
    await env.queue.start()
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])
    assert sha256(Path(done["path"])) == sha256(source)
    last_range = env.site.media_requests("stop-20s")[-1]
    assert last_range is not None and int(last_range.split("=")[1].split("-")[0]) > 0


async def test_remove_cancels_the_active_download_and_deletes_its_partial(make_env):
    series = build_series(episodes=1)
    set_code(series, 1, 1, GER_DUB, "Vidoza", "rm-20s")
    env = await make_env(series, rate=100_000)
    make_media(env.site.state.media_dir, 20)
    [item] = await env.queue.add(KEY, [(1, 1)])
    await env.queue.start()
    await env.until_bytes(item["id"], 50_000)
    pid = env.queue._active[item["id"]].proc.pid

    removed = await env.queue.remove(item["id"])
    assert removed["id"] == item["id"]
    assert proc_state(pid) is None
    assert item_files(env.temp_dir, item["id"]) == []
    assert env.row(item["id"])["deleted"] is True
    assert await env.queue.items() == []
    assert library_files(env.library) == []
    with pytest.raises(NotFound):
        await env.queue.remove(item["id"])
    # removed means the episode may be queued again
    [again] = await env.queue.add(KEY, [(1, 1)])
    assert again["id"] != item["id"]


async def test_retries_with_backoff_then_fails_with_reason_and_manual_retry_succeeds(make_env):
    series = build_series(episodes=1, hosters=("Vidoza",))
    env = await make_env(series, downloads="  max_retries: 1\n  language: [ger-dub]")
    env.site.state.dead_codes.add(code_of(series, 1, 1, GER_DUB, "Vidoza"))
    [item] = await env.queue.add(KEY, [(1, 1)])
    await env.queue.start()
    failures = await env.until(DOWNLOAD_FAILED, item["id"], 2)
    assert [(f["attempts"], f["will_retry"]) for f in failures] == [(1, True), (2, False)]
    assert "Vidoza (ger-dub)" in failures[-1]["reason"] and "not found" in failures[-1]["reason"]
    row = env.row(item["id"])
    assert row["status"] == FAILED and row["error"] == failures[-1]["reason"]
    [failed] = (await env.queue.status())["failed_downloads"]
    assert failed["error"] == failures[-1]["reason"]

    env.site.state.dead_codes.clear()
    [retried] = await env.queue.retry()
    assert retried["id"] == item["id"] and retried["attempts"] == 2
    await env.until(DOWNLOAD_COMPLETE, item["id"])
    row = env.row(item["id"])
    assert row["status"] == COMPLETED and row["attempts"] == 2


async def test_priority_then_first_in_first_out(make_env):
    env = await make_env(build_series(episodes=4), downloads="  max_concurrent: 1")
    low = (await env.queue.add(KEY, [(1, 1)], priority="low"))[0]
    normal1 = (await env.queue.add(KEY, [(1, 2)]))[0]
    high = (await env.queue.add(KEY, [(1, 3)], priority="high"))[0]
    normal2 = (await env.queue.add(KEY, [(1, 4)]))[0]
    pending = (await env.queue.status())["pending_queue"]
    assert [p["id"] for p in pending] == [high["id"], normal1["id"], normal2["id"], low["id"]]
    await env.queue.start()
    await env.until(DOWNLOAD_COMPLETE, low["id"])
    order = [d["download_id"] for d in env.of(DOWNLOAD_COMPLETE)]
    assert order == [high["id"], normal1["id"], normal2["id"], low["id"]]


async def test_raising_a_pending_item_to_high_takes_it_first(make_env):
    env = await make_env(build_series(episodes=3), downloads="  max_concurrent: 1")
    first, second, third = await env.queue.add(KEY, [(1, 1), (1, 2), (1, 3)])
    raised = await env.queue.set_priority(third["id"], "high")
    assert (raised["id"], raised["priority"], raised["status"]) == (third["id"], "high", PENDING)
    wanted = [third["id"], first["id"], second["id"]]
    for _ in range(WAIT * 50):  # queue_status is published from a background task
        if any([p["id"] for p in s["pending_queue"]] == wanted for s in env.of(QUEUE_STATUS)):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"no queue_status with the new order: {env.of(QUEUE_STATUS)}")
    with pytest.raises(NotFound):
        await env.queue.set_priority(123456, "low")
    with pytest.raises(BadRequest):
        await env.queue.set_priority(first["id"], "urgent")
    await env.queue.start()
    await env.until(DOWNLOAD_COMPLETE, second["id"])
    order = [d["download_id"] for d in env.of(DOWNLOAD_COMPLETE)]
    assert order == [third["id"], first["id"], second["id"]]
    with pytest.raises(Conflict) as err:
        await env.queue.set_priority(first["id"], "low")
    assert err.value.details["status"] == COMPLETED
    assert [i["priority"] for i in await env.queue.items()] == ["high", "normal", "normal"]


async def test_duplicates_and_bad_input_change_nothing(make_env):
    env = await make_env(build_series(episodes=3))
    [first] = await env.queue.add(KEY, [(1, 1)])
    with pytest.raises(Conflict) as err:
        await env.queue.add(KEY, [(1, 2), (1, 1)])
    assert err.value.status == 409 and err.value.details["item_id"] == first["id"]
    with pytest.raises(NotFound):
        await env.queue.add("no-such-series", [(1, 1)])
    with pytest.raises(NotFound):
        await env.queue.add(KEY, [(1, 99)])
    with pytest.raises(BadRequest):
        await env.queue.add(KEY, [(1, 2)], priority="urgent")
    with pytest.raises(BadRequest):
        await env.queue.add(KEY, [{"season": "one", "episode": 2}])
    with pytest.raises(BadRequest):
        await env.queue.add("../etc", [(1, 2)])
    with pytest.raises(BadRequest):
        await env.queue.add(KEY, [(1, 2)], language="klingon")
    assert [i["id"] for i in await env.queue.items()] == [first["id"]]
    # an item without a language stands for any language
    with pytest.raises(Conflict):
        await env.queue.add(KEY, [(1, 1)], language=GER_SUB)
    # the same episode pinned to two different languages are two items
    [dub] = await env.queue.add(KEY, [(1, 3)], language=GER_DUB)
    [sub] = await env.queue.add(KEY, [(1, 3)], language=GER_SUB)
    assert (dub["language"], sub["language"]) == (GER_DUB, GER_SUB)


async def test_failed_hoster_falls_back_to_the_next_one(make_env):
    series = build_series(episodes=1, hosters=("Vidoza", "VOE"))
    env = await make_env(series)
    env.site.state.media_fail_codes.add(code_of(series, 1, 1, GER_DUB, "Vidoza"))
    [item] = await env.queue.add(KEY, [(1, 1)])
    await env.queue.start()
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])
    row = env.row(item["id"])
    assert (row["hoster"], row["language"], row["attempts"], row["error"]) == ("VOE", GER_DUB, 0, None)
    assert env.site.media_requests(code_of(series, 1, 1, GER_DUB, "Vidoza"))  # Vidoza was really tried
    assert env.of(DOWNLOAD_FAILED, item["id"]) == []
    assert sha256(Path(done["path"])) == sha256(make_media(env.site.state.media_dir, 3).mp4)


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a 2 MB tmpfs for a real ENOSPC")
async def test_disk_full_fails_the_item_removes_partial_and_queue_keeps_working(make_env, tmp_path):
    series = build_series(episodes=2)
    set_code(series, 1, 1, GER_DUB, "Vidoza", "full-60s")  # about 5 MB
    with tmpfs(tmp_path / "small-temp", "2m") as small:
        env = await make_env(series, downloads=f"  temp_dir: {small}\n  max_concurrent: 1")
        make_media(env.site.state.media_dir, 60)
        [big] = await env.queue.add(KEY, [(1, 1)])
        [small_item] = await env.queue.add(KEY, [(1, 2)])
        await env.queue.start()
        [failure] = await env.until(DOWNLOAD_FAILED, big["id"])
        assert failure["reason"] == "no space left on device" and failure["will_retry"] is False
        assert env.row(big["id"])["status"] == FAILED
        # the small episode fits once the big partial is gone; it crosses filesystems into the library
        [done] = await env.until(DOWNLOAD_COMPLETE, small_item["id"])
        assert sha256(Path(done["path"])) == sha256(make_media(env.site.state.media_dir, 3).mp4)
        assert list(small.iterdir()) == []
        assert library_files(env.library) == [season_path(env.library, 2)]
        await env.queue.stop()


async def test_min_free_space_is_checked_before_starting(make_env):
    env = await make_env(downloads="  min_free_gb: 1000000")
    [item] = await env.queue.add(KEY, [(1, 1)])
    await env.queue.start()
    [failure] = await env.until(DOWNLOAD_FAILED, item["id"])
    assert failure["reason"].startswith("no space left on device") and "min_free_gb" in failure["reason"]
    assert env.site.media_requests("") == []


async def test_language_upgrade_replaces_the_old_file_only_when_the_new_one_is_in_place(make_env):
    env = await make_env(build_series(episodes=1))
    old = season_path(env.library, 1, "German Sub")
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old sub file")

    def on_disk() -> None:
        s = env.store.e.AnimeSeries.get(key=KEY)
        s.folder = f"{NAME} (2020)"
        s.root = str(env.library)
        ep = env.store.e.Episode.get(series=s, season=1, number=1)
        ep.on_disk_path, ep.on_disk_language = str(old), GER_SUB

    env.store.run_sync(on_disk)
    with pytest.raises(Conflict):  # no language asked: it is already there
        await env.queue.add(KEY, [(1, 1)])
    with pytest.raises(Conflict):
        await env.queue.add(KEY, [(1, 1)], language=GER_SUB)
    with pytest.raises(BadRequest):  # an upgrade may only ever delete inside the library
        await env.queue.add(KEY, [(1, 1)], language=GER_DUB, replaces="/etc/passwd")
    [item] = await env.queue.add(KEY, [(1, 1)], language=GER_DUB)
    await env.queue.start()
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])
    assert done["path"] == str(season_path(env.library, 1))
    assert not old.exists()
    assert library_files(env.library) == [season_path(env.library, 1)]
    assert env.episode(1)["language"] == GER_DUB


async def test_restart_finishes_an_item_that_was_downloaded_but_not_moved(make_env, tmp_path):
    """Crash window between yt-dlp finishing and the rename: the next start moves the file, no download."""
    env = await make_env(build_series(episodes=1))
    source = make_media(env.site.state.media_dir, 3).mp4
    [item] = await env.queue.add(KEY, [(1, 1)])
    env.temp_dir.mkdir(parents=True, exist_ok=True)
    finished = env.temp_dir / f"aw-{item['id']}-vidoza-ger-dub.mp4"
    finished.write_bytes(source.read_bytes())
    stray = env.temp_dir / "aw-999-voe-ger-dub.mp4.part"  # belongs to no item: cleaned up
    stray.write_bytes(b"x")
    target = season_path(env.library, 1)

    def crashed() -> None:
        row = env.store.e.DownloadQueueItem[item["id"]]
        row.status = DOWNLOADING
        row.temp_path, row.final_path, row.language = str(finished), str(target), GER_DUB

    env.store.run_sync(crashed)
    await env.close()
    env.store = Store(env.config["database"]["url"], env.config["data_dir"])
    queue = env.build()
    await queue.start()
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])
    assert done["path"] == str(target) and sha256(target) == sha256(source)
    assert env.site.media_requests("") == []  # nothing was downloaded again
    assert not stray.exists() and not finished.exists()
    assert env.row(item["id"])["status"] == COMPLETED


def test_temp_dir_defaults_next_to_the_library(tmp_path):
    cfg = make_config(tmp_path, "http://127.0.0.1:1")
    assert Path(cfg["downloads"]["temp_dir"]).parent == Path(cfg["library"]["roots"][0])
    assert os.path.basename(cfg["downloads"]["temp_dir"]).startswith(".")  # the scanner skips it


async def test_apply_settings_covers_exactly_the_live_config_keys(tmp_path) -> None:
    """What a config save promises to apply at once (config.LIVE_KEYS) is what the queue takes over."""
    from types import SimpleNamespace

    from aniworldd.config import LIVE_KEYS

    cfg = make_config(tmp_path, "http://127.0.0.1:9")
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    finder = SimpleNamespace(hosters_pref=list(cfg["downloads"]["hosters"]), languages_pref=[])
    queue = DownloadService(cfg, store, EventBus(), finder)
    try:
        new = dict(cfg["downloads"])
        new.update(
            max_concurrent=7,
            max_retries=9,
            retry_backoff=12.0,
            min_free_gb=3.0,
            language=["eng-sub"],
            hosters=["VOE"],
            speed_limit="2M",
            quality="720p",
            warm_start=5.0,
            hoster_order="fixed",
            hoster_failures_before_cooldown=5,
            hoster_cooldown=60.0,
            fragments=4,
            hls_downloader="yt-dlp",
            temp_dir="/elsewhere",  # read at start only
        )
        changed = queue.apply_settings(new)
        assert {f"downloads.{k}" for k in changed} == LIVE_KEYS
        assert queue.runner.hls_downloader == "yt-dlp"
        args = queue.runner.arguments(SimpleNamespace(url="http://x/", headers={}), tmp_path / "s")
        assert args[args.index("--concurrent-fragments") + 1] == "4"
        assert (queue.hoster_health.failures_before_cooldown, queue.hoster_health.cooldown_s) == (5, 60.0)
        assert (queue.max_concurrent, queue.max_retries, queue.languages) == (7, 9, ["eng-sub"])
        assert finder.hosters_pref == ["VOE"] and finder.languages_pref == ["eng-sub"]
        assert queue.apply_settings(new) == []  # nothing new the second time
        assert queue.temp_dir != Path("/elsewhere")
    finally:
        await queue.close()
        store.close()
