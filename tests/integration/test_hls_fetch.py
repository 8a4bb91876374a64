"""Our own HLS downloader (hls_fetch) through the real download child, against a local HLS server made
from real ffmpeg fragments: AES-128 streams decrypt to the same file as the clear stream, a fragment that
fails once is retried, one that stays missing fails the download with a clear reason, damaged resume data
starts over instead of giving a broken file, and a shape it does not handle (byte ranges) goes to yt-dlp."""

from __future__ import annotations

import asyncio
import collections
import os
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from aniworldd.download.hls_fetch import Job, fingerprint, write_index
from aniworldd.download.hls_playlist import parse_media
from aniworldd.download.ytdlp import FAILED, DownloadError, YtDlpRunner
from aniworldd.providers.hosters.base import MediaSource
from tests.fakesite.media import ffmpeg_available, make_media
from tests.integration.download_helpers import probe, sha256

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)")

SECONDS = 12
KEY = bytes(range(16))
EXPLICIT_IV = bytes(range(100, 116))


def _encrypt(data: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(data) + padder.finalize()) + enc.finalize()


class HlsServer:
    """Serves one real fragment list in several shapes; counts requests per path."""

    def __init__(self, hls_dir: Path) -> None:
        self.segments = sorted(hls_dir.glob("seg*.ts"))
        self.durations = [
            float(line.split(":", 1)[1].rstrip(","))
            for line in (hls_dir / "stream.m3u8").read_text().splitlines()
            if line.startswith("#EXTINF:")
        ]
        self.hits: collections.Counter[str] = collections.Counter()
        self.runner: web.AppRunner | None = None
        self.origin = ""

    def playlist(self, shape: str) -> str:
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
        offset = 0
        for i, (seg, dur) in enumerate(zip(self.segments, self.durations, strict=True)):
            if shape == "aes" and i == 0:
                lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x{EXPLICIT_IV.hex()}')
            if shape == "aes" and i == len(self.segments) // 2:  # the rest: the IV is the sequence number
                lines.append('#EXT-X-KEY:METHOD=AES-128,URI="key.bin"')
            lines.append(f"#EXTINF:{dur:.3f},")
            if shape == "range":
                size = seg.stat().st_size
                lines += [f"#EXT-X-BYTERANGE:{size}@{offset}", "all.ts"]
                offset += size
            else:
                lines.append(seg.name)
        lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def iv(self, index: int) -> bytes:
        return EXPLICIT_IV if index < len(self.segments) // 2 else index.to_bytes(16, "big")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        shape, name = request.match_info["shape"], request.match_info["name"]
        self.hits[f"{shape}/{name}"] += 1
        if name == "stream.m3u8":
            return web.Response(text=self.playlist(shape), content_type="application/vnd.apple.mpegurl")
        if name == "key.bin":
            return web.Response(body=KEY)
        if name == "all.ts":
            data = b"".join(p.read_bytes() for p in self.segments)
            rng = request.headers.get("Range", "")
            if rng.startswith("bytes="):
                start, _, end = rng[6:].partition("-")
                part = data[int(start) : int(end) + 1 if end else None]
                headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
                return web.Response(status=206, body=part, headers=headers)
            return web.Response(body=data)
        index = next((i for i, p in enumerate(self.segments) if p.name == name), None)
        if index is None:
            raise web.HTTPNotFound()
        if shape == "dead" and index == 3:
            raise web.HTTPNotFound()
        if shape == "flaky" and index == 3 and self.hits[f"{shape}/{name}"] == 1:
            raise web.HTTPServiceUnavailable()
        if shape in ("slow", "stall") and index == 2:
            # "slow": the fragment trickles in over ~3 socket timeouts, never idle for one;
            # "stall": its first answer sends the headers and then stays silent.
            data = self.segments[index].read_bytes()
            resp = web.StreamResponse(headers={"Content-Length": str(len(data))})
            await resp.prepare(request)
            if shape == "stall" and self.hits[f"{shape}/{name}"] == 1:
                await asyncio.sleep(4)
                raise ConnectionResetError  # never completes
            step = len(data) // 12 + 1
            for i in range(0, len(data), step):
                await resp.write(data[i : i + step])
                await asyncio.sleep(0.25 if shape == "slow" else 0)
            await resp.write_eof()
            return resp
        data = self.segments[index].read_bytes()
        return web.Response(body=_encrypt(data, self.iv(index)) if shape == "aes" else data)

    async def start(self) -> HlsServer:
        app = web.Application()
        app.router.add_get("/{shape}/{name}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.origin = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001
        return self

    def source(self, shape: str) -> MediaSource:
        return MediaSource(url=f"{self.origin}/{shape}/stream.m3u8", kind="hls", hoster="Luluvdo")

    def fetched(self, shape: str) -> int:
        return sum(n for path, n in self.hits.items() if path.startswith(f"{shape}/seg"))


@pytest.fixture
async def server(tmp_path_factory):
    media = make_media(tmp_path_factory.getbasetemp() / "media", SECONDS)
    s = await HlsServer(media.hls_dir).start()
    yield s
    await s.runner.cleanup()


@pytest.fixture
def runner() -> YtDlpRunner:
    return YtDlpRunner(fragments=4, socket_timeout=10, retries=2)


async def download(runner: YtDlpRunner, source: MediaSource, stem: Path):
    proc = await runner.start(source, stem)
    try:
        return await proc.wait(), list(proc._stderr)  # noqa: SLF001 - what the child said
    except DownloadError as exc:
        exc.stderr = list(proc._stderr)  # noqa: SLF001
        raise


async def test_aes128_stream_gives_the_same_file_as_the_clear_one(server, runner, tmp_path) -> None:
    clear, _ = await download(runner, server.source("clear"), tmp_path / "aw-1-luluvdo-ger-dub")
    aes, said = await download(runner, server.source("aes"), tmp_path / "aw-2-luluvdo-ger-dub")
    assert not any("yt-dlp" in line for line in said)  # our downloader did it
    assert server.hits["aes/key.bin"] == 1  # one key fetch for all fragments
    assert abs(float(probe(aes.path)["duration"]) - SECONDS) < 1.5
    assert sha256(aes.path) == sha256(clear.path)
    assert aes.path.suffix == ".mp4"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([aes.path.name, clear.path.name])  # no partial or resume file left over


async def test_a_fragment_failing_once_is_retried(server, runner, tmp_path) -> None:
    result, _ = await download(runner, server.source("flaky"), tmp_path / "aw-3-luluvdo-ger-dub")
    assert server.hits["flaky/seg003.ts"] == 2
    assert abs(float(probe(result.path)["duration"]) - SECONDS) < 1.5


async def test_socket_timeout_is_an_idle_limit_not_a_total_one(server, tmp_path) -> None:
    runner = YtDlpRunner(fragments=4, socket_timeout=1, retries=1)
    slow, _ = await download(runner, server.source("slow"), tmp_path / "aw-10-luluvdo-ger-dub")
    assert server.hits["slow/seg002.ts"] == 1  # ~3 s for one fragment with a 1 s timeout: not cut off
    stalled, _ = await download(runner, server.source("stall"), tmp_path / "aw-11-luluvdo-ger-dub")
    assert server.hits["stall/seg002.ts"] == 2  # the silent answer was given up and fetched again
    assert sha256(slow.path) == sha256(stalled.path)


async def test_a_missing_fragment_fails_with_its_number(server, runner, tmp_path) -> None:
    stem = tmp_path / "aw-4-luluvdo-ger-dub"
    with pytest.raises(DownloadError) as err:
        await download(runner, server.source("dead"), stem)
    assert err.value.kind == FAILED
    assert err.value.reason == f"fragment 4 of {SECONDS}: HTTP Error 404"
    assert server.hits["dead/seg003.ts"] == 1 + runner.retries
    assert not list(tmp_path.glob("*.mp4"))  # no half remux under any name
    assert not (tmp_path / f"{stem.name}.remux.mp4.part").exists()


async def test_resume_fetches_the_rest_and_damaged_resume_data_starts_over(server, runner, tmp_path) -> None:
    clear, _ = await download(runner, server.source("clear"), tmp_path / "aw-5-luluvdo-ger-dub")
    segments = parse_media(server.playlist("clear"), f"{server.origin}/clear/stream.m3u8")
    done = 5
    prefix = b"".join(p.read_bytes() for p in server.segments[:done])

    # What a killed run leaves: the first fragments and their index.
    job = Job(url="", stem=tmp_path / "aw-6-luluvdo-ger-dub", headers={})
    job.ts_path.write_bytes(prefix + b"\x47half a fragment")
    write_index(job, fingerprint(segments), done, len(prefix))
    server.hits.clear()
    resumed, _ = await download(runner, server.source("clear"), job.stem)
    assert server.fetched("clear") == SECONDS - done
    assert sha256(resumed.path) == sha256(clear.path)
    assert not job.ts_path.exists() and not job.index_path.exists()

    # The same, but a power cut zeroed part of the data its index vouches for: start over, right file.
    job = Job(url="", stem=tmp_path / "aw-7-luluvdo-ger-dub", headers={})
    job.ts_path.write_bytes(prefix[:1000] + bytes(4096) + prefix[5096:])
    write_index(job, fingerprint(segments), done, len(prefix))
    server.hits.clear()
    restarted, said = await download(runner, server.source("clear"), job.stem)
    assert server.fetched("clear") == SECONDS
    assert any("resume data damaged" in line for line in said)
    assert sha256(restarted.path) == sha256(clear.path)


async def test_byte_range_stream_is_handed_to_yt_dlp(server, runner, tmp_path) -> None:
    result, said = await download(runner, server.source("range"), tmp_path / "aw-8-luluvdo-ger-dub")
    assert any("handed to yt-dlp (EXT-X-BYTERANGE)" in line for line in said)
    assert server.hits["range/all.ts"] >= 1
    assert abs(float(probe(result.path)["duration"]) - SECONDS) < 1.5


async def test_yt_dlp_setting_and_speed_limit_keep_yt_dlp(tmp_path) -> None:
    source = MediaSource(url="http://127.0.0.1:9/x.m3u8", kind="hls", hoster="VOE")
    stem = tmp_path / "aw-9"
    assert YtDlpRunner(fragments=8).hls_job(source, stem)["fragments"] == 8
    assert YtDlpRunner(hls_downloader="yt-dlp").hls_job(source, stem) is None
    assert YtDlpRunner(speed_limit="5M").hls_job(source, stem) is None
    mp4 = MediaSource(url="http://127.0.0.1:9/x.mp4", kind="mp4", hoster="VOE")
    assert YtDlpRunner().hls_job(mp4, stem) is None
    assert os.path.basename(str(stem)) == "aw-9"
