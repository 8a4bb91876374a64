"""The yt-dlp launcher with real child processes: the spare started ahead, its retirement, a dead
daemon's spare exiting by itself, a broken interpreter, the queue keeping a spare only while it runs;
and the flusher that syncs partial files."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aniworldd.config import ConfigError
from aniworldd.db import Store
from aniworldd.download import launcher as launcher_module
from aniworldd.download.flusher import PartialFlusher
from aniworldd.download.launcher import Launcher, LaunchError
from aniworldd.download.ytdlp import DownloadError, YtDlpRunner
from aniworldd.events import EventBus
from aniworldd.providers.hosters.base import MediaSource
from aniworldd.services.download_service import DownloadService
from tests.integration.download_helpers import KEY, build_series, make_config, proc_state, seed

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    state = proc_state(pid)
    return state is not None and state != "Z"


async def gone(pid: int, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def launcher():
    lau = Launcher(warm_seconds=30)
    yield lau
    await lau.close()


async def test_a_download_takes_the_spare_and_a_new_one_is_started(launcher, tmp_path, monkeypatch):
    monkeypatch.setattr(launcher_module, "REPLACE_DELAY", 0.1)
    launcher.keep_warm()
    assert await launcher.wait_warm()
    spare_pid = launcher._spare.result().pid
    proc = await launcher.launch(["--version"], tmp_path)
    assert proc.pid == spare_pid  # no new interpreter for this download
    out = (await proc.stdout.read()).decode()
    assert await proc.wait() == 0
    assert out.strip().splitlines()[-1][:4].isdigit()  # yt-dlp printed its version (2026.10.26)
    assert launcher._spare is None  # the next one waits a moment (not to slow this one's start)
    await asyncio.sleep(0.3)
    assert await launcher.wait_warm()
    assert launcher._spare.result().pid != spare_pid


async def test_children_get_their_own_process_group_and_the_pid_before_the_job(launcher, tmp_path):
    launcher.keep_warm()
    assert await launcher.wait_warm()
    spare = launcher._spare.result()
    # its own session: killing the download's group can never reach the daemon
    assert os.getpgid(spare.pid) == spare.pid != os.getpgid(0)
    seen = []

    def before_job(pid: int) -> None:
        seen.append((pid, spare.stdin.is_closing()))

    proc = await launcher.launch(["--version"], tmp_path, before_job=before_job)
    assert seen == [(proc.pid, False)]  # called before the job went out
    assert await proc.wait() == 0


async def test_a_quiet_queue_retires_the_spare():
    lau = Launcher(warm_seconds=1.5)
    try:
        lau.keep_warm()
        assert await lau.wait_warm()
        pid = lau._spare.result().pid
        assert await gone(pid, 10)
        assert lau._spare is None
    finally:
        await lau.close()


async def test_warm_start_off_keeps_no_spare(tmp_path):
    lau = Launcher(warm_seconds=0)
    lau.keep_warm()
    assert not await lau.wait_warm()
    proc = await lau.launch(["--version"], tmp_path)  # started cold, same bootstrap
    assert await proc.wait() == 0
    assert lau._spare is None
    await lau.close()


async def test_close_kills_the_spare(tmp_path):
    lau = Launcher(warm_seconds=30)
    lau.keep_warm()
    assert await lau.wait_warm()
    pid = lau._spare.result().pid
    await lau.close()
    assert await gone(pid, 5)
    lau.keep_warm()  # closed: nothing new
    assert lau._spare is None


async def test_the_spare_of_a_killed_daemon_exits_by_itself(tmp_path):
    """The daemon is killed with SIGKILL: its spare sees end-of-file on stdin and goes."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from aniworldd.download.launcher import Launcher

        async def main():
            lau = Launcher(warm_seconds=60)
            lau.keep_warm()
            await lau.wait_warm()
            print(lau._spare.result().pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, cwd=REPO
    )
    try:
        spare = int(await asyncio.wait_for(daemon.stdout.readline(), 30))
        assert alive(spare)
        daemon.kill()
        await daemon.wait()
        assert await gone(spare, 10)
    finally:
        if daemon.returncode is None:
            daemon.kill()
            await daemon.wait()


async def test_a_broken_interpreter_is_a_clear_download_error(tmp_path):
    runner = YtDlpRunner(launcher=Launcher(python="/bin/false"))
    src = MediaSource(url="http://127.0.0.1:9/v.mp4", kind="mp4", hoster="VOE")
    with pytest.raises(DownloadError, match="yt-dlp could not start"):
        await runner.start(src, tmp_path / "aw-1-voe-ger-dub")


async def test_a_missing_interpreter_is_a_clear_launch_error(tmp_path):
    lau = Launcher(python=str(tmp_path / "no-such-python"))
    with pytest.raises(LaunchError, match="cannot start yt-dlp"):
        await lau.launch(["--version"], tmp_path)


async def test_the_queue_keeps_a_spare_only_while_it_has_work(tmp_path, monkeypatch):
    cfg = make_config(tmp_path, "http://127.0.0.1:9", downloads="  warm_start: 30")
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    seed(store, build_series(episodes=2))
    queue = DownloadService(cfg, store, EventBus())
    monkeypatch.setattr(queue.worker, "_launch", lambda item_id: None)  # items wait: the spare stays a spare
    launcher = queue.runner.launcher
    try:
        assert launcher.warm_seconds == 30
        await queue.start()
        assert not await launcher.wait_warm()  # an empty queue starts no yt-dlp
        await queue.add(KEY, [(1, 1)])
        assert await launcher.wait_warm()
        first = launcher._spare.result().pid
        await queue.stop()
        assert launcher._spare is None
        assert await gone(first, 5)
        await queue.start()  # the item is still pending: a spare is started for it
        assert await launcher.wait_warm()
        second = launcher._spare.result().pid
    finally:
        await queue.close()
        store.close()
    assert await gone(second, 5)


def test_warm_start_is_a_duration_and_can_be_off(tmp_path):
    assert make_config(tmp_path, "http://x")["downloads"]["warm_start"] == 600
    off = make_config(tmp_path, "http://x", downloads="  warm_start: 0")
    assert YtDlpRunner.from_config(off["downloads"]).launcher.warm_seconds == 0
    assert make_config(tmp_path, "http://x", downloads="  warm_start: 2m")["downloads"]["warm_start"] == 120
    with pytest.raises(ConfigError, match="warm_start"):
        make_config(tmp_path, "http://x", downloads="  warm_start: soon")


def test_the_flusher_syncs_a_growing_part_file_and_closes_it(tmp_path):
    stem = tmp_path / "aw-5-voe-ger-dub"
    part = tmp_path / "aw-5-voe-ger-dub.mp4.part"
    fds_before = len(os.listdir("/proc/self/fd"))
    flusher = PartialFlusher(stem, poll=0.02)
    flusher.start()
    try:
        with open(part, "wb") as out:
            out.write(os.urandom(2 << 20))
            out.flush()
            for _ in range(250):
                if flusher.syncs:
                    break
                time.sleep(0.02)
            assert flusher.syncs == 1
            out.write(b"x" * 100)  # below the minimum step: no sync for it
            out.flush()
            time.sleep(0.2)
            assert flusher.syncs == 1
    finally:
        flusher.stop()
    assert len(os.listdir("/proc/self/fd")) == fds_before  # its file is closed again
    assert part.stat().st_size == (2 << 20) + 100


def test_the_flusher_outlives_a_failing_directory_scan(tmp_path, monkeypatch):
    """Out of file descriptors (or a temp dir gone for a moment): the scan fails, the thread keeps going
    and syncs once the scan works again, and nothing escapes as an unhandled thread exception."""
    from aniworldd.download import flusher as flusher_module

    real = flusher_module.stem_files
    failures = {"left": 3}

    def flaky(stem):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(24, "Too many open files")
        return real(stem)

    monkeypatch.setattr(flusher_module, "stem_files", flaky)
    stem = tmp_path / "aw-6-voe-ger-dub"
    (tmp_path / "aw-6-voe-ger-dub.mp4.part").write_bytes(os.urandom(2 << 20))
    flusher = PartialFlusher(stem, poll=0.02)
    flusher.start()
    try:
        for _ in range(250):
            if flusher.syncs:
                break
            time.sleep(0.02)
        assert flusher._thread.is_alive()
        assert flusher.syncs == 1 and failures["left"] == 0
    finally:
        flusher.stop()


async def test_a_spare_that_died_while_waiting_is_replaced_by_a_fresh_child(launcher, tmp_path):
    launcher.keep_warm()
    assert await launcher.wait_warm()
    spare = launcher._spare.result()
    os.kill(spare.pid, 9)  # the OOM killer, or an admin, some time before the next download
    assert await gone(spare.pid, 5)
    recorded = []
    proc = await launcher.launch(["--version"], tmp_path, before_job=recorded.append)
    assert proc.pid != spare.pid
    assert recorded[-1] == proc.pid  # the pid file names the child that really runs
    assert await proc.wait() == 0
