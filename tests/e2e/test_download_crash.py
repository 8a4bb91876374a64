"""`kill -9` in the middle of a download: its yt-dlp child dies with the daemon, the restarted daemon resumes
the partial file and ends with exactly one complete, byte-identical file in the library and no partial file
anywhere.

The daemon runs as a real process (`python -m aniworldd run`); the fake aniworld.to and hosters run in the
test process, throttled so the kill lands mid-download.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from aniworldd.db import Store
from aniworldd.events import EventBus
from aniworldd.services.download_service import DownloadService
from tests.conftest import free_port
from tests.fakesite.catalog import GER_DUB
from tests.fakesite.media import ffmpeg_available, make_media
from tests.integration.download_helpers import (
    KEY,
    NAME,
    UA,
    Site,
    build_series,
    fake_state,
    make_config,
    proc_state,
    seed,
    set_code,
    sha256,
    start_daemon,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)"),
]

RATE = 400_000  # bytes/s: a 30 s test video (about 2.5 MB) takes several seconds


def write_config(tmp_path: Path, origin: str, port: int) -> Path:
    path = tmp_path / "config.yaml"
    (tmp_path / "library").mkdir(exist_ok=True)  # the daemon never creates a library root itself
    path.write_text(
        f"""
data_dir: {tmp_path / "data"}
server: {{host: 127.0.0.1, port: {port}}}
library: {{roots: [{tmp_path / "library"}], watch: false, scan_on_start: false}}
downloads:
  autostart: true
  max_concurrent: 1
  min_free_gb: 0
  retry_backoff: 1
  language: [ger-dub]
  hosters: [Vidoza, VOE]
provider: {{aniworld_url: {origin}, sto_url: {origin}, user_agent: {UA}, min_interval: 0, retries: 0}}
logging: {{level: DEBUG}}
"""
    )
    return path


async def until(check, what: str, daemon: subprocess.Popen, log: Path, seconds: float = 90):
    for _ in range(int(seconds / 0.05)):
        value = check()
        if value:
            return value
        if daemon.poll() is not None:
            raise AssertionError(
                f"daemon exited ({daemon.returncode}) while waiting for {what}:\n{tail(log)}"
            )
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}:\n{tail(log)}")


def tail(log: Path, n: int = 4000) -> str:
    return log.read_text(errors="replace")[-n:]


def files_under(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file()) if folder.is_dir() else []


def yt_dlp_children() -> list[int]:
    """Processes running our yt-dlp child module (downloads and spares started ahead)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and proc_state(int(entry.name)) not in (None, "Z"):
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"aniworldd.download.ytdlp_child" in cmd:
                found.append(int(entry.name))
    return found


async def nothing_left(seconds: float = 10) -> list[int]:
    for _ in range(int(seconds / 0.1)):
        if not (left := yt_dlp_children()):
            return []
        await asyncio.sleep(0.1)
    return left


def part_size(temp_dir: Path, item_id: int) -> int:
    if not temp_dir.is_dir():
        return 0
    return sum(p.stat().st_size for p in temp_dir.glob(f"aw-{item_id}-*.part") if p.exists())


async def test_kill_9_mid_download_then_restart_completes_exactly_one_identical_file(tmp_path):
    series = build_series(episodes=1, hosters=("Vidoza",))
    set_code(series, 1, 1, GER_DUB, "Vidoza", "crash-30s")
    state = fake_state(series)
    source = make_media(state.media_dir, 30).mp4
    state.media_rate_bps = RATE
    site = await Site(state).start()
    daemon: subprocess.Popen | None = None
    orphan: int | None = None
    try:
        port = free_port()
        config_path = write_config(tmp_path, site.origin, port)
        cfg = make_config(tmp_path, site.origin)  # same paths as the file, for the test's own access
        library, temp_dir = Path(cfg["library"]["roots"][0]), Path(cfg["downloads"]["temp_dir"])

        store = Store(cfg["database"]["url"], cfg["data_dir"])
        seed(store, series)
        [item] = await DownloadService(cfg, store, EventBus()).add(KEY, [(1, 1)])
        store.close()
        item_id = item["id"]
        log = tmp_path / "daemon.log"

        daemon = start_daemon(config_path, log)
        await until(lambda: part_size(temp_dir, item_id) >= 500_000, "a partial download", daemon, log)
        [pidf] = files_under(temp_dir, f"aw-{item_id}-*.pid")
        orphan = int(pidf.read_text())
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        # the yt-dlp child dies with its daemon (ytdlp_child.die_with_parent): nothing goes on writing the
        # partial file the restart resumes (a restart also kills leftovers by their .pid files, elsewhere)
        for _ in range(100):
            if proc_state(orphan) in (None, "Z"):
                break
            await asyncio.sleep(0.05)
        assert proc_state(orphan) in (None, "Z")
        kept = part_size(temp_dir, item_id)
        assert 0 < kept < source.stat().st_size

        daemon = start_daemon(config_path, log)
        state.media_rate_bps = None
        target = library / f"{NAME} (2020)" / "Season 01" / f"{NAME} - S01E001 - (German Dub).mp4"
        await until(target.exists, "the file in the library", daemon, log)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, tail(log)
        # no yt-dlp child outlives the daemons: not the download, not the spare started ahead
        assert await nothing_left() == []

        assert target.stat().st_size == source.stat().st_size
        assert sha256(target) == sha256(source)
        in_library = files_under(library)
        assert [p for p in in_library if not p.name.startswith(".")] == [target]
        assert [p.name for p in in_library if p.name.startswith(".")] == [".aniworld.json"]  # the marker only
        assert files_under(temp_dir, f"aw-{item_id}-*") == []

        # the second run continued from the partial file instead of starting over
        resumed = [r for r in site.media_requests("crash-30s") if r]
        assert resumed and int(resumed[-1].split("=")[1].split("-")[0]) > 0

        store = Store(cfg["database"]["url"], cfg["data_dir"])

        def rows() -> list[tuple]:
            return [(i.id, i.status, i.attempts) for i in store.e.DownloadQueueItem.select()]

        def episode() -> tuple:
            s = store.e.AnimeSeries.get(key=KEY)
            ep = store.e.Episode.get(series=s, season=1, number=1)
            return ep.on_disk_path, ep.on_disk_language

        try:
            assert store.run_sync(rows) == [(item_id, "completed", 0)]
            assert store.run_sync(episode) == (str(target), GER_DUB)
        finally:
            store.close()
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
        if orphan is not None and proc_state(orphan) not in (None, "Z"):
            os.killpg(orphan, signal.SIGKILL)
        await site.stop()
