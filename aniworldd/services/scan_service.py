"""ScanService: the library on disk -> the database, one scan at a time.

The filesystem walk runs in a worker thread (core.scanner, pure, with a directory cache); the result is
diffed against the database on the DB thread (services.scan_sync) and only differences are written, so a
rescan of an unchanged library writes nothing. Scans are serialized by one worker task: requests that
arrive while a scan runs are merged into a single follow-up scan, and everyone waiting on one of them gets
that follow-up's summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aniworldd.core.scanner import (
    DirCache,
    LibraryScan,
    SeriesFolder,
    mark_duplicate,
    scan_library,
    scan_series_folder,
)
from aniworldd.db.store import Store
from aniworldd.events import SCAN_COMPLETE, SCAN_FAILED, SCAN_PROGRESS, EventBus, iso_timestamp
from aniworldd.services.errors import NotFound
from aniworldd.services.scan_sync import LibrarySync, SyncResult

log = logging.getLogger(__name__)

Folder = tuple[str, str]  # (root, folder name)


@dataclass
class _Request:
    full: bool = False
    folders: set[Folder] = field(default_factory=set)
    waiters: list[asyncio.Future] = field(default_factory=list)
    #: Someone asked for this scan (API, CLI, MQTT command); False for the daemon's own scans (start, watcher,
    #: after a download or a match). scan_complete carries it as `requested`, so a UI says "Scan finished"
    #: only for a scan a user started, never for the rescans that follow each download.
    requested: bool = False

    def merge(self, other: _Request) -> None:
        self.full = self.full or other.full
        self.folders |= other.folders
        self.waiters.extend(other.waiters)
        self.requested = self.requested or other.requested


@dataclass(slots=True)
class _FolderState:
    key: str | None
    episodes: int
    error: str | None


def _normalized(folders: Iterable[Folder]) -> set[Folder]:
    return {(os.path.normpath(r), f) for r, f in folders}


class ScanService:
    def __init__(self, config: dict, store: Store, bus: EventBus) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        lib = config["library"]
        downloads = config.get("downloads", {})
        self.roots: list[str] = [os.path.normpath(r) for r in lib["roots"]]
        temp = downloads.get("temp_dir")
        self.ignore: list[str] = [os.path.normpath(temp)] if temp else []
        self.cache = DirCache()
        self.sync = LibrarySync(
            store,
            self.roots,
            self.ignore,
            list(downloads.get("language") or []),
            bool(lib.get("missing_by_language")),
        )
        self._folders: dict[Folder, _FolderState] = {}
        self._pending: _Request | None = None
        self._worker: asyncio.Task | None = None
        self._running = False
        self._percent = 0.0
        self._last_scan: datetime | None = None
        self._last_full_scan: datetime | None = None
        self._partial = False  # the running (or last) scan covered only some folders
        self._missing = 0
        self._closed = False
        self._watcher: Any = None

    # ---- public API -------------------------------------------------------------------------------

    async def scan_all(self) -> dict:
        """Full scan of every root; waits for it (joins the queued follow-up when a scan is running)."""
        return await self._submit(_Request(full=True, requested=True))

    async def scan_series(self, key: str) -> dict:
        """Rescan one series' folder; NotFound for an unknown key. When its folder is unknown or gone a full
        scan runs instead, since only that can find where the folder went."""
        loc = await self.store.run(self._series_location, key)
        if loc is None:
            raise NotFound(f"unknown series {key!r}", {"key": key})
        return await self._submit(
            _Request(folders={loc}, requested=True) if loc else _Request(full=True, requested=True)
        )

    async def scan_folders(self, folders: Iterable[Folder]) -> dict:
        """Rescan the given (root, folder) pairs only (used after matching a folder)."""
        return await self._submit(_Request(folders=_normalized(folders)))

    def request_scan(self, keys: list[str] | None = None, requested: bool = True) -> None:
        """Ask for a scan and return at once; requests made during a scan coalesce into one follow-up.
        `requested=False` for the daemon's own scans (scan_on_start): no "Scan finished" notice for those."""
        if not keys:
            self._enqueue(_Request(full=True, requested=requested))
            return
        task = asyncio.get_running_loop().create_task(
            self._request_keys(list(keys), requested), name="scan-request"
        )
        task.add_done_callback(_log_failure)

    def request_folders(self, folders: Iterable[Folder]) -> None:
        """Watcher entry point: rescan these series folders soon."""
        req = _Request(folders=_normalized(folders))
        if req.folders:
            self._enqueue(req)

    def state(self) -> dict:
        matched = [s for s in self._folders.values() if s.key is not None and s.error is None]
        return {
            "running": self._running,
            "percent": round(self._percent, 1),
            "last_scan": iso_timestamp(self._last_scan) if self._last_scan else None,
            "series": len(matched),
            "episodes": sum(s.episodes for s in matched),
            "missing_episodes": self._missing,
            "unmatched": len(self._folders) - len(matched),
            "partial": self._partial,
            "last_full_scan": iso_timestamp(self._last_full_scan) if self._last_full_scan else None,
        }

    def unmatched_folders(self) -> list[dict]:
        """Folders of the last scan without a usable marker, with the reason."""
        return [
            {"root": root, "folder": folder, "reason": st.error or "no marker"}
            for (root, folder), st in sorted(self._folders.items())
            if st.key is None or st.error is not None
        ]

    async def start(self) -> None:
        """Watch the roots (library.watch) so changes trigger rescans of just the affected folders."""
        if self.config["library"].get("watch") and self._watcher is None and not self._closed:
            from aniworldd.services.watcher import LibraryWatcher

            self._watcher = LibraryWatcher(
                self.roots,
                on_change=self.request_folders,
                debounce=float(self.config["library"].get("watch_debounce", 0.3)),
                ignore=self.ignore,
            )
            await self._watcher.start()

    async def stop_watching(self) -> None:
        """Stop the watcher but keep serving scan requests (a cluster's elected watcher was deposed)."""
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None

    async def close(self) -> None:
        self._closed = True
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
        pending, self._pending = self._pending, None
        for w in pending.waiters if pending else []:
            if not w.done():
                w.cancel()

    # ---- request queue ----------------------------------------------------------------------------

    async def _request_keys(self, keys: list[str], requested: bool = True) -> None:
        locations = await self.store.run(lambda: [self._series_location(k) for k in keys])
        folders = {loc for loc in locations if loc}
        full = any(loc == () for loc in locations)
        if full or folders:
            self._enqueue(_Request(full=full, folders=folders, requested=requested))

    def _enqueue(self, req: _Request) -> None:
        if self._closed:
            for w in req.waiters:
                w.cancel()
            return
        if self._pending is None:
            self._pending = req
        else:
            self._pending.merge(req)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="scan-worker")

    async def _submit(self, req: _Request) -> dict:
        if self._closed:
            raise RuntimeError("scan service is closed")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        req.waiters.append(fut)
        self._enqueue(req)
        return await asyncio.shield(fut)

    async def _work(self) -> None:
        while self._pending is not None and not self._closed:
            req, self._pending = self._pending, None
            try:
                summary = await self._execute(req)
            except asyncio.CancelledError:
                for w in req.waiters:
                    w.cancel()
                raise
            except Exception as exc:
                log.exception("library scan failed")
                self.bus.publish(SCAN_FAILED, {"error": str(exc) or type(exc).__name__})
                for w in req.waiters:
                    if not w.done():
                        w.set_exception(exc)
            else:
                for w in req.waiters:
                    if not w.done():
                        w.set_result(summary)

    # ---- one scan ---------------------------------------------------------------------------------

    async def _execute(self, req: _Request) -> dict:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        self._running = True
        self._percent = 0.0
        scope: set[Folder] | None = None if req.full else set(req.folders)
        self._partial = scope is not None
        try:
            report = self._progress_reporter(loop, partial=scope is not None)
            if scope is None:
                scan = await asyncio.to_thread(scan_library, self.roots, self.cache, self.ignore, report)
            else:
                scan = await asyncio.to_thread(self._walk_folders, sorted(scope), report)
            known = {loc: st.key for loc, st in self._folders.items()}
            result: SyncResult = await self.store.run(self.sync.sync, scan, scope, known)
        finally:
            self._running = False
        self._percent = 100.0
        self._last_scan = datetime.now(UTC)
        if scope is None:
            self._last_full_scan = self._last_scan
        self._remember(scan, scope, result)
        self._missing = result.missing
        for event, payload in result.events:
            self.bus.publish(event, payload)
        state = self.state()
        summary: dict[str, Any] = {
            "series": state["series"],
            "episodes": state["episodes"],
            "missing_episodes": result.missing,
            "unmatched": [u["folder"] for u in self.unmatched_folders()],
            "duration_s": round(time.monotonic() - started, 3),
            "scope": "full" if scope is None else "partial",
            "requested": req.requested,
            "changes": result.changes,
        }
        if scope is not None:
            summary["keys"] = sorted({f.key for f in scan.folders if f.key} | set(result.vanished))
        self.bus.publish(SCAN_COMPLETE, summary)
        log.log(
            logging.INFO if scope is None or result.changes else logging.DEBUG,
            "scan (%s) in %.3fs: %d series, %d episodes, %d missing, %d unmatched, %d rows written",
            summary["scope"], summary["duration_s"], summary["series"], summary["episodes"],
            summary["missing_episodes"], len(summary["unmatched"]), result.changes,
        )  # fmt: skip
        return summary

    def _progress_reporter(
        self, loop: asyncio.AbstractEventLoop, partial: bool = False
    ) -> Callable[[int, int, SeriesFolder], None]:
        """scan_progress events from the walker thread; at most one per percent on big libraries.

        `partial` marks a rescan of a few folders (a finished download, the watcher): the UI and Home
        Assistant show no "scan running" for those, only the library change (scan_complete scope=partial)."""
        last = [-1]

        def report(current: int, total: int, found: SeriesFolder) -> None:
            percent = 100.0 * current / total if total else 100.0
            self._percent = percent
            if total > 100 and int(percent) == last[0] and current != total:
                return
            last[0] = int(percent)
            payload = {
                "key": found.key,
                "folder": found.folder,
                "current": current,
                "total": total,
                "percent": round(percent, 1),
                "partial": partial,
            }
            loop.call_soon_threadsafe(self.bus.publish, SCAN_PROGRESS, payload)

        return report

    def _walk_folders(
        self, folders: list[Folder], report: Callable[[int, int, SeriesFolder], None]
    ) -> LibraryScan:
        found: list[SeriesFolder] = []
        seen: dict[str, SeriesFolder] = {}
        ignored = set(self.ignore)
        for i, (root, folder) in enumerate(folders, 1):
            path = os.path.join(root, folder)
            self.cache.forget(path)  # something changed in there: never trust the old listing
            if folder.startswith((".", "@")) or path in ignored or "/" in folder:
                continue
            result = scan_series_folder(root, folder, self.cache)
            if result is None:
                continue
            mark_duplicate(result, seen)
            found.append(result)
            report(i, len(folders), result)
        return LibraryScan(found, [r for r in self.roots if not os.path.isdir(r)])

    def _remember(self, scan: LibraryScan, scope: set[Folder] | None, result: SyncResult) -> None:
        if scope is None:
            self._folders = {}
        else:
            for loc in scope:
                self._folders.pop(loc, None)
        for f in scan.folders:
            loc = (os.path.normpath(f.root), f.folder)
            self._folders[loc] = _FolderState(
                f.key, result.episodes.get(loc, 0), f.error or result.errors.get(loc)
            )

    # ---- runs on the DB thread --------------------------------------------------------------------

    def _series_location(self, key: str) -> Folder | tuple[()] | None:
        """(root, folder) of a live series whose folder exists; () when its folder is unknown or gone
        (only a full scan can find it); None for an unknown key."""
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None or s.deleted_at is not None:
            return None
        if s.root and s.folder and os.path.isdir(os.path.join(s.root, s.folder)):
            return os.path.normpath(s.root), s.folder
        return ()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("scan request failed", exc_info=task.exception())
