"""Our own HLS downloader: many fragments in flight, remuxed to MP4 while they arrive.

Why not yt-dlp's: its HLS downloader spends about 4 ms of CPU per fragment (a fresh downloader object,
progress hooks, a file per fragment, then a second pass that concatenates them) and remuxes the whole
MPEG-TS file into MP4 only after the last fragment. An episode has ~700 fragments: on a fast line that
CPU, not the line, set the speed, and the remux added another 1.4 s (bench/hls.py). Here one curl_cffi
session keeps `fragments` requests in flight, each fragment is appended in order to `<stem>.hlsdata` and
piped into an ffmpeg that remuxes (`-c copy`) into `<stem>.remux.mp4.part` at the same time, so when the
last fragment lands the MP4 is only a moov atom away from done.

Resume: `<stem>.hlsidx` records how many fragments (and bytes) of `<stem>.hlsdata` are complete, for a
stream identified by its fragment count and total duration (fragment URLs carry tokens that change with
every resolve). A new run truncates the TS file to that point, feeds it to a fresh ffmpeg and fetches
only the rest. Pause is the caller's SIGSTOP of the process group (ffmpeg included).

The TS copy is only resume data: it is not fsynced while it grows (the MP4 is, by the daemon's
PartialFlusher, which syncs `.part` files), so on a fast line it is usually deleted before the kernel
ever writes it out. After a power cut its tail may be zeros although its size says otherwise; MPEG-TS
has a sync byte every 188 bytes, so a run of zeros gives it away and the download starts over.

It speaks yt-dlp's output protocol (our progress template lines, the final-path line, `ERROR:` lines on
stderr), so DownloadProcess reads it exactly like a yt-dlp child. Shapes it does not handle are refused
with `Unsupported` before any byte is written and yt-dlp does the download (hls_playlist).

Runs in the download child process: standard library, curl_cffi, and cryptography only for AES-128.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aniworldd.download.hls_playlist import (
    Key,
    PlaylistError,
    Segment,
    Unsupported,
    choose_variant,
    fingerprint,
    is_master,
    parse_master,
    parse_media,
)
from aniworldd.download.progress import FILE_PREFIX, format_progress_line

#: Seconds between progress lines (yt-dlp's `--progress-delta` we give it).
PROGRESS_EVERY = 0.5
#: Seconds between resume-index writes.
INDEX_EVERY = 1.0
#: A playlist larger than this is not a playlist (an episode's has ~60 KB).
MAX_PLAYLIST = 8 * 1024 * 1024
_FEED_CHUNK = 1024 * 1024
#: Two MPEG-TS packets' worth of zeros: impossible in a real stream (each packet starts with 0x47).
_ZEROS = bytes(376)
#: Linux fcntl: the pipe to ffmpeg gets a 1 MiB buffer (fewer, larger writes than the 64 KiB default).
_F_SETPIPE_SZ = 1031


class FetchError(Exception):
    """A fragment or playlist could not be had after the retries; the text is the item's reason."""


class DamagedResumeData(Exception):
    """The TS copy of an earlier run is not what its index says (lost in a power cut)."""


@dataclass(slots=True)
class Job:
    url: str
    stem: Path
    headers: dict[str, str]
    impersonate: str | None = "chrome"
    proxy: str | None = None
    fragments: int = 24
    quality: str = "best"
    retries: int = 5
    socket_timeout: float = 30.0
    ffmpeg: str = "ffmpeg"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(
            url=str(data["url"]),
            stem=Path(data["stem"]),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            impersonate=data.get("impersonate", "chrome"),
            proxy=data.get("proxy"),
            fragments=max(1, int(data.get("fragments") or 1)),
            quality=str(data.get("quality") or "best"),
            retries=max(0, int(data.get("retries", 5))),
            socket_timeout=float(data.get("socket_timeout") or 30.0),
            ffmpeg=str(data.get("ffmpeg") or "ffmpeg"),
        )

    @property
    def ts_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".hlsdata")

    @property
    def index_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".hlsidx")

    @property
    def remux_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".remux.mp4.part")

    @property
    def final_path(self) -> Path:
        return self.stem.with_name(self.stem.name + ".mp4")


# -- resume index -----------------------------------------------------------------------------------


def read_index(job: Job, stream_id: str) -> tuple[int, int]:
    """(fragments done, bytes) of a previous run of the same stream whose bytes are on disk; else (0, 0)."""
    try:
        data = json.loads(job.index_path.read_text())
        done, size = int(data["done"]), int(data["bytes"])
        if data.get("stream") != stream_id or done < 0 or size < 0:
            return 0, 0
        if job.ts_path.stat().st_size < size:  # the data never reached the disk (power cut)
            return 0, 0
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0
    return done, size


def write_index(job: Job, stream_id: str, done: int, size: int) -> None:
    tmp = job.index_path.with_name(job.index_path.name + ".tmp")
    tmp.write_text(json.dumps({"stream": stream_id, "done": done, "bytes": size}))
    os.replace(tmp, job.index_path)


# -- progress ---------------------------------------------------------------------------------------


class Meter:
    """Progress lines in yt-dlp's template format; speed over the last few seconds."""

    def __init__(self, count: int, done: int, size: int) -> None:
        self.count = count
        self.done = done
        self.size = size
        self._window: collections.deque[tuple[float, int]] = collections.deque([(time.monotonic(), size)])
        self._last_print = 0.0

    def add(self, nbytes: int) -> None:
        self.done += 1
        self.size += nbytes
        now = time.monotonic()
        self._window.append((now, self.size))
        while len(self._window) > 2 and now - self._window[0][0] > 3.0:
            self._window.popleft()
        if now - self._last_print >= PROGRESS_EVERY:
            self.emit("downloading")

    def emit(self, status: str) -> None:
        self._last_print = time.monotonic()
        (t0, b0), (t1, b1) = self._window[0], self._window[-1]
        speed = (b1 - b0) / (t1 - t0) if t1 > t0 else None
        estimate = self.size / self.done * self.count if self.done else None
        eta = (estimate - self.size) / speed if speed and estimate else None
        line = format_progress_line(
            status=status,
            downloaded_bytes=self.size,
            total_bytes=self.size if status == "finished" else None,
            total_bytes_estimate=None if estimate is None else f"{estimate:.0f}",
            speed=None if speed is None else f"{speed:.1f}",
            eta=None if eta is None else f"{max(eta, 0.0):.1f}",
            fragment_index=self.done,
            fragment_count=self.count,
        )
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# -- the download -----------------------------------------------------------------------------------


class HlsDownload:
    def __init__(self, job: Job, session: Any) -> None:
        self.job = job
        self.session = session
        self._keys: dict[str, asyncio.Future[bytes]] = {}
        #: Requests in flight at once (`downloads.fragments`).
        self._slots = asyncio.Semaphore(job.fragments)

    async def get(self, url: str, what: str, limit: int | None = None) -> bytes:
        """One GET with the job's retries (exponential pause, 10 s at most)."""
        error = "no answer"
        for attempt in range(self.job.retries + 1):
            if attempt:
                await asyncio.sleep(min(10.0, 2.0 ** (attempt - 1)))
            try:
                # No total time limit (a big fragment on a slow line may take minutes); the session's
                # curl options end a transfer that stalls for socket_timeout instead, as yt-dlp's does.
                resp = await self.session.get(url, timeout=None)
            except Exception as exc:  # curl's errors: timeouts, resets, DNS
                error = str(exc).split(". See ", 1)[0] or type(exc).__name__
                continue
            if resp.status_code in (200, 206):
                data = resp.content
                if limit is not None and len(data) > limit:
                    raise FetchError(f"{what}: answer too large")
                return data
            error = f"HTTP Error {resp.status_code}"
        raise FetchError(f"{what}: {error}")

    async def playlist(self) -> list[Segment]:
        url = self.job.url
        text = (await self.get(url, "playlist", MAX_PLAYLIST)).decode("utf-8", "replace")
        try:
            if is_master(text):
                variant = choose_variant(parse_master(text, url), self.job.quality)
                url = variant.uri
                text = (await self.get(url, "playlist", MAX_PLAYLIST)).decode("utf-8", "replace")
            return parse_media(text, url)
        except PlaylistError as exc:
            raise FetchError(f"{exc}") from None

    async def key(self, key: Key) -> bytes:
        assert key.uri is not None
        fut = self._keys.get(key.uri)
        if fut is None:
            fut = self._keys[key.uri] = asyncio.ensure_future(self.get(key.uri, "decryption key", 1024))
        data = await asyncio.shield(fut)
        if len(data) != 16:
            raise FetchError("decryption key: not an AES-128 key")
        return data

    async def fragment(self, index: int, segment: Segment, count: int) -> bytes:
        async with self._slots:
            data = await self.get(segment.uri, f"fragment {index + 1} of {count}")
        if segment.key is not None and segment.key.method == "AES-128":
            iv = segment.key.iv or segment.sequence.to_bytes(16, "big")
            data = decrypt(data, await self.key(segment.key), iv)
        return data

    async def run(self) -> Path:
        segments = await self.playlist()
        job = self.job
        stream_id = fingerprint(segments)
        done, size = read_index(job, stream_id)
        if done:
            try:
                return await self.transfer(segments, stream_id, done, size)
            except DamagedResumeData:
                sys.stderr.write("aniworldd: resume data damaged, starting over\n")
        return await self.transfer(segments, stream_id, 0, 0)

    async def transfer(self, segments: list[Segment], stream_id: str, done: int, size: int) -> Path:
        job = self.job
        count = len(segments)
        ffmpeg = await start_ffmpeg(job)
        errors: collections.deque[str] = collections.deque(maxlen=10)
        reader = asyncio.ensure_future(_collect(ffmpeg.stderr, errors))
        try:
            # Blocking file calls are fine here: this loop serves this one download and nothing else.
            with open(job.ts_path, "r+b" if done else "wb") as ts:  # noqa: ASYNC230
                ts.truncate(size)
                ts.seek(size)
                if size:
                    await feed_existing(job.ts_path, size, ffmpeg)
                meter = Meter(count, done, size)
                last_index = time.monotonic()
                async for data in self.in_order(segments, done):
                    ts.write(data)
                    assert ffmpeg.stdin is not None
                    try:
                        ffmpeg.stdin.write(data)
                        await ffmpeg.stdin.drain()
                    except (BrokenPipeError, ConnectionResetError):
                        raise FetchError(_ffmpeg_reason(errors, "ffmpeg stopped reading")) from None
                    meter.add(len(data))
                    if time.monotonic() - last_index >= INDEX_EVERY:
                        ts.flush()
                        # A rename can wait for the journal; the loop keeps the fragments moving meanwhile.
                        await asyncio.to_thread(write_index, job, stream_id, meter.done, meter.size)
                        last_index = time.monotonic()
                # No last index write: a rename costs up to 0.1 s behind the journal, and the file is
                # about to be deleted; if the remux fails now, the last periodic index still holds.
            meter.emit("finished")
            assert ffmpeg.stdin is not None
            ffmpeg.stdin.close()
            rc = await ffmpeg.wait()
            await reader
            if rc != 0:
                raise FetchError(_ffmpeg_reason(errors, f"ffmpeg exited with status {rc}"))
        except BaseException:
            if ffmpeg.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    ffmpeg.kill()
                await ffmpeg.wait()
            reader.cancel()
            job.remux_path.unlink(missing_ok=True)
            raise
        os.replace(job.remux_path, job.final_path)
        job.ts_path.unlink(missing_ok=True)
        job.index_path.unlink(missing_ok=True)
        return job.final_path

    async def in_order(self, segments: list[Segment], start: int):
        """The fragments from `start` on, in order, with `fragments` requests in flight.

        Up to twice that many are started ahead: a fragment that arrived before the one the file needs
        next waits in memory without holding a request slot, so one slow fragment does not idle the rest.
        """
        count = len(segments)
        window = 2 * self.job.fragments
        tasks: dict[int, asyncio.Task[bytes]] = {}
        launched = start
        try:
            for index in range(start, count):
                while launched < count and launched - index < window:
                    fetch = self.fragment(launched, segments[launched], count)
                    tasks[launched] = asyncio.ensure_future(fetch)
                    launched += 1
                yield await tasks.pop(index)
        finally:
            for task in tasks.values():
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks.values(), return_exceptions=True)


def decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if len(data) % 16:
        raise FetchError("encrypted fragment is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(plain) + unpadder.finalize()
    except ValueError:
        raise FetchError("fragment does not decrypt with the playlist's key") from None


async def start_ffmpeg(job: Job) -> asyncio.subprocess.Process:
    """ffmpeg remuxing MPEG-TS from our pipe into MP4 as it comes (the flags yt-dlp's m3u8 fixup uses)."""
    program = shutil.which(job.ffmpeg) or job.ffmpeg
    try:
        proc = await asyncio.create_subprocess_exec(
            program,
            "-hide_banner", "-loglevel", "error", "-y",
            "-f", "mpegts", "-i", "pipe:0",
            "-map", "0", "-dn", "-sn", "-ignore_unknown", "-c", "copy",
            "-f", "mp4", str(job.remux_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except OSError as exc:
        raise Unsupported(f"ffmpeg not available: {exc.strerror or exc}") from None
    pipe = proc.stdin.get_extra_info("pipe") if proc.stdin is not None else None
    if pipe is not None:
        with contextlib.suppress(OSError):  # not Linux, or above the system's pipe-max-size
            fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, 1 << 20)
    return proc


async def feed_existing(path: Path, size: int, ffmpeg: asyncio.subprocess.Process) -> None:
    """Resume: what an earlier run already has on disk goes to the new ffmpeg first."""
    assert ffmpeg.stdin is not None
    with open(path, "rb") as src:  # noqa: ASYNC230 - the child's loop has nothing else to serve
        left = size
        while left > 0:
            chunk = src.read(min(_FEED_CHUNK, left))
            if not chunk or _ZEROS in chunk:
                raise DamagedResumeData
            left -= len(chunk)
            ffmpeg.stdin.write(chunk)
            await ffmpeg.stdin.drain()


async def _collect(stream: asyncio.StreamReader | None, sink: collections.deque[str]) -> None:
    if stream is None:
        return
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").strip()
        if text:
            sink.append(text)


def _ffmpeg_reason(errors: collections.deque[str], fallback: str) -> str:
    return f"ffmpeg could not remux the stream: {errors[-1]}" if errors else fallback


async def _run(job: Job) -> Path:
    from curl_cffi import CurlOpt
    from curl_cffi.requests import AsyncSession

    stall = max(1, round(job.socket_timeout))
    kwargs: dict[str, Any] = {
        "headers": job.headers,
        "max_clients": job.fragments + 2,
        "allow_redirects": True,
        # `downloads` socket_timeout is an idle limit: no connection within it, or under 1 byte/s for it.
        "curl_options": {
            CurlOpt.CONNECTTIMEOUT_MS: stall * 1000,
            CurlOpt.LOW_SPEED_LIMIT: 1,
            CurlOpt.LOW_SPEED_TIME: stall,
        },
    }
    if job.impersonate:
        kwargs["impersonate"] = job.impersonate
    if job.proxy:
        kwargs["proxy"] = job.proxy
    async with AsyncSession(**kwargs) as session:
        return await HlsDownload(job, session).run()


def run_job(data: dict[str, Any]) -> int | None:
    """The child's entry: an exit status, or None when yt-dlp should do this download instead."""
    job = Job.from_dict(data)
    try:
        path = asyncio.run(_run(job))
    except Unsupported as exc:
        sys.stderr.write(f"aniworldd: HLS stream handed to yt-dlp ({exc})\n")
        return None
    except FetchError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return 1
    except OSError as exc:  # disk full, permissions: classify_failure reads the errno text
        sys.stderr.write(f"ERROR: [Errno {exc.errno}] {exc.strerror or exc}\n")
        return 1
    sys.stdout.write(f"{FILE_PREFIX} {path}\n")
    sys.stdout.flush()
    return 0
