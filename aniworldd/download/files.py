"""Temp files, free space and the atomic move into the library.

The library only ever receives finished files: yt-dlp writes into the temp dir (same filesystem as the
library by default, so the final step is one `os.replace`); across filesystems the file is copied to a
hidden name next to the target, fsynced, and renamed, so a crash mid-copy leaves a dot-file the
service removes on the next start, never a half file under the real name.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

from aniworldd.fileio import fsync_dir

#: Every temp file of a queue item starts with this (`aw-<id>-<hoster>-<language>.<ext>[.part]`).
TEMP_PREFIX = "aw-"
#: Hidden name used next to the target while copying across filesystems.
STAGING_SUFFIX = ".aniworldd-partial"

_SLUG_RE = re.compile(r"[^a-z0-9]+")
#: yt-dlp's in-progress names: .part, .ytdl (fragment state), .part-FragN, .temp.<ext> (fixups), .pid (ours),
#: and hls_fetch's .hlsidx (its fragment state) and .hlsdata (the MPEG-TS it resumes from).
_PARTIAL_RE = re.compile(
    r"(\.part(-Frag\d+)?(\.part)?|\.ytdl|\.hlsidx(\.tmp)?|\.hlsdata|\.temp\.[a-z0-9]+|\.pid|\.f\d+\.[a-z0-9]+)$"
)


def slug(text: str) -> str:
    return _SLUG_RE.sub("-", text.lower()).strip("-") or "x"


def temp_stem(temp_dir: Path, item_id: int, hoster: str, language: str) -> Path:
    """Where one (item, hoster, language) download lives; different sources never share a partial file."""
    return Path(temp_dir) / f"{TEMP_PREFIX}{item_id}-{slug(hoster)}-{slug(language)}"


def item_files(temp_dir: Path, item_id: int) -> list[Path]:
    """All temp files (finished or partial) that belong to one queue item."""
    temp_dir = Path(temp_dir)
    if not temp_dir.is_dir():
        return []
    prefix = f"{TEMP_PREFIX}{item_id}-"
    return sorted(p for p in temp_dir.iterdir() if p.name.startswith(prefix))


def stem_files(stem: Path) -> list[Path]:
    stem = Path(stem)
    if not stem.parent.is_dir():
        return []
    return sorted(p for p in stem.parent.iterdir() if p.name.startswith(stem.name + "."))


def is_partial(path: Path) -> bool:
    return bool(_PARTIAL_RE.search(path.name))


def find_output(stem: Path) -> Path | None:
    """The finished file yt-dlp left for this stem (not a .part/.ytdl/fixup temp), if any."""
    done = [p for p in stem_files(stem) if not is_partial(p) and p.is_file()]
    return done[0] if len(done) == 1 else None


def partial_bytes(stem: Path) -> int:
    """Bytes already on disk for this stem (what a resume starts from)."""
    return sum(p.stat().st_size for p in stem_files(stem) if p.is_file() and not p.name.endswith(".pid"))


def remove_files(paths: list[Path]) -> int:
    removed = 0
    for p in paths:
        try:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}{STAGING_SUFFIX}")


def move_into_place(src: Path, dst: Path) -> None:
    """Make `src` appear at `dst` atomically (blocking; run it in a thread).

    The data is fsynced before the rename so a power cut cannot leave a renamed-but-empty file.
    Across filesystems: copy to a hidden staging name in the target folder, fsync, rename, then delete
    the source.
    """
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _fsync_file(src)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        staging = staging_path(dst)
        try:
            with open(src, "rb") as fin, open(staging, "wb") as fout:
                shutil.copyfileobj(fin, fout, 4 * 1024 * 1024)
                fout.flush()
                os.fsync(fout.fileno())
            shutil.copystat(src, staging)
            os.replace(staging, dst)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        src.unlink()
    fsync_dir(dst.parent)
