"""HLS with concurrent fragments (`downloads.fragments`) through the real download child and the fake
hosters, with both HLS downloaders (`downloads.hls_downloader`: our own hls_fetch, and yt-dlp's): several
fragment requests really are in flight at once, progress still gives percent, speed and ETA, and a
download killed mid-way resumes from its fragment index (only the missing fragments are fetched again)
into the same file an uninterrupted download gives."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web

from aniworldd.download.progress import Progress
from aniworldd.download.ytdlp import CANCELLED, DownloadError, YtDlpRunner
from aniworldd.providers.hosters.base import MediaSource
from tests.fakesite.media import ffmpeg_available, make_media
from tests.fakesite.state import FakeSiteState
from tests.integration.download_helpers import Site, probe, sha256

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)")

SECONDS = 40  # 40 one-second fragments
SEGMENT = re.compile(r"/seg(\d+)\.ts$")


class CountingSite(Site):
    """The fake site, also counting media requests in flight (the most seen at once)."""

    def __init__(self, state: FakeSiteState) -> None:
        super().__init__(state)
        self.inflight = 0
        self.max_inflight = 0

    async def start(self) -> CountingSite:
        await super().start()
        app = self.runner.app

        # Wrap the media handler: count what is being answered at the same moment.
        for resource in app.router.resources():
            info = resource.get_info()
            if info.get("formatter", "").startswith("/media/"):
                for route in resource:
                    inner = route.handler

                    async def counted(request: web.Request, inner=inner) -> web.StreamResponse:
                        self.inflight += 1
                        self.max_inflight = max(self.max_inflight, self.inflight)
                        try:
                            return await inner(request)
                        finally:
                            self.inflight -= 1

                    route._handler = counted  # noqa: SLF001 - test-only instrumentation
        return self

    def segments(self, code: str) -> list[int]:
        return [int(m.group(1)) for path, _ in self.ranges if code in path and (m := SEGMENT.search(path))]


@pytest.fixture
async def site():
    s = await CountingSite(FakeSiteState()).start()
    yield s
    await s.stop()


def hls(site: Site, code: str) -> MediaSource:
    return MediaSource(url=f"{site.origin}/media/luluvdo-{code}/master.m3u8", kind="hls", hoster="Luluvdo")


#: The fragment index each downloader resumes from.
INDEX_SUFFIX = {"aniworldd": ".hlsidx", "yt-dlp": ".mp4.ytdl"}


@pytest.mark.parametrize("engine", ["aniworldd", "yt-dlp"])
async def test_fragments_in_parallel_progress_and_resume(site, tmp_path, engine) -> None:
    make_media(site.state.media_dir, SECONDS)
    runner = YtDlpRunner(fragments=4, socket_timeout=10, retries=1, hls_downloader=engine)
    code = f"frag-{SECONDS}s"

    # The reference: one uninterrupted download of the same stream (a small round trip per fragment, so
    # fragments fetched side by side overlap).
    site.state.media_delay = 0.02
    clean = await (await runner.start(hls(site, code), tmp_path / "aw-1-luluvdo-ger-dub")).wait()
    assert abs(float(probe(clean.path)["duration"]) - SECONDS) < 1.5
    assert site.max_inflight >= 2  # fragments really are fetched side by side
    site.ranges.clear()

    # Slow fragments (round trip + a per-response rate), so the kill lands mid-way.
    site.state.media_delay = 0.05
    site.state.media_rate_bps = 150_000
    stem = tmp_path / "aw-2-luluvdo-ger-dub"
    reports: list[Progress] = []
    half = asyncio.Event()

    def on_progress(p: Progress) -> None:
        reports.append(p)
        if p.percent >= 40:
            half.set()

    proc = await runner.start(hls(site, code), stem, on_progress)
    await asyncio.wait_for(half.wait(), 60)
    await proc.kill()
    with pytest.raises(DownloadError) as err:
        await proc.wait()
    assert err.value.kind == CANCELLED
    fetched_before = set(site.segments(code))
    assert 0 < len(fetched_before) < SECONDS
    index = stem.parent / f"{stem.name}{INDEX_SUFFIX[engine]}"
    assert index.is_file()  # the fragment index the downloader resumes from

    # Progress with parallel fragments: percent only grows, speed and ETA are given.
    percents = [p.percent for p in reports if p.status == "downloading"]
    assert percents == sorted(percents) and 0 < percents[-1] < 100
    assert any(p.speed for p in reports) and any(p.eta is not None for p in reports)
    assert all(p.total_bytes for p in reports[1:])

    site.state.media_delay, site.state.media_rate_bps = 0.0, None
    site.ranges.clear()
    result = await (await runner.start(hls(site, code), stem)).wait()
    fetched_after = site.segments(code)
    # Resumed: what the first run had appended is not fetched again (only fragments that were in flight).
    assert len(fetched_after) < SECONDS
    assert len(fetched_before) + len(fetched_after) <= SECONDS + 2 * runner.fragments
    assert min(fetched_after) > 0
    assert sha256(result.path) == sha256(clean.path)
    assert not index.exists()
