"""HLS throughput on a realistic link: the daemon vs the link's limit vs plain `yt-dlp` defaults.

A 200 MiB HLS stream cut into 2 s fragments (by default a 24-minute episode, ~720 fragments of ~290 KB:
what a hoster serves for one episode) is served by the look-alike site (tests/fakesite) with
`state.media_delay` = 40 ms added to every media request (a round trip to a far CDN) and every response
sharing one 1 Gbit/s link (`state.media_link`, an aggregate limit: parallel requests share the line, they
do not get one line each). Three figures:

- `limit_s`: size / rate, what the link allows at best;
- `ytdlp_default_s`: `yt-dlp -o FILE URL` with its defaults (one fragment at a time);
- `daemon_s`: a running DownloadService (queue, the download child with `downloads.fragments`: our own
  HLS downloader, hls_fetch, which remuxes into MP4 while the fragments arrive; progress parsing, fsync +
  atomic move into the library), from `add()` to the download_complete event; the queue helpers are
  bench/download.py's, so the figure is taken exactly like the mp4 one. `download_s` is the part up to
  the child's "finished" progress line (the last fragment is in); after it come the end of the remux
  and the child's exit (`remux_s`), then the fsync + move.

`--sweep 1,4,8,16` also times the daemon with each `downloads.fragments` value (how the default was
chosen). `--hls-downloader yt-dlp` times the daemon with yt-dlp as its HLS downloader (the old path). The
plain yt-dlp run includes yt-dlp's remux of the MPEG-TS fragments into the .mp4 the library gets.

The stream is made once with ffmpeg (a short noisy clip at the target bitrate, then looped with `-c copy`
and cut into 2 s fragments) and cached like tests/fakesite/media.py caches its videos, in the layout its
`make_media` reads (the fake hosters then serve it for the code `bench-600s`). Each figure is the median
of `--runs` runs. Prints ONE JSON line:
  {"daemon_s", "limit_s", "ratio_vs_limit", "download_s", "download_ratio_vs_limit", "remux_s",
   "ytdlp_default_s", "speedup_vs_ytdlp", "fragments",
   "sweep", "size_mb", "segments", "segment_s", "delay_ms", "rate_bps", "runs", ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.download import Queue, free_port, settle, wait_port  # noqa: E402
from tests.fakesite.media import RECIPE_VERSION  # noqa: E402

SEGMENT_S = 2
#: The fake hosters serve the cached video of `<code>-<N>s` from `<media_dir>/<recipe>-<N>s/`; the bench
#: stream sits in that slot of its own media dir (its real length is whatever 200 MiB takes).
SLOT_SECONDS = 600
CODE = f"bench-{SLOT_SECONDS}s"
HOSTER = "luluvdo"  # an HLS hoster whose media needs no Referer

SERVER = r"""
import asyncio, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.fakesite.app import start_fakesite
from tests.fakesite.link import SharedLink
from tests.fakesite.state import FakeSiteState

async def main():
    state = FakeSiteState(media_dir=Path(sys.argv[2]))
    state.media_delay = float(sys.argv[4])
    rate = int(sys.argv[5])
    state.media_link = SharedLink(rate) if rate else None
    runner, origin = await start_fakesite(state, port=int(sys.argv[3]), host="127.0.0.1")
    await asyncio.Event().wait()

asyncio.run(main())
"""


def cache_dir() -> Path:
    env = os.environ.get("ANIWORLDD_BENCH_MEDIA")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"aniworldd-bench-hls-{os.getuid()}"


def _ffmpeg(*args: str) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.strip()[-500:]}")


def make_stream(root: Path, size_mb: int, kbps: int) -> Path:
    """The cached HLS stream (`<slot>/hls/master.m3u8`), made once per (size, bitrate)."""
    media_dir = root / f"{size_mb}mb-{kbps}k"
    slot = media_dir / f"{RECIPE_VERSION}-{SLOT_SECONDS}s"
    if (slot / "hls" / "master.m3u8").exists():
        return media_dir
    media_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=media_dir))
    try:
        clip = tmp / "clip.mp4"
        video_kbps = max(kbps - 64, 100)
        # Noise keeps the encoder at the target bitrate (a test pattern alone compresses to nothing);
        # a keyframe every 2 s lets the HLS muxer cut exactly there.
        _ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=25:duration=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=30",
            "-vf", "noise=alls=30:allf=t",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-b:v", f"{video_kbps}k", "-maxrate", f"{video_kbps}k", "-bufsize", f"{video_kbps * 2}k",
            "-g", str(25 * SEGMENT_S), "-keyint_min", str(25 * SEGMENT_S), "-sc_threshold", "0",
            "-c:a", "aac", "-b:a", "64k", "-shortest", str(clip),
        )  # fmt: skip
        clip_rate = clip.stat().st_size / 30  # bytes per second of the real encode
        seconds = (size_mb << 20) / clip_rate
        hls = tmp / "slot" / "hls"
        hls.mkdir(parents=True)
        _ffmpeg(
            "-stream_loop", "-1", "-i", str(clip), "-t", f"{seconds:.2f}", "-c", "copy",
            "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(hls / "seg%04d.ts"), str(hls / "stream.m3u8"),
        )  # fmt: skip
        (hls / "master.m3u8").write_text(
            "#EXTM3U\n#EXT-X-VERSION:3\n"
            f"#EXT-X-STREAM-INF:BANDWIDTH={kbps * 1000},RESOLUTION=854x480\nstream.m3u8\n"
        )
        os.rename(tmp / "slot", slot)  # atomic: a half-made stream is never found
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return media_dir


def stream_stats(media_dir: Path) -> tuple[int, int]:
    """(bytes a download fetches, number of fragments)."""
    hls = media_dir / f"{RECIPE_VERSION}-{SLOT_SECONDS}s" / "hls"
    segments = list(hls.glob("seg*.ts"))
    size = sum(p.stat().st_size for p in hls.iterdir() if p.is_file())
    return size, len(segments)


def time_ytdlp_default(url: str, work: Path) -> float:
    """Plain yt-dlp (its defaults: one fragment at a time), into a fresh dir that is removed after."""
    out = work / "ytdlp"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    settle()
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "yt_dlp", "--ignore-config", "-q", "--no-progress", "-o",
         str(out / "episode.%(ext)s"), url],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    took = time.perf_counter() - began
    shutil.rmtree(out, ignore_errors=True)
    return took


async def time_daemon(
    work: Path, base: str, name: str, runs: int, fragments: int | None, engine: str = "aniworldd"
) -> list[tuple[float, float, float]]:
    """(add -> download_complete, add -> the child's "finished", the rest of the child) per run; the rest
    of the first is the fsync + move into the library."""
    extra = ("" if fragments is None else f", fragments: {fragments}") + f", hls_downloader: {engine}"
    warm = f"{HOSTER}-warm-2s/master.m3u8"
    async with Queue(work, base, 1, "", warmup=warm, extra=extra) as queue:
        service = queue.service
        worker = service.worker
        marks: dict[str, float] = {}
        add, on_progress = service.add, worker._on_progress

        async def timed_add(*args, **kwargs):
            marks["add"] = time.perf_counter()
            return await add(*args, **kwargs)

        def timed_progress(active, progress) -> None:
            if progress.status == "finished" and "finished" not in marks:
                marks["finished"] = time.perf_counter()
            on_progress(active, progress)

        async def timed_run(*args, **kwargs):
            result = await run_ytdlp(*args, **kwargs)
            marks["ytdlp_done"] = time.perf_counter()
            return result

        run_ytdlp = worker._run_ytdlp
        service.add = timed_add
        worker._on_progress, worker._run_ytdlp = timed_progress, timed_run
        runs_out = []
        for _ in range(runs):
            marks.clear()
            total = await queue.time_batch([name])
            download = marks["finished"] - marks["add"]
            remux = marks["ytdlp_done"] - marks["finished"]
            runs_out.append((total, download, remux))
        return runs_out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument(
        "--kbps", type=int, default=1165, help="stream bitrate (1165: 200 MiB is a 24-minute episode)"
    )
    parser.add_argument("--delay-ms", type=float, default=40.0, help="added to every media request")
    parser.add_argument("--rate", type=int, default=125_000_000, help="link rate in bytes/s (1 Gbit/s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ytdlp-runs", type=int, default=1, help="runs of plain yt-dlp (slow)")
    parser.add_argument(
        "--sweep", default="", help="also time these downloads.fragments values, e.g. 1,4,8,16"
    )
    parser.add_argument("--fragments", type=int, default=None, help="downloads.fragments (default: config's)")
    parser.add_argument("--hls-downloader", default="aniworldd", choices=["aniworldd", "yt-dlp"])
    args = parser.parse_args()

    media_dir = make_stream(cache_dir(), args.size_mb, args.kbps)
    size, segments = stream_stats(media_dir)
    work = Path(tempfile.mkdtemp(prefix="aniworldd-bench-hls-"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(Path(__file__).resolve().parent.parent), str(media_dir),
         str(port), str(args.delay_ms / 1000), str(args.rate)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}/media"
        name = f"{HOSTER}-{CODE}/master.m3u8"
        daemon = asyncio.run(time_daemon(work, base, name, args.runs, args.fragments, args.hls_downloader))
        sweep = {}
        for n in [int(x) for x in args.sweep.split(",") if x.strip()]:
            timed = asyncio.run(time_daemon(work, base, name, args.runs, n, args.hls_downloader))
            sweep[str(n)] = {
                "daemon_s": round(statistics.median(t[0] for t in timed), 3),
                "download_s": round(statistics.median(t[1] for t in timed), 3),
            }
        ytdlp = [time_ytdlp_default(f"{base}/{name}", work) for _ in range(args.ytdlp_runs)]
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    from aniworldd.config import load_text

    fragments = args.fragments or load_text("", "defaults.yaml", env={})["downloads"]["fragments"]
    limit_s = size / args.rate if args.rate else None
    daemon_s = statistics.median(t[0] for t in daemon)
    ytdlp_s = statistics.median(ytdlp) if ytdlp else None  # --ytdlp-runs 0: not measured
    download_s = statistics.median(t[1] for t in daemon)
    remux_s = statistics.median(t[2] for t in daemon)
    result = {
        "daemon_s": round(daemon_s, 3),
        "limit_s": round(limit_s, 3) if limit_s else None,
        "ratio_vs_limit": round(daemon_s / limit_s, 3) if limit_s else None,
        "download_s": round(download_s, 3),
        "download_ratio_vs_limit": round(download_s / limit_s, 3) if limit_s else None,
        "remux_s": round(remux_s, 3),
        "ytdlp_default_s": round(ytdlp_s, 3) if ytdlp_s else None,
        "speedup_vs_ytdlp": round(ytdlp_s / daemon_s, 2) if ytdlp_s else None,
        "fragments": fragments,
        "hls_downloader": args.hls_downloader,
        "sweep": sweep,
        "daemon_runs": [round(t[0], 3) for t in daemon],
        "ytdlp_runs": [round(x, 3) for x in ytdlp],
        "size_mb": round(size / (1 << 20), 1),
        "segments": segments,
        "segment_s": SEGMENT_S,
        "kbps": args.kbps,
        "delay_ms": args.delay_ms,
        "rate_bps": args.rate,
        "runs": args.runs,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
