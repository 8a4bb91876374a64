"""Episodes offered only by one of today's hoster forms download end to end through the queue.

Everything real except the outside internet: the look-alike aniworld.to and hosters (tests/fakesite),
the provider client, the source finder, the download queue with real yt-dlp, and ffprobe on the result.
Each episode has exactly one offer, so the file can only have come through that hoster's form:
    Vidara              embed page -> POST /api/stream (Origin + Referer) -> HLS
    Filemoon (Byse)     GET /api/videos/<code> -> AES-256-GCM playback -> tallest source (HLS)
    Doodstream mirror   "DoodStream" label -> 302 to a playmogo-style mirror on another host name ->
                        relative pass_md5 there -> mp4 bound to the User-Agent and Referer
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from aniworldd.db import Store
from aniworldd.db.models import COMPLETED
from aniworldd.events import DOWNLOAD_COMPLETE, DOWNLOAD_FAILED, EventBus
from aniworldd.providers.registry import build_providers
from aniworldd.providers.sources import SourceFinder
from aniworldd.services.download_service import DownloadService
from tests.fakesite.catalog import GER_DUB
from tests.fakesite.hosters import other_origin
from tests.fakesite.media import ffmpeg_available
from tests.integration.download_helpers import (
    KEY,
    NAME,
    UA,
    Site,
    build_series,
    fake_state,
    make_config,
    seed,
    set_code,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not ffmpeg_available() or shutil.which("ffprobe") is None,
        reason="ffmpeg/ffprobe binaries not installed (Debian ffmpeg)",
    ),
]

WAIT = 90  # upper bound for one download; a hang fails with the queue status instead of a timeout


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration:stream=codec_type",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


async def download_only_offer(tmp_path: Path, hoster: str, code: str) -> tuple[dict, dict, Site]:
    """Queue S01E01 of a series whose only offer is `hoster` with file `code`; (done event, row, site)."""
    series = build_series(episodes=1, hosters=(hoster,))
    series.episode(1, 1).links = {GER_DUB: [hoster]}
    set_code(series, 1, 1, GER_DUB, hoster, code)
    site = await Site(fake_state(series)).start()
    config = make_config(tmp_path, site.origin)
    await asyncio.to_thread(Path(config["library"]["roots"][0]).mkdir, parents=True, exist_ok=True)
    store = Store(config["database"]["url"], config["data_dir"])
    seed(store, series)
    bus = EventBus()
    events: list = []
    bus.add_listener(events.append)
    providers = build_providers(config["provider"])
    finder = SourceFinder(
        providers.for_site, providers.client, config["downloads"]["hosters"],
        config["downloads"]["language"], UA,
    )  # fmt: skip
    queue = DownloadService(config, store, bus, finder)
    try:
        [item] = await queue.add(KEY, [(1, 1)])
        await queue.start()
        for _ in range(WAIT * 50):
            done = [e.data for e in events if e.type == DOWNLOAD_COMPLETE]
            failed = [e.data for e in events if e.type == DOWNLOAD_FAILED]
            if done or failed:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"no result after {WAIT}s; status: {await queue.status()}")

        def q() -> dict:
            r = store.e.DownloadQueueItem[item["id"]]
            return {"status": r.status, "hoster": r.hoster, "error": r.error}

        row = store.run_sync(q)
        assert done, (failed, row)
        return done[0], row, site
    finally:
        await queue.close()
        await providers.close()
        store.close()
        await site.stop()


def assert_complete_video(done: dict, library: Path) -> None:
    target = library / f"{NAME} (2020)" / "Season 01" / f"{NAME} - S01E001 - (German Dub).mp4"
    assert done["path"] == str(target) and target.is_file()
    info = ffprobe(target)
    assert "mp4" in info["format"]["format_name"]
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    assert abs(float(info["format"]["duration"]) - 3.0) < 0.25


def hoster_requests(site: Site) -> list[tuple[str, str, str | None]]:
    return [
        (e["method"], e["path"].split("?")[0], e.get("referer"))
        for e in site.state.request_log
        if e.get("hoster")
    ]


async def test_vidara_only_episode(tmp_path):
    code = "vid4ra0e2e"
    done, row, site = await download_only_offer(tmp_path, "Vidara", code)
    assert (row["status"], row["hoster"], row["error"]) == (COMPLETED, "Vidara", None)
    assert_complete_video(done, tmp_path / "library")
    log = hoster_requests(site)
    assert ("POST", "/api/stream", f"{site.origin}/vidara/e/{code}") in log
    media = [r for r in log if r[1].startswith(f"/media/vidara-{code}/")]
    assert media and all(referer == f"{site.origin}/" for _, _, referer in media)


async def test_filemoon_byse_only_episode(tmp_path):
    code = "byse0e2e"
    done, row, site = await download_only_offer(tmp_path, "Filemoon", code)
    assert (row["status"], row["hoster"]) == (COMPLETED, "Filemoon")
    assert_complete_video(done, tmp_path / "library")
    paths = [path for _, path, _ in hoster_requests(site)]
    assert paths[0] == f"/api/videos/{code}"  # the API, not a page, gave the source
    assert f"/byse/e/{code}" not in paths and f"/filemoon/e/{code}" not in paths
    assert any(p.startswith(f"/media/filemoon-{code}/seg") for p in paths)  # the 1080p entry, not 360p


async def test_doodstream_mirror_only_episode(tmp_path):
    code = "mirror0e2e"
    done, row, site = await download_only_offer(tmp_path, "DoodStream", code)
    assert (row["status"], row["hoster"]) == (COMPLETED, "DoodStream")
    assert_complete_video(done, tmp_path / "library")
    mirror_page = f"{other_origin(site.origin)}/playmogo/e/{code}"
    log = hoster_requests(site)
    assert any(path == f"/playmogo/e/{code}" for _, path, _ in log)
    assert any(p.startswith("/pass_md5/") and ref == mirror_page for _, p, ref in log)
    media = [ref for _, p, ref in log if p.startswith(f"/media/doodstream-{code}~")]
    assert media and all(ref == mirror_page for ref in media)
