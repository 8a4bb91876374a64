"""The yt-dlp child process (`python -m aniworldd.download.ytdlp_child`).

It does the slow part of starting yt-dlp before it knows its job: import yt_dlp, build its option
parser, construct a YoutubeDL with the generic extractor (networking handlers, regexes, downloader
modules). Then it prints `ready` and waits for one JSON line on stdin, `{"argv": [...], "cwd": ...}`,
and runs the real yt-dlp command line on it, exactly as `yt-dlp ARGV` would. End-of-file instead of a
job (the daemon went away) exits quietly.

A job with an `hls` part is an HLS stream for our own fragment downloader (hls_fetch): it runs that,
and falls back to the yt-dlp command line only when the stream has a shape it does not handle.

This module must stay light: the standard library, yt_dlp, and hls_fetch (stdlib + curl_cffi).
"""

from __future__ import annotations

import json
import os
import sys

READY = "ready"


def warm_up() -> None:
    """Load and compile what every download needs; best effort, a new yt-dlp may differ inside."""
    from yt_dlp import YoutubeDL, parse_options

    parse_options(["--ignore-config", "--use-extractors", "generic", "--", "http://localhost/"])
    with YoutubeDL({"quiet": True, "no_warnings": True, "allowed_extractors": ["generic"]}) as ydl:
        ydl.get_info_extractor("Generic")
        ydl.build_format_selector("bv*+ba/b")
    import curl_cffi.requests  # noqa: F401
    import yt_dlp.downloader.hls  # noqa: F401
    import yt_dlp.downloader.http  # noqa: F401
    import yt_dlp.postprocessor.ffmpeg  # noqa: F401

    import aniworldd.download.hls_fetch  # noqa: F401


def quiet_fragment_progress() -> None:
    """Skip the progress lines yt-dlp formats for each HLS fragment's own (silent) downloader.

    Every fragment gets an HttpQuietDownloader whose output is thrown away, yet it still renders the
    progress template for its reports: about a fifth of yt-dlp's CPU per fragment (bench/hls.py, 700
    fragments). The download's own progress (the HLS downloader's, which we parse) is not touched.
    """
    from yt_dlp.downloader.fragment import HttpQuietDownloader

    HttpQuietDownloader.report_progress = lambda self, status: None  # type: ignore[method-assign]


def die_with_parent() -> None:
    """Linux: SIGKILL this child when the daemon dies (kill -9 included). Otherwise an orphaned download
    would go on writing the partial file that another worker of a cluster resumes after the lease ran out.
    Elsewhere a no-op: the daemon's next start kills leftovers by their pid files."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError) as exc:
        sys.stderr.write(f"aniworldd: cannot tie the download to the daemon's life: {exc}\n")
        return
    daemon = os.environ.get("ANIWORLDD_DAEMON_PID", "")
    if daemon.isdigit() and os.getppid() != int(daemon):  # the daemon died before the line above
        raise SystemExit(0)


def main() -> None:
    die_with_parent()
    import yt_dlp

    try:
        warm_up()
    except Exception as exc:  # a warm-up that fails only costs speed, never the download
        sys.stderr.write(f"aniworldd: yt-dlp warm-up skipped: {exc}\n")
    try:
        quiet_fragment_progress()
    except Exception as exc:  # a yt-dlp without that class: only costs CPU, never the download
        sys.stderr.write(f"aniworldd: fragment progress left as is: {exc}\n")
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise SystemExit(0)
    job = json.loads(line)
    os.chdir(job["cwd"])
    if job.get("hls"):
        from aniworldd.download.hls_fetch import run_job

        status = run_job(job["hls"])
        if status is not None:
            _exit_now(status)
    sys.argv = ["yt-dlp", *job["argv"]]
    try:
        yt_dlp.main(job["argv"])
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    _exit_now(code)


def _exit_now(code: object) -> None:
    """Exit without the interpreter's tear-down of every yt_dlp module (about 50 ms per download).

    yt-dlp has closed its files when main() returns; only our own stdio needs flushing.
    """
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()
