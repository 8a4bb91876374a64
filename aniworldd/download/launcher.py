"""Starting yt-dlp children, with one kept started ahead while the queue is busy.

Starting a yt-dlp child costs about 0.3-0.5 s before the first byte moves: the Python interpreter
starts and imports yt_dlp and its extractors. That is paid by every episode, and on a fast line it is
a large part of a short download. So every child is `ytdlp_child`: it imports and warms up yt_dlp,
prints `ready`, and then waits for its job (argv and working directory, one JSON line on stdin). The launcher
keeps one such child started ahead for `downloads.warm_start` seconds after the last queue activity;
a download takes it and the next one is started in the background. When the queue is quiet the spare
is retired, so an idle daemon keeps no yt-dlp process (and its ~40 MB) around.

The child is still one process per download, in its own process group: cancel, pause and the crash
isolation work exactly as with a cold start. A spare whose daemon dies sees end-of-file on stdin and
exits, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aniworldd.download import ytdlp_child

log = logging.getLogger(__name__)

#: The child's command line after the interpreter (see ytdlp_child: warm up, then wait for the job).
CHILD_MODULE = "aniworldd.download.ytdlp_child"
READY = (ytdlp_child.READY + "\n").encode()

#: Seconds after a download started before the next spare is started.
REPLACE_DELAY = 2.0
#: How long a starting child may take to import yt_dlp before it counts as broken.
_READY_TIMEOUT = 60.0


class LaunchError(Exception):
    """yt-dlp could not be started at all (broken install, no memory); `reason` is for the queue item."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Launcher:
    """Starts yt-dlp children (ytdlp_child); keeps at most one spare while the queue is busy."""

    def __init__(self, *, python: str = sys.executable, warm_seconds: float = 0.0) -> None:
        self.python = python
        self.warm_seconds = float(warm_seconds)
        self._spare: asyncio.Task[asyncio.subprocess.Process] | None = None
        self._retire_handle: asyncio.TimerHandle | None = None
        self._replace_handle: asyncio.TimerHandle | None = None
        self._closed = False
        self._chores: set[asyncio.Future] = set()

    # -- public ----------------------------------------------------------------------------------

    async def launch(
        self,
        argv: Sequence[str],
        cwd: Path,
        before_job: Callable[[int], None] | None = None,
        hls: dict[str, Any] | None = None,
    ) -> asyncio.subprocess.Process:
        """A running yt-dlp child working on `argv` in `cwd` (the spare if there is one).

        `before_job(pid)` runs once the child is chosen and before it may touch any file. `hls`: the
        job for the child's own HLS downloader (hls_fetch), with `argv` as its fallback.
        """
        proc = await self._take_spare()
        if proc is not None:
            try:
                return await self._hand_over(proc, argv, cwd, before_job, hls)
            except LaunchError as exc:  # the spare died while it waited (OOM killer, an admin's kill)
                log.warning("prestarted yt-dlp was gone (%s); starting a new one", exc.reason)
        return await self._hand_over(await self._start(), argv, cwd, before_job, hls)

    async def _hand_over(
        self,
        proc: asyncio.subprocess.Process,
        argv: Sequence[str],
        cwd: Path,
        before_job: Callable[[int], None] | None,
        hls: dict[str, Any] | None = None,
    ) -> asyncio.subprocess.Process:
        try:
            if before_job is not None:
                before_job(proc.pid)
        except BaseException:
            await asyncio.shield(_kill(proc))
            raise
        job = json.dumps({"argv": list(argv), "cwd": str(cwd), "hls": hls}) + "\n"
        assert proc.stdin is not None
        try:
            proc.stdin.write(job.encode("utf-8"))
            await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError) as exc:
            await _kill(proc)
            raise LaunchError(f"yt-dlp exited before it got its job: {exc}") from None
        except BaseException:
            await asyncio.shield(_kill(proc))
            raise
        self._replace_later()
        return proc

    def keep_warm(self) -> None:
        """Queue activity: have a spare ready, and keep it until `warm_seconds` of quiet."""
        if self.warm_seconds <= 0 or self._closed:
            return
        loop = asyncio.get_running_loop()
        if self._retire_handle is not None:
            self._retire_handle.cancel()
        self._retire_handle = loop.call_later(self.warm_seconds, self._retire_soon)
        if self._spare is None:
            self._spare = asyncio.create_task(self._start(), name="yt-dlp-spare")

    def _replace_later(self) -> None:
        """Start the next spare a moment after a download began, not in the same instant: its start-up
        takes a CPU core for a few tenths of a second, which a small NAS would otherwise take from the
        download that has just started."""
        if self.warm_seconds <= 0 or self._closed:
            return
        if self._replace_handle is not None:
            self._replace_handle.cancel()
        self._replace_handle = asyncio.get_running_loop().call_later(REPLACE_DELAY, self._replace)

    def _replace(self) -> None:
        self._replace_handle = None
        self.keep_warm()

    async def wait_warm(self) -> bool:
        """Wait until the spare (if any) has imported yt_dlp; True when one is ready."""
        spare = self._spare
        if spare is None:
            return False
        await asyncio.wait({spare})
        return not spare.cancelled() and spare.exception() is None and spare.result().returncode is None

    async def retire(self) -> None:
        """Stop the spare (queue stopped or quiet); the next download starts cold."""
        for handle in (self._retire_handle, self._replace_handle):
            if handle is not None:
                handle.cancel()
        self._retire_handle = self._replace_handle = None
        spare, self._spare = self._spare, None
        if spare is not None:
            await _discard(spare)

    async def close(self) -> None:
        self._closed = True
        await self.retire()

    # -- internals -------------------------------------------------------------------------------

    def _retire_soon(self) -> None:
        self._retire_handle = None
        self._chore(self.retire())

    def _chore(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _start(self) -> asyncio.subprocess.Process:
        """A new child that has warmed up and waits for its job (killed again if that fails)."""
        return await self._ready(await self._spawn())

    async def _take_spare(self) -> asyncio.subprocess.Process | None:
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        try:
            await asyncio.wait({spare})
        except asyncio.CancelledError:
            self._chore(_discard(spare))
            raise
        if spare.cancelled():
            return None
        exc = spare.exception()
        if exc is not None:
            log.warning("prestarted yt-dlp failed (%s); starting a new one", exc)
            return None
        proc = spare.result()
        return proc if proc.returncode is None else None

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        env["ANIWORLDD_DAEMON_PID"] = str(os.getpid())  # the child dies with us (ytdlp_child.die_with_parent)
        try:
            return await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                CHILD_MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # own process group: pause/kill reach ffmpeg too
            )
        except OSError as exc:
            raise LaunchError(f"cannot start yt-dlp: {exc.strerror or exc}") from None

    async def _ready(self, proc: asyncio.subprocess.Process) -> asyncio.subprocess.Process:
        """Wait for the child's `ready` line; a child that dies first is a LaunchError with its stderr.

        Anything else it prints first (a library's warning) is skipped.
        """
        assert proc.stdout is not None and proc.stderr is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _READY_TIMEOUT
        try:
            while True:
                line = await asyncio.wait_for(proc.stdout.readline(), max(0.0, deadline - loop.time()))
                if line == READY:
                    return proc
                if not line:
                    break
        except TimeoutError:
            await _kill(proc)
            raise LaunchError(f"yt-dlp did not start within {_READY_TIMEOUT:g} s") from None
        except BaseException:
            await _kill(proc)
            raise
        await _kill(proc)
        err = (await proc.stderr.read()).decode("utf-8", "replace").strip().splitlines()
        raise LaunchError(f"yt-dlp could not start: {err[-1] if err else 'exited at once'}")


async def _discard(spare: asyncio.Task[asyncio.subprocess.Process]) -> None:
    """Cancel a spare that is still starting, or kill the one that is ready."""
    spare.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await _kill(await spare)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 5)
