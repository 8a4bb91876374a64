"""The yt-dlp runner against real media on a local HTTP server (the fake hosters): mp4, HLS, headers,
kill + resume from the .part file, pause by SIGSTOP, HTTP errors, a real ENOSPC, stale process cleanup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aniworldd.download.files import find_output, stem_files
from aniworldd.download.progress import Progress
from aniworldd.download.ytdlp import (
    CANCELLED,
    DISK_FULL,
    FAILED,
    NO_SPACE_REASON,
    DownloadError,
    YtDlpRunner,
    kill_stale_processes,
    pid_file,
    wait_gone,
)
from aniworldd.providers.hosters.base import MediaSource
from tests.fakesite.media import ffmpeg_available, make_media
from tests.fakesite.state import FakeSiteState
from tests.integration.download_helpers import Site, can_mount, probe, proc_state, sha256, tmpfs, until_state

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)")


@pytest.fixture
async def site():
    s = await Site(FakeSiteState()).start()
    yield s
    await s.stop()


class TrackingRunner(YtDlpRunner):
    """Remembers its children so a failing test never leaves a (stopped) yt-dlp behind."""

    def __init__(self) -> None:
        super().__init__(socket_timeout=10, retries=1)
        self.started = []

    async def start(self, *args, **kwargs):
        proc = await super().start(*args, **kwargs)
        self.started.append(proc)
        return proc


@pytest.fixture
async def runner():
    r = TrackingRunner()
    yield r
    for proc in r.started:
        if proc.proc.returncode is None:
            await proc.kill()


def mp4(site: Site, code: str) -> MediaSource:
    return MediaSource(url=f"{site.origin}/media/vidoza-{code}.mp4", kind="mp4", hoster="Vidoza")


class Recorder:
    """Collects progress reports and lets a test wait until enough bytes arrived."""

    def __init__(self) -> None:
        self.reports: list[Progress] = []
        self._event = asyncio.Event()
        self.threshold = 0

    def __call__(self, p: Progress) -> None:
        self.reports.append(p)
        if p.downloaded_bytes >= self.threshold:
            self._event.set()

    async def reached(self, nbytes: int) -> None:
        self.threshold = nbytes
        if not any(p.downloaded_bytes >= nbytes for p in self.reports):
            self._event.clear()
            await asyncio.wait_for(self._event.wait(), 60)


async def test_mp4_download_is_byte_identical_and_reports_progress(site, runner, tmp_path):
    source_file = make_media(site.state.media_dir, 5).mp4
    rec = Recorder()
    proc = await runner.start(mp4(site, "plain-5s"), tmp_path / "aw-1-vidoza-ger-dub", rec)
    result = await proc.wait()
    assert result.path == tmp_path / "aw-1-vidoza-ger-dub.mp4"
    assert sha256(result.path) == sha256(source_file)
    assert result.size_bytes == source_file.stat().st_size
    final = rec.reports[-1]
    assert final.status == "finished" and final.percent == 100.0
    assert final.downloaded_bytes == final.total_bytes == result.size_bytes
    # nothing but the finished file is left: no .part, no .pid
    assert [p.name for p in stem_files(tmp_path / "aw-1-vidoza-ger-dub")] == ["aw-1-vidoza-ger-dub.mp4"]


async def test_hls_with_required_referer_header_becomes_mp4(site, runner, tmp_path):
    url = f"{site.origin}/media/vidmoly-h1/master.m3u8"
    good = MediaSource(url=url, kind="hls", hoster="Vidmoly", headers={"Referer": f"{site.origin}/vidmoly/x"})
    result = await (await runner.start(good, tmp_path / "aw-2-vidmoly-ger-sub")).wait()
    assert result.path.suffix == ".mp4"
    fmt = probe(result.path)
    assert "mp4" in fmt["format_name"]
    assert abs(float(fmt["duration"]) - 3.0) < 0.5

    # the same playlist without the header is refused by the media host: a failed download, not a crash
    bad = MediaSource(url=url, kind="hls", hoster="Vidmoly")
    with pytest.raises(DownloadError) as err:
        await (await runner.start(bad, tmp_path / "aw-3-vidmoly-ger-sub")).wait()
    assert err.value.kind == FAILED
    assert "403" in err.value.reason


async def test_missing_file_is_a_failed_download_with_the_http_reason(site, runner, tmp_path):
    site.state.dead_codes.add("gone")
    with pytest.raises(DownloadError) as err:
        await (await runner.start(mp4(site, "gone"), tmp_path / "aw-4-vidoza-ger-dub")).wait()
    assert err.value.kind == FAILED
    assert "404" in err.value.reason
    assert not pid_file(tmp_path / "aw-4-vidoza-ger-dub").exists()


async def test_kill_keeps_partial_and_next_run_resumes_with_range(site, runner, tmp_path):
    source_file = make_media(site.state.media_dir, 20).mp4
    site.state.media_rate_bps = 150_000
    stem = tmp_path / "aw-5-vidoza-ger-dub"
    rec = Recorder()
    proc = await runner.start(mp4(site, "resume-20s"), stem, rec)
    await rec.reached(120_000)
    await proc.kill()
    with pytest.raises(DownloadError) as err:
        await proc.wait()
    assert err.value.kind == CANCELLED
    assert proc_state(proc.pid) is None
    part = stem.with_name(stem.name + ".mp4.part")
    kept = part.stat().st_size
    assert kept >= 100_000
    assert find_output(stem) is None  # a partial is never mistaken for a finished file

    site.state.media_rate_bps = None
    result = await (await runner.start(mp4(site, "resume-20s"), stem)).wait()
    assert sha256(result.path) == sha256(source_file)
    ranges = site.media_requests("resume-20s")
    first_byte = int(ranges[-1].split("=")[1].split("-")[0])
    assert 0 < first_byte <= result.size_bytes and first_byte >= kept - 65536
    assert not part.exists()


async def test_pause_stops_the_process_group_and_resume_finishes_without_new_request(site, runner, tmp_path):
    source_file = make_media(site.state.media_dir, 20).mp4
    site.state.media_rate_bps = 150_000
    stem = tmp_path / "aw-6-vidoza-ger-dub"
    rec = Recorder()
    proc = await runner.start(mp4(site, "pause-20s"), stem, rec)
    await rec.reached(60_000)
    proc.pause()
    assert await until_state(proc.pid, "T") == "T"
    part = stem.with_name(stem.name + ".mp4.part")
    size = part.stat().st_size
    await asyncio.sleep(0.4)
    assert part.stat().st_size == size  # stopped means nothing is written
    site.state.media_rate_bps = None
    proc.resume()
    assert await until_state(proc.pid, "S") != "T"
    result = await proc.wait()
    assert sha256(result.path) == sha256(source_file)
    # the connection survived the pause: no request had to resume with a Range
    assert site.media_requests("pause-20s") and all(r is None for r in site.media_requests("pause-20s"))


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a 2 MB tmpfs for a real ENOSPC")
async def test_full_disk_is_reported_as_no_space_left(site, runner, tmp_path):
    make_media(site.state.media_dir, 60)  # about 5 MB, more than the 2 MB filesystem
    with tmpfs(tmp_path / "small", "2m") as small:
        with pytest.raises(DownloadError) as err:
            await (await runner.start(mp4(site, "huge-60s"), small / "aw-7-vidoza-ger-dub")).wait()
        assert err.value.kind == DISK_FULL
        assert err.value.reason == NO_SPACE_REASON


async def test_leftover_download_of_a_dead_daemon_is_killed(site, runner, tmp_path):
    site.state.media_rate_bps = 50_000
    make_media(site.state.media_dir, 20)
    stem = tmp_path / "aw-8-vidoza-ger-dub"
    rec = Recorder()
    proc = await runner.start(mp4(site, "stale-20s"), stem, rec)
    await rec.reached(1)
    assert pid_file(stem).read_text().strip() == str(proc.pid)
    # a restarted daemon only has the pid file to go by
    killed = kill_stale_processes(tmp_path)
    assert killed == [proc.pid]
    await wait_gone(killed)
    assert await asyncio.wait_for(proc.proc.wait(), 10) < 0
    assert not pid_file(stem).exists()
    assert kill_stale_processes(tmp_path) == []


def test_speed_limit_and_quality_reach_the_command_line(tmp_path):
    runner = YtDlpRunner.from_config({"speed_limit": "5M", "quality": "720p"})
    src = MediaSource(url="http://h/v.mp4", kind="mp4", hoster="VOE", headers={"Referer": "http://h/e/1"})
    cmd = runner.arguments(src, tmp_path / "aw-9-voe-ger-dub")
    assert cmd[cmd.index("--limit-rate") + 1] == "5M"
    assert "height<=?720" in cmd[cmd.index("-f") + 1]
    assert cmd[cmd.index("--add-header") + 1] == "Referer:http://h/e/1"
    assert cmd[-2:] == ["--", "http://h/v.mp4"]
    assert "--ignore-config" in cmd and "--continue" in cmd
    assert Path(runner.launcher.python).exists()
