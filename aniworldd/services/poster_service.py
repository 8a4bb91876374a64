"""PosterService: small cached thumbnails of each series folder's poster.jpg, for the library's poster grid.

Why it is built this way:
- A poster.jpg (written by MetadataService, or by a media server) is often 300 KB to a few MB; a grid of
  2,000 series must not download that. Each poster is scaled down ONCE with ffmpeg and kept under
  `<data_dir>/posters/<key>.<sig>.jpg`, where `sig` is the source file's mtime and size: a replaced poster
  gets a new thumbnail (and the old one is removed), an unchanged one is never converted again.
- ffmpeg runs as a subprocess (the event loop never decodes an image) fed through stdin/stdout, never given
  a path: a file named poster.jpg that is really a playlist cannot make ffmpeg open other files or URLs
  (`-protocol_whitelist pipe`, image demuxer only). At most two conversions run at a time (a NAS has few
  cores) and one per series key, so a burst of lazy-loaded images never starts the same conversion twice.
- The source must be a regular file (a symlink is not followed) and at most MAX_SOURCE_BYTES.
- No poster, or one ffmpeg cannot read: the caller gets `None` and serves the placeholder; a failed
  conversion is remembered for that source signature, so a broken file is not retried on every request.
- Without ffmpeg installed the source is served as it is (up to MAX_UNSCALED_BYTES), with one warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from aniworldd.db import Store
from aniworldd.fileio import atomic_write
from aniworldd.services.errors import NotFound

log = logging.getLogger(__name__)

#: The file MetadataService writes into each series folder (and media servers read).
POSTER_FILE = "poster.jpg"
#: Thumbnail width in pixels: a grid card is ~160 CSS px wide, so this is sharp at 1.5x and ~10-20 KB.
THUMB_WIDTH = 240
#: JPEG quality for ffmpeg's mjpeg encoder (2 best .. 31 worst).
THUMB_QUALITY = 5
#: A poster bigger than this is not converted (placeholder instead).
MAX_SOURCE_BYTES = 20 * 1024 * 1024
#: Without ffmpeg, a source up to this size is served unscaled.
MAX_UNSCALED_BYTES = 2 * 1024 * 1024
FFMPEG_TIMEOUT = 30.0
#: Concurrent ffmpeg processes.
CONVERSION_SLOTS = 2


@dataclass(frozen=True, slots=True)
class Thumbnail:
    data: bytes
    etag: str  # quoted, strong: changes whenever the source file or the thumbnail size changes
    content_type: str = "image/jpeg"


class ConversionFailed(Exception):
    """ffmpeg could not turn the source into a thumbnail (not an image, truncated, timed out)."""


class PosterService:
    def __init__(
        self,
        store: Store,
        data_dir: str | Path,
        ffmpeg: str | None = "ffmpeg",
        width: int = THUMB_WIDTH,
    ) -> None:
        self.store = store
        self.cache_dir = Path(data_dir) / "posters"
        self.ffmpeg = shutil.which(ffmpeg) if ffmpeg else None
        self.width = width
        self.conversions = 0  # ffmpeg runs so far (what "resized once" is checked against)
        self._slots = asyncio.Semaphore(CONVERSION_SLOTS)
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, str] = {}  # key -> source signature whose conversion failed
        self._warned_no_ffmpeg = False

    # ---- lookup ----------------------------------------------------------------------------------

    async def folder_of(self, key: str) -> Path | None:
        """The series folder, None when the series has no folder yet; NotFound for an unknown key."""

        def q() -> tuple[bool, str | None, str | None]:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None or s.deleted_at is not None:
                return False, None, None
            return True, s.root, s.folder

        known, root, folder = await self.store.run(q)
        if not known:
            raise NotFound(f"no series with key {key!r}", {"key": key})
        if not root or not folder:
            return None
        return Path(root) / folder

    async def thumbnail(self, key: str) -> Thumbnail | None:
        """The series' poster thumbnail, converted on first use; None when there is no usable poster."""
        folder = await self.folder_of(key)
        if folder is None:
            return None
        source = folder / POSTER_FILE
        sig = await asyncio.to_thread(_signature, source)
        if sig is None or self._failed.get(key) == sig:
            return None
        thumb = self.cache_dir / f"{key}.{sig}.w{self.width}.jpg"
        etag = f'"{sig}.w{self.width}"'
        data = await asyncio.to_thread(_read, thumb)
        if data is not None:
            return Thumbnail(data, etag)
        # One lock per key, kept (a few thousand small objects at most): dropping it while a waiter still
        # holds it could let a second conversion of the same poster start.
        async with self._locks.setdefault(key, asyncio.Lock()):
            data = await asyncio.to_thread(_read, thumb)  # made while we waited for the lock
            if data is not None:
                return Thumbnail(data, etag)
            return await self._make(key, source, sig, thumb, etag)

    async def _make(self, key: str, source: Path, sig: str, thumb: Path, etag: str) -> Thumbnail | None:
        """Convert and store the thumbnail; None (and the failure remembered) when it cannot be made."""
        raw = await asyncio.to_thread(_read_source, source)
        if raw is None:
            return None
        if self.ffmpeg is None:
            if not self._warned_no_ffmpeg:
                self._warned_no_ffmpeg = True
                log.warning("ffmpeg not found: posters are served unscaled (install ffmpeg for thumbnails)")
            ctype = _image_type(raw)
            if ctype is None or len(raw) > MAX_UNSCALED_BYTES:
                return None
            return Thumbnail(raw, f'"{sig}.raw"', ctype)
        try:
            async with self._slots:
                data = await self._convert(raw)
        except ConversionFailed as exc:
            log.info("poster of %s not converted: %s", key, exc)
            self._failed[key] = sig
            return None
        await asyncio.to_thread(_store, self.cache_dir, key, thumb, data)
        self._failed.pop(key, None)
        return Thumbnail(data, etag)

    async def _convert(self, raw: bytes) -> bytes:
        assert self.ffmpeg is not None
        self.conversions += 1
        proc = await asyncio.create_subprocess_exec(
            self.ffmpeg,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-protocol_whitelist",
            "pipe",
            "-f",
            "image2pipe",
            "-i",
            "pipe:0",
            "-vf",
            f"scale='min({self.width},iw)':-2",
            "-frames:v",
            "1",
            "-q:v",
            str(THUMB_QUALITY),
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "pipe:1",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(raw), FFMPEG_TIMEOUT)
        except TimeoutError:
            _kill(proc)
            await proc.wait()
            raise ConversionFailed(f"ffmpeg took longer than {FFMPEG_TIMEOUT:.0f} s") from None
        except BaseException:  # cancelled (client gone, shutdown): do not leave the child behind
            _kill(proc)
            with contextlib.suppress(BaseException):
                await asyncio.shield(proc.wait())
            raise
        if proc.returncode != 0 or not out.startswith(b"\xff\xd8"):
            message = err.decode("utf-8", "replace").strip().splitlines()
            raise ConversionFailed(message[-1] if message else f"ffmpeg exited with {proc.returncode}")
        return out


def _signature(source: Path) -> str | None:
    """mtime_ns and size of a regular (non-symlink) file, as a file-name-safe token; None otherwise."""
    try:
        st = os.lstat(source)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return None
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _read_source(source: Path) -> bytes | None:
    """The poster's bytes, refusing symlinks and oversized files (O_NOFOLLOW: no race with lstat)."""
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = fh.read(MAX_SOURCE_BYTES + 1)
    return data if 0 < len(data) <= MAX_SOURCE_BYTES else None


def _store(cache_dir: Path, key: str, thumb: Path, data: bytes) -> None:
    """Write the thumbnail and drop older ones of the same series (keys contain no dots)."""
    atomic_write(thumb, data, 0o644)
    for old in cache_dir.glob(f"{key}.*.jpg"):
        if old != thumb:
            old.unlink(missing_ok=True)


def _image_type(data: bytes) -> str | None:
    """The content type of a JPEG, PNG, WebP or GIF by its magic bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
