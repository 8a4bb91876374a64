"""Real, small test videos for the fake hosters: an mp4 and an HLS rendition of it, made with ffmpeg.

yt-dlp in the tests downloads these for real, so they have to be genuine media (H.264 + AAC, keyframe
every second so HLS segments cut cleanly).  Generation takes about a second; results are cached on disk
(by default in a per-user temp dir that survives test runs) and written atomically, so parallel runs
and interrupted runs never see half-made files.

Layout under `dir`:
    v2-<seconds>s/video.mp4
    v2-<seconds>s/hls/master.m3u8  -> stream.m3u8 -> seg000.ts, seg001.ts, ...
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

#: Bump when the ffmpeg recipe changes so stale caches are not reused.
RECIPE_VERSION = "v2"
MAX_SECONDS = 600
_lock = threading.Lock()


class MediaUnavailable(RuntimeError):
    """ffmpeg is missing or failed; tests that need media should skip/fail with this reason."""


@dataclass(frozen=True, slots=True)
class Media:
    seconds: int
    root: Path
    mp4: Path
    hls_dir: Path
    master: Path

    @property
    def mp4_size(self) -> int:
        return self.mp4.stat().st_size


def default_cache_dir() -> Path:
    """`$ANIWORLDD_TEST_MEDIA` or `<tmp>/aniworldd-test-media-<uid>`: kept between test runs."""
    env = os.environ.get("ANIWORLDD_TEST_MEDIA")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"aniworldd-test-media-{os.getuid()}"


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def _media_at(root: Path, seconds: int) -> Media:
    hls = root / "hls"
    return Media(seconds=seconds, root=root, mp4=root / "video.mp4", hls_dir=hls, master=hls / "master.m3u8")


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MediaUnavailable(f"ffmpeg failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")


def _generate(target: Path, seconds: int) -> None:
    target.mkdir(parents=True)
    mp4 = target / "video.mp4"
    _run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=640x360:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25",
            "-keyint_min", "25", "-sc_threshold", "0", "-b:v", "600k",
            "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart",
            str(mp4),
        ]
    )  # fmt: skip
    hls = target / "hls"
    hls.mkdir()
    _run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(mp4),
            "-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(hls / "seg%03d.ts"), str(hls / "stream.m3u8"),
        ]
    )  # fmt: skip
    (hls / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=700000,RESOLUTION=640x360\nstream.m3u8\n"
    )


def make_media(dir: Path, seconds: int = 3) -> Media:
    """Return the cached media of `seconds` length under `dir`, generating it once if needed."""
    if not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be 1..{MAX_SECONDS}")
    dir = Path(dir)
    final = dir / f"{RECIPE_VERSION}-{seconds}s"
    media = _media_at(final, seconds)
    if media.master.exists():
        return media
    if not ffmpeg_available():
        raise MediaUnavailable("ffmpeg binary not found (Debian package ffmpeg)")
    with _lock:
        if media.master.exists():
            return media
        dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{seconds}s-", dir=dir))
        try:
            shutil.rmtree(tmp)
            _generate(tmp, seconds)
            try:
                os.rename(tmp, final)  # atomic; loses harmlessly to a concurrent process
            except OSError:
                if not media.master.exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return media
