"""The real yt-dlp, one child process per download.

Why a child process and not the yt_dlp library in a thread: a download can be cancelled for real (kill
the process group, which also takes any ffmpeg it started), paused (SIGSTOP/SIGCONT of the group), and
a crash or memory leak in yt-dlp or ffmpeg never takes the daemon down.

Pause is SIGSTOP/SIGCONT of the whole process group: resuming is instant and needs no new request; if
the server dropped the connection during a long pause, yt-dlp's own retries continue from the bytes on
disk (HTTP Range), so nothing is downloaded twice.

Resume after a restart uses yt-dlp's `--continue`: the same output name finds the `.part` file (and the
`.ytdl` fragment index for HLS) and carries on from there. A `<stem>.pid` file records the process
group so a restarted daemon can kill a download the previous (killed) daemon left running, before two
writers could touch the same partial file.

HLS fragments are fetched `downloads.fragments` at a time: each fragment costs a round trip, and one at
a time a far CDN's latency, not the line, sets the speed (bench/hls.py). By default the child runs our
own HLS downloader (hls_fetch: less CPU per fragment, remux while downloading) and yt-dlp only for
streams it does not handle; `downloads.hls_downloader: yt-dlp` gives yt-dlp every stream
(`--concurrent-fragments`). Both resume from their own fragment index.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aniworldd.download.files import find_output, free_bytes
from aniworldd.download.flusher import PartialFlusher
from aniworldd.download.launcher import Launcher, LaunchError
from aniworldd.download.progress import (
    FILE_TEMPLATE,
    PROGRESS_TEMPLATE,
    Progress,
    parse_file_line,
    parse_progress_line,
)
from aniworldd.net.proxy import scrub_credentials
from aniworldd.providers.hosters.base import MediaSource

log = logging.getLogger(__name__)

#: Failure kinds: `disk_full` fails the item at once (retrying would fill the disk again),
#: `failed` is a source problem (next hoster, later a retry), `cancelled` is our own kill.
DISK_FULL = "disk_full"
FAILED = "failed"
CANCELLED = "cancelled"

NO_SPACE_REASON = "no space left on device"

_QUALITY_FORMATS = {
    "best": "bv*+ba/b",
    "worst": "wv*+wa/w",
}
_DISK_FULL_MARKERS = ("no space left on device", "errno 28", "enospc", "disk quota exceeded", "errno 122")
_TOO_LARGE_MARKERS = ("file too large", "errno 27", "efbig")
_CAUSED_BY_RE = re.compile(r"\s*\(caused by .*\)\s*$", re.IGNORECASE)
#: Below this many free bytes on the temp filesystem, an unexplained failure is blamed on the disk.
_NEARLY_FULL = 256 * 1024


class DownloadError(Exception):
    """A download did not produce a file; `reason` is the short human text stored on the queue item."""

    def __init__(self, reason: str, kind: str = FAILED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(slots=True, frozen=True)
class DownloadResult:
    path: Path
    size_bytes: int


def format_selector(quality: str) -> str:
    """yt-dlp `-f` for the `downloads.quality` setting (`720p`: best at or below 720 lines)."""
    if quality in _QUALITY_FORMATS:
        return _QUALITY_FORMATS[quality]
    m = re.fullmatch(r"(\d{3,4})p", quality or "")
    if not m:
        return _QUALITY_FORMATS["best"]
    h = m.group(1)
    return f"bv*[height<=?{h}]+ba/b[height<=?{h}]/wv*+ba/w"


def _output_template(stem: Path) -> str:
    return str(stem).replace("%", "%%") + ".%(ext)s"


def pid_file(stem: Path) -> Path:
    return stem.with_name(stem.name + ".pid")


def classify_failure(stderr_tail: Sequence[str], returncode: int, temp_dir: Path | None) -> DownloadError:
    """Turn yt-dlp's exit into a short reason: disk full is recognised from its message (or a full disk)."""
    text = "\n".join(stderr_tail)
    low = text.lower()
    if any(m in low for m in _DISK_FULL_MARKERS):
        return DownloadError(NO_SPACE_REASON, DISK_FULL)
    if any(m in low for m in _TOO_LARGE_MARKERS):
        return DownloadError("file too large for the temp file system", DISK_FULL)
    if temp_dir is not None:
        with contextlib.suppress(OSError):
            if free_bytes(temp_dir) < _NEARLY_FULL:
                return DownloadError(NO_SPACE_REASON, DISK_FULL)
    errors = [line for line in stderr_tail if line.startswith("ERROR:")]
    if errors:
        reason = errors[-1][len("ERROR:") :].strip()
        reason = _CAUSED_BY_RE.sub("", reason)
        reason = re.sub(r"^\[[\w:]+\]\s*", "", reason)  # "[generic] ..." extractor tag
    elif returncode < 0:
        reason = f"yt-dlp was killed by signal {-returncode}"
    else:
        tail = [line for line in stderr_tail if line.strip()]
        reason = tail[-1].strip() if tail else f"yt-dlp exited with status {returncode}"
    # A proxy URL in yt-dlp's message must not carry its password into the queue item and the API.
    return DownloadError(scrub_credentials(reason)[:300] or "download failed", FAILED)


class DownloadProcess:
    """One running yt-dlp child: progress, pause/resume, kill, and the result."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        stem: Path,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.proc = proc
        self.stem = stem
        self.pid = proc.pid
        self.paused = False
        self.last_progress: Progress | None = None
        self.filepath: str | None = None
        self._killed = False
        self._on_progress = on_progress
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._stdout_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._readers = [
            asyncio.ensure_future(self._read_stdout()),
            asyncio.ensure_future(self._read_stderr()),
        ]
        self._flusher = PartialFlusher(stem)
        self._flusher.start()

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace")
            progress = parse_progress_line(line)
            if progress is not None:
                self.last_progress = progress
                if self._on_progress is not None:
                    try:
                        self._on_progress(progress)
                    except Exception:  # a listener bug must not stop reading (the pipe would fill up)
                        log.exception("progress callback failed")
                continue
            path = parse_file_line(line)
            if path is not None:
                self.filepath = path
            elif line.strip():
                self._stdout_tail.append(line.rstrip())

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while True:
            raw = await self.proc.stderr.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def pause(self) -> None:
        """Suspend yt-dlp and any ffmpeg it runs; the partial file stays as it is."""
        if self.proc.returncode is None and not self.paused:
            self._signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self._signal(signal.SIGCONT)
            self.paused = False

    async def kill(self) -> None:
        """Kill the whole process group now (partial data stays for a later resume) and reap it."""
        self._killed = True
        if self.proc.returncode is None:
            self._signal(signal.SIGKILL)
        self.paused = False
        await self._finish()

    async def _finish(self) -> int:
        rc = await self.proc.wait()
        await asyncio.to_thread(self._flusher.stop)
        # The group may outlive the leader (an ffmpeg child); make sure nothing keeps writing.
        self._signal(signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._readers, return_exceptions=True), 5)
        pid_file(self.stem).unlink(missing_ok=True)
        return rc

    async def wait(self) -> DownloadResult:
        """The finished file, or DownloadError. Cancelling the caller kills the download."""
        try:
            rc = await self._finish()
        except asyncio.CancelledError:
            await asyncio.shield(self.kill())
            raise
        if self._killed:
            raise DownloadError("cancelled", CANCELLED)
        if rc != 0:
            err = classify_failure(list(self._stderr), rc, self.stem.parent)
            log.info("yt-dlp failed (%s) for %s: %s", rc, self.stem.name, err.reason)
            raise err
        path = Path(self.filepath) if self.filepath else find_output(self.stem)
        if path is None or not path.is_file():
            raise DownloadError("yt-dlp finished but wrote no file")
        return DownloadResult(path=path, size_bytes=path.stat().st_size)


class YtDlpRunner:
    """Builds the yt-dlp command line and starts it (through the Launcher); one instance per daemon."""

    def __init__(
        self,
        *,
        launcher: Launcher | None = None,
        speed_limit: str | None = None,
        quality: str = "best",
        socket_timeout: float = 30.0,
        retries: int = 5,
        fragments: int = 1,
        proxy: str | None = None,
        extra_args: Sequence[str] = (),
        hls_downloader: str = "aniworldd",
    ) -> None:
        self.launcher = launcher or Launcher()
        #: `provider.proxy` (media goes the same way as the pages); None: yt-dlp honours the environment.
        self.proxy = proxy
        #: HLS/DASH fragments fetched at once (`--concurrent-fragments`, `downloads.fragments`).
        self.fragments = fragments
        self.speed_limit = speed_limit
        self.quality = quality
        self.socket_timeout = socket_timeout
        self.retries = retries
        self.extra_args = list(extra_args)
        #: `downloads.hls_downloader`: `aniworldd` (hls_fetch, yt-dlp for what it refuses) or `yt-dlp`.
        self.hls_downloader = hls_downloader

    @classmethod
    def from_config(cls, downloads_cfg: dict, **overrides: object) -> YtDlpRunner:
        kwargs: dict = {
            "launcher": Launcher(warm_seconds=downloads_cfg.get("warm_start") or 0.0),
            "speed_limit": downloads_cfg.get("speed_limit"),
            "quality": downloads_cfg.get("quality"),
            "fragments": int(downloads_cfg.get("fragments") or 1),
            "hls_downloader": downloads_cfg.get("hls_downloader") or "aniworldd",
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def arguments(self, source: MediaSource, stem: Path) -> list[str]:
        """yt-dlp's argv (without the program) for one source written to `<stem>.<ext>`."""
        cmd = [
            "--ignore-config", "--no-cache-dir", "--no-playlist", "--no-mtime",
            "--use-extractors", "generic",
            "--newline", "--progress", "--progress-delta", "0.5",
            "--progress-template", PROGRESS_TEMPLATE,
            "--print", FILE_TEMPLATE, "--no-simulate",
            "--continue", "--part",
            "--abort-on-unavailable-fragments",
            "--socket-timeout", f"{self.socket_timeout:g}",
            "--retries", str(self.retries), "--fragment-retries", str(self.retries),
            "--retry-sleep", "exp=1:10",
            "--concurrent-fragments", str(max(1, int(self.fragments))),
            "-f", format_selector(self.quality),
            "-o", _output_template(stem),
        ]  # fmt: skip
        if self.speed_limit:
            cmd += ["--limit-rate", str(self.speed_limit)]
        if self.proxy:
            cmd += ["--proxy", self.proxy]
        if getattr(source, "impersonate", False):
            # The media host checks the TLS handshake: yt-dlp's curl_cffi handler imitates Chrome.
            cmd += ["--impersonate", "chrome"]
        for name, value in (source.headers or {}).items():
            cmd += ["--add-header", f"{name}:{value}"]
        cmd += self.extra_args
        cmd += ["--", source.url]
        return cmd

    def hls_job(self, source: MediaSource, stem: Path) -> dict | None:
        """The job for our own HLS downloader (hls_fetch), or None when yt-dlp alone does this download.

        yt-dlp keeps a download with a speed limit (its `--limit-rate`) and extra arguments (the user
        asked for yt-dlp's behaviour); hls_fetch hands anything it does not handle back to yt-dlp.
        """
        if source.kind != "hls" or self.hls_downloader != "aniworldd" or self.speed_limit or self.extra_args:
            return None
        return {
            "url": source.url,
            "stem": str(stem),
            "headers": dict(source.headers or {}),
            "impersonate": "chrome",
            "proxy": self.proxy,
            "fragments": max(1, int(self.fragments)),
            "quality": self.quality,
            "retries": self.retries,
            "socket_timeout": self.socket_timeout,
        }

    async def start(
        self,
        source: MediaSource,
        stem: Path,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> DownloadProcess:
        """Start yt-dlp for `source`, writing `<stem>.<ext>` (resuming `<stem>.<ext>.part` if present)."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        try:
            # The pid file is written before yt-dlp gets its job: a daemon killed at any moment after
            # leaves a record for the next start to kill the group.
            proc = await self.launcher.launch(
                self.arguments(source, stem),
                stem.parent,
                before_job=lambda pid: pid_file(stem).write_text(f"{pid}\n"),
                hls=self.hls_job(source, stem),
            )
        except LaunchError as exc:
            raise DownloadError(exc.reason) from None
        return DownloadProcess(proc, stem, on_progress)


# -- leftovers of a killed daemon ---------------------------------------------------------------


def _group_members(pgid: int) -> list[int]:
    members = []
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        return members
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ... ; comm may contain spaces, so split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:  # zombies hold no files
            members.append(int(entry.name))
    return members


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def kill_stale_processes(temp_dir: Path) -> list[int]:
    """Kill download process groups a previous daemon left running (found by their `.pid` files).

    A group is only killed if one of its processes still mentions our temp dir or yt-dlp/ffmpeg on its
    command line, so a reused pid never hits an unrelated program. Returns the killed group ids.
    """
    killed: list[int] = []
    temp_dir = Path(temp_dir)
    if not temp_dir.is_dir():
        return killed
    for pidf in temp_dir.glob("aw-*.pid"):
        try:
            pgid = int(pidf.read_text().strip())
        except (OSError, ValueError):
            pidf.unlink(missing_ok=True)
            continue
        stem_name = pidf.name[: -len(".pid")]
        members = _group_members(pgid)
        ours = any(
            stem_name in cmd or "yt_dlp" in cmd or "ytdlp_child" in cmd or "ffmpeg" in cmd
            for cmd in (_cmdline(p) for p in members)
        )
        if members and ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGCONT)
                os.killpg(pgid, signal.SIGKILL)
            killed.append(pgid)
            log.warning("killed leftover download process group %s (%s)", pgid, stem_name)
        pidf.unlink(missing_ok=True)
    return killed


async def wait_gone(pgids: Sequence[int], seconds: float = 5.0) -> None:
    """Wait (bounded) until the killed groups have really exited, so their files are closed."""
    for _ in range(max(1, int(seconds / 0.05))):
        if not any(_group_members(g) for g in pgids):
            return
        await asyncio.sleep(0.05)
