"""Watch the library roots and turn file events into "rescan these series folders".

watchfiles (inotify underneath) groups bursts of events; we map every changed path to the series folder it
is in (the first component below a root) and hand that set to the scan service, which coalesces it with
anything else pending. Partial downloads (`.part`, `.ytdl`, `.tmp`), the download temp dir and hidden files
never trigger a scan, so a running download does not make the library rescan every few milliseconds.
The marker file is hidden but does count: writing it is how a folder gets matched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable

from watchfiles import Change, awatch

from aniworldd.core.markers import MARKER_NAME
from aniworldd.core.naming import is_partial_name

log = logging.getLogger(__name__)

Folder = tuple[str, str]


def _existing_dirs(paths: list[str]) -> list[str]:
    return [p for p in paths if os.path.isdir(p)]


#: watchfiles gives up on a whole batch of events when one path is not UTF-8 (`Show \xFF.mkv`).
_UNDECODABLE_RE = re.compile(r'Unable to decode path "(.*)" to string')
_HEX_ESCAPE_RE = re.compile(rb"\\x([0-9A-Fa-f]{2})")
#: Pause before watching again after a failure: short at first, longer when it keeps failing.
RESTART_DELAYS = (0.2, 1.0, 5.0, 10.0)


def _errors(exc: BaseException) -> list[BaseException]:
    """The leaf exceptions of an (ExceptionGroup) error."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _errors(sub)]
    return [exc]


def undecodable_paths(exc: BaseException) -> list[str]:
    """The paths (as os.fsdecode gives them) that watchfiles could not decode, from its error message."""
    paths = []
    for err in _errors(exc):
        m = _UNDECODABLE_RE.search(str(err))
        if m:
            raw = _HEX_ESCAPE_RE.sub(lambda h: bytes([int(h.group(1), 16)]), m.group(1).encode("utf-8"))
            paths.append(os.fsdecode(raw))
    return paths


class PathMapper:
    """Decides which events matter and which series folder they belong to (pure, unit-testable)."""

    def __init__(self, roots: Iterable[str], ignore: Iterable[str] = ()) -> None:
        self.roots = sorted((os.path.normpath(r) for r in roots), key=len, reverse=True)
        self.ignore = [os.path.normpath(p) for p in ignore]

    def folder_of(self, path: str) -> Folder | None:
        path = os.path.normpath(path)
        for ignored in self.ignore:
            if path == ignored or path.startswith(ignored + "/"):
                return None
        for root in self.roots:
            if not path.startswith(root + "/"):
                continue
            parts = path[len(root) + 1 :].split("/")
            folder = parts[0]
            if not folder or folder.startswith((".", "@")):
                return None
            name = parts[-1]
            if len(parts) > 1:
                if is_partial_name(name):
                    return None
                if any(p.startswith(".") for p in parts[1:-1]):
                    return None  # inside a hidden directory of the series folder
                if name.startswith(".") and not (len(parts) == 2 and name == MARKER_NAME):
                    return None
                if name.startswith(".aniworld.") and name.endswith(".tmp"):
                    return None
            elif is_partial_name(name):
                return None
            return root, folder
        return None

    def folders(self, changes: Iterable[tuple[Change, str]]) -> set[Folder]:
        out: set[Folder] = set()
        for _change, path in changes:
            loc = self.folder_of(path)
            if loc is not None:
                out.add(loc)
        return out

    def accept(self, _change: Change, path: str) -> bool:
        return self.folder_of(path) is not None


class LibraryWatcher:
    """Runs awatch over every existing root until closed; a crash of the watch loop is logged and the loop
    restarts after a pause, because a NAS share can disappear and come back."""

    def __init__(
        self,
        roots: Iterable[str],
        on_change: Callable[[set[Folder]], None],
        debounce: float = 0.3,
        ignore: Iterable[str] = (),
    ) -> None:
        self.mapper = PathMapper(roots, ignore)
        self.roots = [os.path.normpath(r) for r in roots]
        self.on_change = on_change
        self.debounce_ms = max(10, int(debounce * 1000))
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start watching. awatch installs its inotify watches synchronously on its first step, so after
        yielding to the task a few times the roots are watched when this returns."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="library-watcher")
        for _ in range(3):
            await asyncio.sleep(0)

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            # Synchronous on purpose: awatch sets up its inotify watches on the loop too, and start()
            # relies on both happening in the task's first step.
            roots = _existing_dirs(self.roots)
            if not roots:
                log.warning("no library root exists; watching again in 30 s")
                await self._sleep(30)
                continue
            started = time.monotonic()
            try:
                async for changes in awatch(
                    *roots,
                    watch_filter=self.mapper.accept,
                    debounce=self.debounce_ms,
                    step=min(50, self.debounce_ms),
                    stop_event=self._stop,
                    recursive=True,
                    ignore_permission_denied=True,
                ):
                    folders = self.mapper.folders(changes)
                    if folders:
                        log.debug("library changed in %s", sorted(f for _, f in folders))
                        self.on_change(folders)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The batch with the bad event is lost: rescan the folders it names, watch again soon.
                # One line, no traceback: a name that keeps changing must not flood the log.
                failures = 1 if time.monotonic() - started > 60 else failures + 1
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1]
                folders = {f for p in undecodable_paths(exc) if (f := self.mapper.folder_of(p)) is not None}
                if folders:
                    log.warning(
                        "library watcher: a name that is not UTF-8 in %s; rescanning, watching again in %g s",
                        ", ".join(sorted(repr(f) for _, f in folders)),
                        delay,
                    )
                    self.on_change(folders)
                    # ... and once more after watching again: what changed there in the gap is seen too.
                    asyncio.get_running_loop().call_later(delay + 0.5, self.on_change, folders)
                else:
                    log.error("library watcher failed (%s); watching again in %g s", exc, delay)
                await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def close(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
