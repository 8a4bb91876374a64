"""The download queue: persistent items, a few workers, yt-dlp children, files that appear only when whole.

Every item lives in the DownloadQueueItem table, so a restart (or a `kill -9`) loses nothing: items that
were downloading go back to pending and resume from their partial file in the temp dir. Workers take
items by priority (high, normal, low), then first in, first out, at most `downloads.max_concurrent` at once.

One attempt of an item walks the episode's offers in preference order (SourceFinder: language, then
hoster); a hoster that fails leads to the next one. When none works, the attempt failed: the item goes
back to pending with exponential backoff until `downloads.max_retries` failed attempts, then `failed`,
always with the reason of the last failure. A full disk fails the item at once (retrying would only fill
the disk again) and its partial file is removed.

Finished files are moved into the library with an atomic rename; the destination is written to the item
before the rename so a crash in between is finished on the next start instead of downloading again.

Control semantics (documented choices):
- start: take items; also resumes a paused queue.   stop: nothing new starts; active downloads are
  killed and go back to pending with their partial data kept.
- pause: active yt-dlp process groups get SIGSTOP (partial data stays, the worker slot stays taken) and
  nothing new starts; resume sends SIGCONT. Started/stopped and paused are persisted
  (data_dir/queue_control.json, services.queue_control): a restart keeps them, and `downloads.autostart`
  only decides the very first start, before anyone used a control.
- remove: cancels the item if active, deletes its temp files, hides the row (status cancelled).
- attempts counts failed attempts; stop, pause, crashes and restarts do not count.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pony.orm import count, desc, flush, select

from aniworldd.config import LANGUAGE_CODES, LIVE_KEYS
from aniworldd.core.labels import episode_label
from aniworldd.core.markers import read_marker, write_marker
from aniworldd.core.naming import build_episode_path
from aniworldd.core.roots import ROOT_WAIT, missing_root_reason, root_of
from aniworldd.core.validators import safe_join, sanitize_filename, validate_series_key
from aniworldd.db import Store
from aniworldd.db.models import (
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETED,
    DOWNLOADING,
    FAILED,
    PENDING,
    PRIORITY_RANK,
    utcnow,
)
from aniworldd.db.services import queue_item_to_dict
from aniworldd.download import files
from aniworldd.download.progress import Progress
from aniworldd.download.ytdlp import (
    CANCELLED as DL_CANCELLED,
)
from aniworldd.download.ytdlp import (
    DISK_FULL,
    NO_SPACE_REASON,
    DownloadError,
    DownloadResult,
    YtDlpRunner,
    kill_stale_processes,
    wait_gone,
)
from aniworldd.events import DOWNLOAD_COMPLETE, DOWNLOAD_FAILED, DOWNLOAD_PROGRESS, QUEUE_STATUS, EventBus
from aniworldd.limits import out_of_descriptors
from aniworldd.providers.base import ChallengeError
from aniworldd.providers.sources import COOLDOWN, HOSTER_FAILURE, PROVIDER_FAILURE
from aniworldd.services.errors import BadRequest, Conflict, NotFound, ServiceError
from aniworldd.services.hoster_health import HosterHealth
from aniworldd.services.provider_health import ProviderHealth
from aniworldd.services.queue_control import ControlState, ControlStore

log = logging.getLogger(__name__)

#: The downloads settings apply_settings takes over while running (config.LIVE_KEYS).
LIVE_DOWNLOAD_KEYS = sorted(key.split(".", 1)[1] for key in LIVE_KEYS if key.startswith("downloads."))

#: download_progress events per item are at least this far apart (at most 2/s).
PROGRESS_EVENT_INTERVAL = 0.5
#: Progress is written to the database at most this often per item (status after a restart).
PROGRESS_DB_INTERVAL = 1.0
#: Longest automatic retry delay, whatever retry_backoff and the attempt count say.
MAX_BACKOFF = 24 * 3600.0
_MIB = 1024 * 1024
#: Lists of status() in its answer, keyed by the state they hold (the seed's field names).
STATUS_LISTS = {
    DOWNLOADING: "active_downloads",
    PENDING: "pending_queue",
    COMPLETED: "completed_downloads",
    FAILED: "failed_downloads",
}
#: Items per list status() carries unless asked for a page: what queue_status (WebSocket, MQTT) and the
#: default GET /api/queue/status hold. 5,000 pending items in full were a 1.95 MB message, over the WebSocket
#: client buffer (every client dropped as too slow) and 1.5 s to build; `<list>_total` says how many exist.
STATUS_LIMITS = {DOWNLOADING: 50, PENDING: 50, COMPLETED: 20, FAILED: 20}
#: Largest page of one list (GET /api/queue/status?limit=).
MAX_PAGE = 200


#: How long an item waits after the process ran out of file descriptors (not the item's fault).
FD_EXHAUSTED_WAIT = 5.0


def _fd_exhausted(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) is EMFILE/ENFILE, or the process is out of file descriptors as
    it fails. That is a state of the whole process, not a failed attempt: counting it burned every retry
    in milliseconds."""
    if exc is not None and out_of_descriptors():
        return True
    for _ in range(8):
        if exc is None:
            return False
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            return True
        if "Too many open files" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _ItemFailed(Exception):
    """`count=False`: not the item's fault (every hoster cooling down): retry after `delay` s, no attempt."""

    def __init__(
        self, reason: str, retry: bool = True, count: bool = True, delay: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.count = count
        self.delay = delay


@dataclass
class _Active:
    """An item a worker is on right now; the live numbers overlay the database row in status()."""

    item_id: int
    key: str = ""
    folder: str | None = None
    season: int = 0
    episode: int = 0
    language: str | None = None
    hoster: str | None = None
    task: asyncio.Task | None = None
    proc: Any = None  # download.ytdlp.DownloadProcess while yt-dlp runs
    finalizing: bool = False
    percent: float = 0.0
    downloaded_bytes: int = 0
    total_bytes: int | None = None
    speed: float | None = None
    eta: float | None = None
    last_event: float = 0.0
    last_db: float = 0.0
    extra: dict = field(default_factory=dict)


def _episode_pairs(episodes: Any) -> list[tuple[int, int]]:
    """[(season, episode)] from tuples or {season, episode} dicts; BadRequest for anything else."""
    if not isinstance(episodes, list | tuple) or not episodes:
        raise BadRequest("episodes must be a non-empty list of {season, episode}")
    pairs: list[tuple[int, int]] = []
    for i, ep in enumerate(episodes):
        if isinstance(ep, dict):
            season, number = ep.get("season"), ep.get("episode")
        elif isinstance(ep, list | tuple) and len(ep) == 2:
            season, number = ep
        else:
            raise BadRequest(f"episodes[{i}]: expected {{season, episode}}", {"index": i})
        if isinstance(season, bool) or isinstance(number, bool):
            raise BadRequest(f"episodes[{i}]: season and episode must be integers", {"index": i})
        if not isinstance(season, int) or not isinstance(number, int) or season < 0 or number < 1:
            raise BadRequest(
                f"episodes[{i}]: season must be an integer >= 0 and episode an integer >= 1", {"index": i}
            )
        if (season, number) not in pairs:
            pairs.append((season, number))
    return pairs


def _label(season: int, episode: int) -> str:
    return episode_label(season, episode)


def default_folder(name: str, year: int | None) -> str:
    """Folder for a series that has none on disk yet: `Name (Year)` like the seed's libraries."""
    text = f"{name} ({year})" if year else name
    return sanitize_filename(text)


class DownloadService:
    """Persistent download queue with workers running yt-dlp (see module docstring for the semantics).

    One instance per data dir, in the daemon: on first use it treats every `downloading` row and every
    download process recorded in the temp dir as left over from a crash.
    """

    def __init__(
        self,
        config: dict,
        store: Store,
        bus: EventBus,
        finder: Any = None,
        runner: YtDlpRunner | None = None,
        hoster_health: HosterHealth | None = None,
        provider_health: ProviderHealth | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        #: providers.sources.SourceFinder (or anything with the same `candidates()`); settable later.
        self.finder = finder
        dl = config["downloads"]
        self.runner = runner or YtDlpRunner.from_config(dl, proxy=config.get("provider", {}).get("proxy"))
        #: Per-hoster outcomes, cool-downs and the adaptive order (services.hoster_health); read by the
        #: API, /metrics and the MQTT bridge through `snapshot()`.
        self.hoster_health = hoster_health or HosterHealth.from_config(config, bus.publish)
        #: Walls on the provider sites (captcha, browser checks): items wait, `health` events tell it.
        self.provider_health = provider_health or ProviderHealth(
            bus.publish, first_wait=config.get("provider", {}).get("challenge_retry", 900.0)
        )
        self.temp_dir = Path(dl["temp_dir"])
        self._take_settings(dl)
        self.roots = [str(r) for r in config["library"]["roots"]]
        #: Seconds between looks at a missing library root (tests shorten it).
        self.root_wait = ROOT_WAIT
        self._running = False
        self._paused = False
        self._active: dict[int, _Active] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None
        self._recovered = False
        self._recover_lock = asyncio.Lock()
        self._control = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        self._status_pending = False
        #: Changes so far (see _first_page); the default status query running or last run, and its generation.
        self._status_gen = 0
        self._status_query: tuple[int, asyncio.Future] | None = None
        self._control_store = ControlStore(config.get("data_dir"))

    # -- public API ------------------------------------------------------------------------------

    async def add(
        self,
        key: str,
        episodes: Any,
        priority: str = "normal",
        language: str | None = None,
        replaces: str | None = None,
    ) -> list[dict]:
        """Queue episodes of a series; all or nothing (409 on a duplicate, 404 on unknown key/episode).

        `language` pins the language (else the `downloads.language` preference decides at download
        time). An episode already in the library is only queued as a language upgrade: a different
        `language`, and the old file (`replaces`, default its current path) is removed once the new
        one is in place.
        """
        await self._ensure_recovered()
        try:
            key = validate_series_key(key)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        pairs = _episode_pairs(episodes)
        if priority not in PRIORITY_RANK:
            raise BadRequest(f"priority must be one of {', '.join(PRIORITY_RANK)}")
        if language is not None and language not in LANGUAGE_CODES:
            raise BadRequest(f"language must be one of {', '.join(LANGUAGE_CODES)}")
        if replaces and len(pairs) > 1:
            raise BadRequest("replaces names one file, so it needs exactly one episode")
        replaces_path = self._check_replaces(replaces) if replaces else None

        def q() -> list[dict]:
            e = self.store.e
            series = e.AnimeSeries.get(key=key)
            if series is None or series.deleted_at is not None:
                raise NotFound(f"unknown series {key!r}", {"key": key})
            plan = []
            for season, number in pairs:
                ep = e.Episode.get(series=series, season=season, number=number)
                if ep is None:
                    raise NotFound(
                        f"{key} has no episode {_label(season, number)}",
                        {"key": key, "season": season, "episode": number},
                    )
                offered = list(ep.languages or [])
                if language and offered and language not in offered:
                    raise BadRequest(
                        f"{key} {_label(season, number)} is not offered in {language} "
                        f"(offered: {', '.join(offered)})",
                        {"key": key, "season": season, "episode": number, "offered": offered},
                    )
                dup = self._open_item(series, season, number)
                if dup is not None and (language is None or dup.language is None or dup.language == language):
                    raise Conflict(
                        f"{key} {_label(season, number)} is already in the queue ({dup.status})",
                        {"key": key, "season": season, "episode": number, "item_id": dup.id},
                    )
                old = replaces_path
                on_disk = ep.on_disk_path if ep.on_disk_path and Path(ep.on_disk_path).is_file() else None
                if on_disk and old is None:
                    if language is None or language == ep.on_disk_language:
                        raise Conflict(
                            f"{key} {_label(season, number)} is already in the library ({on_disk})",
                            {"key": key, "season": season, "episode": number, "path": on_disk},
                        )
                    old = on_disk
                plan.append((season, number, old))
            items = [
                e.DownloadQueueItem(
                    series=series,
                    season=season,
                    episode=number,
                    language=language,
                    priority=priority,
                    priority_rank=PRIORITY_RANK[priority],
                    status=PENDING,
                    replaces_path=old,
                )
                for season, number, old in plan
            ]
            flush()  # so the new rows have ids
            return [queue_item_to_dict(i) for i in items]

        created = await self.store.run(q)
        log.info("queued %d item(s) of %s", len(created), key)
        self._keep_warm()
        self._wake.set()
        self._notify()
        return created

    def apply_settings(self, downloads: dict) -> list[str]:
        """Take new `downloads` settings while running (a config save); returns the changed keys.

        New limits apply to what starts next: a lower max_concurrent lets active downloads finish, a
        new speed_limit or quality applies from the next download on. temp_dir and autostart are read
        at start only. The running config is updated too (a config save compares with it).
        """
        running = self.config["downloads"]
        changed = [key for key in LIVE_DOWNLOAD_KEYS if downloads[key] != running[key]]
        if not changed:
            return []
        running.update({key: downloads[key] for key in changed})
        self._take_settings(running)
        self.runner.speed_limit, self.runner.quality = running["speed_limit"], running["quality"]
        self.runner.launcher.warm_seconds = float(running["warm_start"])
        self.runner.fragments = int(running["fragments"])
        self.runner.hls_downloader = running["hls_downloader"]
        if hasattr(self.finder, "hosters_pref"):
            self.finder.hosters_pref = list(running["hosters"])
            self.finder.languages_pref = list(self.languages)
        log.info("download settings changed: %s", ", ".join(changed))
        self._wake.set()  # a higher max_concurrent starts more at once
        self._notify()
        return changed

    def _take_settings(self, dl: dict) -> None:
        """The `downloads` settings the queue itself follows, at start and after a config save."""
        self.max_concurrent = int(dl["max_concurrent"])
        self.max_retries = int(dl["max_retries"])
        self.retry_backoff = float(dl["retry_backoff"])
        self.min_free_bytes = int(float(dl["min_free_gb"]) * 1024**3)
        self.languages = list(dl["language"])
        self.hoster_health.configure(
            dl["hoster_failures_before_cooldown"], dl["hoster_cooldown"], dl["hosters"]
        )

    def _has_pending(self) -> bool:
        e = self.store.e
        return e.DownloadQueueItem.select(lambda i: i.status == PENDING and i.deleted_at is None).exists()

    def _open_item(self, series: Any, season: int, number: int) -> Any:
        """The pending or downloading item of an episode, if any (DB thread)."""
        return self.store.e.DownloadQueueItem.select(
            lambda i: (
                i.series == series
                and i.season == season
                and i.episode == number
                and i.status in ACTIVE_STATUSES
                and i.deleted_at is None
            )
        ).first()

    async def start(self, *, resume: bool = True) -> None:
        """Begin taking items (and resume a paused queue unless `resume=False`: a restored paused queue)."""
        await self._ensure_recovered()
        async with self._control:
            self._running = True
            if self._paused and resume:
                self._set_paused(False)
            await self._save_control()
            if self._dispatcher is None or self._dispatcher.done():
                self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="download-dispatcher")
        if await self.store.run(self._has_pending):
            self._keep_warm()
        self._wake.set()
        self._notify()

    async def stop(self) -> None:
        """Start nothing new; active downloads are killed and go back to pending (partial data kept)."""
        await self._ensure_recovered()
        async with self._control:
            self._running = False
            self._paused = False
            await self._save_control()
            ids = list(self._active)
            await self._cancel_items(ids)
            if ids:
                await self.store.run(self._requeue, ids)
        await self.runner.launcher.retire()
        self._notify()

    async def pause(self) -> None:
        """Suspend active downloads (SIGSTOP; partial data kept) and start nothing new."""
        await self._ensure_recovered()
        async with self._control:
            self._set_paused(True)
            await self._save_control()
        self._notify()

    async def resume(self) -> None:
        await self._ensure_recovered()
        async with self._control:
            self._set_paused(False)
            await self._save_control()
        self._wake.set()
        self._notify()

    async def restore_control(self, autostart: bool) -> None:
        """At daemon start: the saved started/paused state, or `autostart` when nothing was saved yet."""
        saved = await asyncio.to_thread(self._control_store.load)
        if saved is None:
            if autostart:
                await self.start()
            return
        if saved.paused:  # paused before anything can start: nothing is downloading yet
            async with self._control:
                self._paused = True
        if saved.running:
            await self.start(resume=False)
        self._notify()

    async def _save_control(self) -> None:
        await asyncio.to_thread(self._control_store.save, ControlState(self._running, self._paused))

    async def retry(self, item_ids: list[int] | None = None) -> list[dict]:
        """Failed items (all, or the given ids) back to pending now; attempts are kept.

        A pending item waiting for its backoff is made due at once.
        """
        await self._ensure_recovered()
        if item_ids is not None:
            if not isinstance(item_ids, list | tuple) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in item_ids
            ):
                raise BadRequest("item_ids must be a list of integers")

        def q() -> list[dict]:
            e = self.store.e
            if item_ids is None:
                rows = list(e.DownloadQueueItem.select(lambda i: i.status == FAILED and i.deleted_at is None))
                rows += list(
                    e.DownloadQueueItem.select(
                        lambda i: (
                            i.status == PENDING and i.deleted_at is None and i.next_attempt_at is not None
                        )
                    )
                )
            else:
                rows = []
                for item_id in item_ids:
                    row = e.DownloadQueueItem.get(id=item_id)
                    if row is None or row.deleted_at is not None:
                        raise NotFound(f"no queue item {item_id}", {"item_id": item_id})
                    rows.append(row)
            out = []
            for row in rows:
                if row.status == FAILED or (row.status == PENDING and row.next_attempt_at is not None):
                    row.status = PENDING
                    row.next_attempt_at = None
                    out.append(queue_item_to_dict(row))
            return out

        retried = await self.store.run(q)
        self._wake.set()
        self._notify()
        return retried

    async def remove(self, item_id: int) -> dict:
        """Cancel (if active) and forget one item; its temp files are deleted. 404 when unknown."""
        await self._ensure_recovered()
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            raise BadRequest("item id must be an integer")

        def exists() -> bool:
            row = self.store.e.DownloadQueueItem.get(id=item_id)
            return row is not None and row.deleted_at is None

        if not await self.store.run(exists):
            raise NotFound(f"no queue item {item_id}", {"item_id": item_id})
        async with self._control:
            await self._cancel_items([item_id])

            def q() -> dict:
                row = self.store.e.DownloadQueueItem[item_id]
                if row.status in ACTIVE_STATUSES:
                    row.status = CANCELLED
                row.deleted_at = utcnow()
                row.speed = row.eta = None
                return queue_item_to_dict(row)

            removed = await self.store.run(q)
            await self._cancel_items([item_id])  # the dispatcher may have taken it meanwhile
            await asyncio.to_thread(files.remove_files, files.item_files(self.temp_dir, item_id))
        self._wake.set()
        self._notify()
        return removed

    async def set_priority(self, item_id: int, priority: str) -> dict:
        """Move a pending item up or down the queue; 404 unknown, 409 once it is no longer pending.

        The check and the change happen in one DB-thread call, so the dispatcher (which takes items
        on the same thread) cannot start the item in between.
        """
        await self._ensure_recovered()
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            raise BadRequest("item id must be an integer")
        if priority not in PRIORITY_RANK:
            raise BadRequest(f"priority must be one of {', '.join(PRIORITY_RANK)}")

        def q() -> dict:
            row = self.store.e.DownloadQueueItem.get(id=item_id)
            if row is None or row.deleted_at is not None:
                raise NotFound(f"no queue item {item_id}", {"item_id": item_id})
            if row.status != PENDING:
                raise Conflict(
                    f"queue item {item_id} is {row.status}; only pending items can change priority",
                    {"item_id": item_id, "status": row.status},
                )
            row.priority = priority
            row.priority_rank = PRIORITY_RANK[priority]
            return queue_item_to_dict(row)

        updated = await self.store.run(q)
        self._wake.set()
        self._notify()
        return updated

    async def clear_completed(self) -> int:
        """Hide every completed item from the lists; returns how many."""
        await self._ensure_recovered()

        def q() -> int:
            rows = self.store.e.DownloadQueueItem.select(
                lambda i: i.status == COMPLETED and i.deleted_at is None
            )
            now = utcnow()
            n = 0
            for row in rows:
                row.deleted_at = now
                n += 1
            return n

        n = await self.store.run(q)
        self._notify()
        return n

    async def items(self, status: str | None = None) -> list[dict]:
        """Queue items (not removed), pending in queue order; `status` filters."""
        await self._ensure_recovered()

        def q() -> list[dict]:
            e = self.store.e
            rows = e.DownloadQueueItem.select(lambda i: i.deleted_at is None)
            if status is not None:
                rows = rows.filter(lambda i: i.status == status)
            rows = rows.order_by(lambda i: (i.priority_rank, i.id))
            return [queue_item_to_dict(r) for r in rows]

        if status is not None and status not in (PENDING, DOWNLOADING, COMPLETED, FAILED, CANCELLED):
            raise BadRequest(f"unknown status {status!r}")
        return [self._overlay(d) for d in await self.store.run(q)]

    async def get(self, item_id: int) -> dict:
        def q() -> dict | None:
            row = self.store.e.DownloadQueueItem.get(id=item_id)
            return queue_item_to_dict(row) if row is not None and row.deleted_at is None else None

        found = await self.store.run(q)
        if found is None:
            raise NotFound(f"no queue item {item_id}", {"item_id": item_id})
        return self._overlay(found)

    async def status(self, limit: int | None = None, offset: int = 0) -> dict:
        """The seed's QueueStatus plus statistics (counts and total speed in MB/s), bounded.

        Each list holds one page: `limit` items (STATUS_LIMITS per list when None, at most MAX_PAGE) from
        `offset` on, pending in queue order, completed and failed newest first; `<list>_total` and
        `statistics` count every item, so the answer has the same size at any queue length.
        """
        await self._ensure_recovered()
        if limit is not None and not 0 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be between 0 and {MAX_PAGE}", {"limit": limit})
        if offset < 0:
            raise BadRequest("offset must not be negative", {"offset": offset})

        if limit is None and offset == 0:
            data = await self._first_page()
        else:
            data = await self.store.run(self._page, limit, offset)
        lists, counts = data["lists"], data["counts"]  # shared with concurrent callers: read only
        speed = sum(a.speed or 0.0 for a in self._active.values() if a.proc is not None and not self._paused)
        out: dict[str, Any] = {"is_running": self._running, "is_paused": self._paused}
        for state, name in STATUS_LISTS.items():
            rows = lists[state]
            out[name] = [self._overlay(d) for d in rows] if state == DOWNLOADING else list(rows)
            out[f"{name}_total"] = counts[state]
        out["statistics"] = {
            "pending": counts[PENDING],
            "active": counts[DOWNLOADING],
            "completed": counts[COMPLETED],
            "failed": counts[FAILED],
            "speed_mbps": round(speed / _MIB, 3),
        }
        return out

    async def _first_page(self) -> dict:
        """The default page, one database query for all who ask while it runs. After a change the published
        queue_status and the REST clients' GETs all want it at once; a query started after the last change
        (`_status_gen`, bumped by `_notify`) is as fresh as a new one, so they share it."""
        running = self._status_query
        if running is None or running[0] != self._status_gen or running[1].done():
            future = asyncio.ensure_future(self.store.run(self._page, None, 0))
            running = self._status_query = (self._status_gen, future)
        return await asyncio.shield(running[1])

    def _page(self, limit: int | None, offset: int) -> dict:
        """(DB thread) One page of each list and every list's count."""
        e = self.store.e
        item = e.DownloadQueueItem

        def page(rows: Any, state: str) -> list[dict]:
            n = STATUS_LIMITS[state] if limit is None else limit
            return [queue_item_to_dict(i) for i in rows.limit(n, offset=offset)] if n else []

        # One grouped COUNT instead of loading every row (the status index answers it).
        counts = dict(select((i.status, count(i)) for i in item if i.deleted_at is None))
        live = item.select(lambda i: i.deleted_at is None)
        active = live.filter(lambda i: i.status == DOWNLOADING).order_by(lambda i: i.id)
        pending = live.filter(lambda i: i.status == PENDING).order_by(lambda i: (i.priority_rank, i.id))
        done = live.filter(lambda i: i.status == COMPLETED).order_by(desc(item.completed_at), desc(item.id))
        failed = live.filter(lambda i: i.status == FAILED).order_by(desc(item.updated_at), desc(item.id))
        lists = {
            DOWNLOADING: page(active, DOWNLOADING),
            PENDING: page(pending, PENDING),
            COMPLETED: page(done, COMPLETED),
            FAILED: page(failed, FAILED),
        }
        self._add_episode_titles([d for rows in lists.values() for d in rows])
        return {"lists": lists, "counts": {state: int(counts.get(state, 0)) for state in STATUS_LISTS}}

    def _add_episode_titles(self, items: list[dict]) -> None:
        """(DB thread) `episode_title` for the items of one status page, in one query: the queue page shows
        "S01E02 · <title>". Filtering by key and number (not each triple) keeps it one indexed query."""
        if not items:
            return
        keys = sorted({d["key"] for d in items})
        numbers = sorted({d["episode"] for d in items})
        rows = select(
            (ep.series.key, ep.season, ep.number, ep.title, ep.title_en)
            for ep in self.store.e.Episode
            if ep.series.key in keys and ep.number in numbers
        )
        titles = {(k, season, n): t or t_en or "" for k, season, n, t, t_en in rows}
        for d in items:
            d["episode_title"] = titles.get((d["key"], d["season"], d["episode"]), "")

    async def close(self) -> None:
        """Stop workers for shutdown: active items go back to pending, partial files stay for the restart."""
        async with self._control:
            if self._dispatcher is not None:
                self._dispatcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._dispatcher
                self._dispatcher = None
            ids = list(self._active)
            await self._cancel_items(ids)
            if ids:
                await self.store.run(self._requeue, ids)
        await self.runner.launcher.close()
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task
        await self.hoster_health.flush()

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def is_paused(self) -> bool:
        return self._paused

    # -- recovery --------------------------------------------------------------------------------

    async def _ensure_recovered(self) -> None:
        if self._recovered:
            return
        async with self._recover_lock:
            if self._recovered:
                return
            await self._recover()
            self._recovered = True

    async def _recover(self) -> None:
        """After a restart: kill downloads a dead daemon left running, requeue interrupted items,
        delete staging files in the library and temp files nobody owns."""
        killed = await asyncio.to_thread(kill_stale_processes, self.temp_dir)
        if killed:
            await wait_gone(killed)

        def q() -> tuple[int, list[str], set[int]]:
            e = self.store.e
            interrupted = list(e.DownloadQueueItem.select(lambda i: i.status == DOWNLOADING))
            for row in interrupted:
                row.status = PENDING
                row.speed = row.eta = None
            staging = [
                str(files.staging_path(Path(row.final_path)))
                for row in e.DownloadQueueItem.select(lambda i: i.final_path is not None)
                if row.final_path
            ]
            keep = {
                row.id
                for row in e.DownloadQueueItem.select(
                    lambda i: i.deleted_at is None and i.status in (PENDING, DOWNLOADING, FAILED)
                )
            }
            return len(interrupted), staging, keep

        requeued, staging, keep = await self.store.run(q)

        def clean() -> int:
            removed = files.remove_files([Path(p) for p in staging if Path(p).exists()])
            if self.temp_dir.is_dir():
                for p in self.temp_dir.iterdir():
                    if not p.name.startswith(files.TEMP_PREFIX):
                        continue
                    owner = p.name[len(files.TEMP_PREFIX) :].split("-", 1)[0]
                    if not owner.isdigit() or int(owner) not in keep:
                        removed += files.remove_files([p])
            return removed

        removed = await asyncio.to_thread(clean)
        if requeued or removed or killed:
            log.info(
                "queue recovery: %d interrupted item(s) back to pending, %d leftover file(s) removed",
                requeued,
                removed,
            )

    # -- dispatcher ------------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            self._wake.clear()
            delay: float | None = None
            if self._running and not self._paused:
                free = self.max_concurrent - len(self._active)
                if free > 0:
                    try:
                        ready, delay = await self.store.run(self._next_items, free, set(self._active))
                    except Exception:
                        log.exception("queue dispatcher could not read the queue")
                        ready, delay = [], 5.0
                    if self._running and not self._paused:
                        for item_id in ready:
                            self._launch(item_id)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    def _next_items(self, limit: int, busy: set[int]) -> tuple[list[int], float | None]:
        """Ids of the next due pending items and the seconds until a backing-off one is due."""
        e = self.store.e
        now = utcnow()
        rows = e.DownloadQueueItem.select(lambda i: i.status == PENDING and i.deleted_at is None).order_by(
            lambda i: (i.priority_rank, i.id)
        )
        ready: list[int] = []
        soonest: float | None = None
        for row in rows:
            if row.id in busy or row.series.deleted_at is not None:
                continue
            if row.next_attempt_at is not None and row.next_attempt_at > now:
                wait = (row.next_attempt_at - now).total_seconds()
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            ready.append(row.id)
            if len(ready) >= limit:
                break
        return ready, (max(0.05, soonest) if soonest is not None else None)

    def _launch(self, item_id: int) -> None:
        a = _Active(item_id=item_id)
        self._active[item_id] = a
        a.task = asyncio.create_task(self._work(a), name=f"download-{item_id}")

    async def _cancel_items(self, ids: list[int]) -> None:
        """Cancel workers (killing yt-dlp); an item being moved into the library is let finish."""
        waits = []
        for item_id in ids:
            a = self._active.get(item_id)
            if a is None or a.task is None:
                continue
            if a.proc is not None:
                a.proc.resume()  # a stopped group must run to die cleanly from our kill
            if not a.finalizing:
                a.task.cancel()
            waits.append(a.task)
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)

    def _requeue(self, ids: list[int]) -> None:
        for item_id in ids:
            row = self.store.e.DownloadQueueItem.get(id=item_id)
            if row is not None and row.status == DOWNLOADING:
                row.status = PENDING
                row.speed = row.eta = None

    def _set_paused(self, paused: bool) -> None:
        self._paused = paused
        for a in self._active.values():
            if a.proc is not None:
                a.proc.pause() if paused else a.proc.resume()
            if paused:
                a.speed = 0.0
                a.eta = None

    # -- one item --------------------------------------------------------------------------------

    def _begin(self, item_id: int) -> dict | None:
        e = self.store.e
        row = e.DownloadQueueItem.get(id=item_id)
        if row is None or row.deleted_at is not None or row.status != PENDING:
            return None
        s = row.series
        ep = e.Episode.get(series=s, season=row.season, number=row.episode)
        row.status = DOWNLOADING
        row.started_at = utcnow()
        row.next_attempt_at = None
        row.speed = row.eta = None
        return {
            "id": row.id,
            "key": s.key,
            "site": s.site,
            "name": s.name,
            "folder": s.folder or default_folder(s.name, s.year),
            "has_folder": bool(s.folder),
            "root": s.root,
            "link": s.link,
            "season": row.season,
            "episode": row.episode,
            "language": row.language,
            "replaces_path": row.replaces_path,
            "temp_path": row.temp_path,
            "final_path": row.final_path,
            "attempts": row.attempts,
            "downloaded_bytes": row.downloaded_bytes,
            "total_bytes": row.total_bytes,
            "title": (ep.title or ep.title_en or "") if ep is not None else "",
            "on_disk_language": ep.on_disk_language if ep is not None else None,
        }

    async def _work(self, a: _Active) -> None:
        info: dict | None = None
        try:
            info = await self.store.run(self._begin, a.item_id)
            if info is None:
                return
            a.key, a.folder = info["key"], info["folder"]
            a.season, a.episode, a.language = info["season"], info["episode"], info["language"]
            a.downloaded_bytes, a.total_bytes = info["downloaded_bytes"] or 0, info["total_bytes"]
            self._notify()
            await self._download(a, info)
        except _ItemFailed as exc:
            await self._fail(a, info, exc.reason, exc.retry, count=exc.count, delay=exc.delay)
        except ChallengeError as exc:
            # A wall (captcha, browser check) is not the item's fault: it waits without using a retry.
            wait, reason = self.provider_health.blocked(exc.host, exc.challenge, str(exc))
            await self._fail(a, info, reason, True, count=False, delay=wait)
        except asyncio.CancelledError:
            raise
        except ServiceError as exc:
            await self._fail(a, info, exc.message, True)
        except Exception as exc:  # provider down, NoSourceError, naming problem: retry later with the reason
            if _fd_exhausted(exc):  # out of descriptors: the process's state, not a failed attempt
                reason = f"too many open files, trying again shortly: {exc}"[:300]
                await self._fail(a, info, reason, True, count=False, delay=FD_EXHAUSTED_WAIT)
                return
            reason = str(exc) or exc.__class__.__name__
            if not _is_expected(exc):
                log.exception("download of item %s failed unexpectedly", a.item_id)
            await self._fail(a, info, reason, True)
        finally:
            self._active.pop(a.item_id, None)
            self._keep_warm()
            self._wake.set()
            self._notify()

    async def _download(self, a: _Active, info: dict) -> None:
        # A previous run got as far as the finished file: only the move / bookkeeping is missing.
        leftover = await asyncio.to_thread(_leftover, info)
        if leftover is not None:
            stage, path, size = leftover
            if stage == "move":
                await self._finalize(a, info, DownloadResult(path, size), info["language"])
            else:
                await self._complete(a, info, path, size, info["language"])
            return
        for root in {self._root_of(info), root_of(self.temp_dir, self.roots)} - {None}:
            missing = missing_root_reason(root)
            if missing is not None:  # an unmounted share: wait, never create the root on the system disk
                raise _ItemFailed(missing, count=False, delay=self.root_wait)
        await self._check_free_space(self.temp_dir)
        if self.finder is None:
            raise _ItemFailed("no provider configured for downloads")
        langs = self._languages_for(info)
        self._configure_finder()
        attempts = self.finder.candidates(
            info["site"], info["key"], info["season"], info["episode"], languages=langs
        )
        result: DownloadResult | None = None
        used_language = None
        try:
            async for cand in attempts:
                self.provider_health.ok(_host_of(attempts, info))
                stem = files.temp_stem(self.temp_dir, a.item_id, cand.hoster, cand.language)
                await asyncio.to_thread(self._drop_other_partials, a.item_id, stem)
                a.hoster, a.language = cand.hoster, cand.language
                await self.store.run(self._set_source, a.item_id, cand.hoster, cand.source.url, str(stem))
                self._notify()
                try:
                    result = await self._run_ytdlp(a, cand.source, stem)
                except DownloadError as exc:
                    if exc.kind == DISK_FULL:
                        await asyncio.to_thread(
                            files.remove_files, files.item_files(self.temp_dir, a.item_id)
                        )
                        raise _ItemFailed(exc.reason, retry=False) from None
                    if exc.kind == DL_CANCELLED:
                        raise asyncio.CancelledError from None
                    if _fd_exhausted(exc):  # not this hoster's fault either: the item waits, no attempt
                        raise _ItemFailed(exc.reason, count=False, delay=FD_EXHAUSTED_WAIT) from None
                    attempts.record(cand.hoster, cand.language, f"download failed: {exc.reason}")
                    log.info("item %s: %s (%s) failed: %s", a.item_id, cand.hoster, cand.language, exc.reason)
                    continue
                used_language = cand.language
                break
        finally:
            with contextlib.suppress(Exception):
                await attempts.aclose()
            self._record_health(attempts, a.hoster if result is not None else None)
        if result is None:
            raise self._no_source(attempts)
        await self._finalize(a, info, result, used_language)

    # -- hoster health ---------------------------------------------------------------------------

    def _configure_finder(self) -> None:
        """Give the finder the health record and the order setting (benches pass simpler finders)."""
        if hasattr(self.finder, "hosters_pref"):
            self.finder.health = self.hoster_health
            self.finder.hoster_order = self.config["downloads"].get("hoster_order", "fixed")

    def _record_health(self, attempts: Any, succeeded: str | None) -> None:
        """One outcome per hoster tried in this attempt: its resolver or download failures, or the success.

        Offers never tried (unsupported, cooling down) and provider redirect failures are not the hoster's.
        """
        for failure in list(getattr(attempts, "failures", ())):
            if getattr(failure, "kind", HOSTER_FAILURE) == HOSTER_FAILURE:
                self.hoster_health.record_failure(failure.hoster, failure.reason)
        if succeeded:
            self.hoster_health.record_success(succeeded)

    def _no_source(self, attempts: Any) -> Exception:
        """The attempt's error; when nothing was tried because every usable hoster is cooling down, the
        item waits for the first cool-down to end and the attempt does not count (not the item's fault)."""
        error = attempts.error()
        failures = list(getattr(attempts, "failures", ()))
        kinds = {getattr(f, "kind", HOSTER_FAILURE) for f in failures}
        if COOLDOWN in kinds and not kinds & {HOSTER_FAILURE, PROVIDER_FAILURE}:
            ends = [self.hoster_health.cooldown_ends(f.hoster) for f in failures if f.kind == COOLDOWN]
            ends = [t for t in ends if t is not None]
            delay = max(1.0, min(ends) - time.time()) if ends else self.retry_backoff
            return _ItemFailed(str(error), retry=True, count=False, delay=delay)
        return error

    def _languages_for(self, info: dict) -> list[str]:
        if info["language"]:
            return [info["language"]]
        old = info["on_disk_language"]
        if info["replaces_path"] and old in self.languages:
            better = self.languages[: self.languages.index(old)]
            if better:
                return better
        return list(self.languages)

    def _drop_other_partials(self, item_id: int, stem: Path) -> None:
        """A partial file is only valid for its own source; another hoster's bytes would corrupt it."""
        mine = {p.name for p in files.stem_files(stem)}
        files.remove_files([p for p in files.item_files(self.temp_dir, item_id) if p.name not in mine])

    def _set_source(self, item_id: int, hoster: str, url: str, stem: str) -> None:
        row = self.store.e.DownloadQueueItem[item_id]
        row.hoster = hoster
        row.source_url = url[:2000]
        row.temp_path = stem

    async def _check_free_space(self, path: Path, needed: int = 0) -> None:
        try:
            free = await asyncio.to_thread(files.free_bytes, path)
        except OSError as exc:
            raise _ItemFailed(f"cannot check free space in {path}: {exc.strerror}") from None
        floor = max(self.min_free_bytes, needed)
        if free < floor:
            gb = free / 1024**3
            raise _ItemFailed(
                f"{NO_SPACE_REASON}: {gb:.2f} GB free in {path}, need {floor / 1024**3:.2f} GB "
                f"(downloads.min_free_gb)",
                retry=False,
            )

    async def _run_ytdlp(self, a: _Active, source: Any, stem: Path) -> DownloadResult:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        resumed_from = await asyncio.to_thread(files.partial_bytes, stem)
        if resumed_from:
            log.info("item %s: resuming %s from %d bytes", a.item_id, stem.name, resumed_from)
        a.proc = await self.runner.start(source, stem, lambda p: self._on_progress(a, p))
        try:
            if self._paused:
                a.proc.pause()
            return await a.proc.wait()
        finally:
            a.proc = None

    def _on_progress(self, a: _Active, p: Progress) -> None:
        a.percent = p.percent
        a.downloaded_bytes = p.downloaded_bytes
        a.total_bytes = p.total_bytes
        a.speed = p.speed
        a.eta = p.eta
        now = time.monotonic()
        # Also the last (100%) report waits its turn: download_complete follows anyway.
        if now - a.last_event >= PROGRESS_EVENT_INTERVAL:
            a.last_event = now
            self.bus.publish(DOWNLOAD_PROGRESS, self._progress_payload(a))
        if now - a.last_db >= PROGRESS_DB_INTERVAL:
            a.last_db = now
            self._spawn(
                self.store.run(
                    self._save_progress,
                    a.item_id,
                    a.percent,
                    a.downloaded_bytes,
                    a.total_bytes,
                    a.speed,
                    a.eta,
                )
            )

    def _progress_payload(self, a: _Active) -> dict:
        return {
            "download_id": a.item_id,
            "key": a.key,
            "folder": a.folder,
            "season": a.season,
            "episode": a.episode,
            "language": a.language,
            "percent": a.percent,
            "downloaded_bytes": a.downloaded_bytes,
            "total_bytes": a.total_bytes,
            "speed_mbps": None if a.speed is None else round(a.speed / _MIB, 3),
            "eta_seconds": None if a.eta is None else round(a.eta),
        }

    def _save_progress(
        self,
        item_id: int,
        percent: float,
        done: int,
        total: int | None,
        speed: float | None,
        eta: float | None,
    ) -> None:
        row = self.store.e.DownloadQueueItem.get(id=item_id)
        if row is None or row.status != DOWNLOADING:
            return
        row.progress = percent
        row.downloaded_bytes = done
        row.total_bytes = total
        row.speed = speed
        row.eta = eta

    async def _finalize(self, a: _Active, info: dict, result: DownloadResult, language: str | None) -> None:
        """Move the finished file into the library (atomically) and record it."""
        a.finalizing = True
        language = language or info["language"] or self.languages[0]
        ext = result.path.suffix.lstrip(".") or "mp4"
        root = self._root_of(info)
        try:
            rel = build_episode_path(
                self.config["library"],
                info["folder"],
                info["name"],
                info["season"],
                info["episode"],
                language,
                ext,
                title=info["title"],
                key=info["key"],
            )
            dst = safe_join(root, rel)
        except ValueError as exc:
            raise _ItemFailed(f"cannot name the file: {exc}", retry=False) from None
        await self.store.run(self._set_downloaded, a.item_id, str(result.path), str(dst), language)
        if not await asyncio.to_thread(_same_fs, result.path, Path(root)):
            await self._check_free_space(Path(root), result.size_bytes + 64 * _MIB)
        try:
            await asyncio.to_thread(files.move_into_place, result.path, dst)
        except OSError as exc:
            full = exc.errno in (28, 122)
            raise _ItemFailed(
                NO_SPACE_REASON if full else f"cannot move into the library: {exc.strerror}", retry=not full
            ) from None
        await self._complete(a, info, dst, result.size_bytes, language)

    def _root_of(self, info: dict) -> str:
        """The library root an item's file goes to: its series' root, else the first one."""
        return info["root"] if info["root"] in self.roots else self.roots[0]

    def _set_downloaded(self, item_id: int, temp: str, final: str, language: str) -> None:
        row = self.store.e.DownloadQueueItem[item_id]
        row.temp_path = temp
        row.final_path = final
        row.language = language

    async def _complete(self, a: _Active, info: dict, dst: Path, size: int, language: str | None) -> None:
        a.finalizing = True
        series_dir = self._series_dir(dst, info)
        if series_dir is not None:
            await asyncio.to_thread(self._ensure_marker, series_dir, info)
        old = info["replaces_path"]
        if old and Path(old) != dst:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(Path(old).unlink)
                log.info("replaced %s by %s", old, dst)
        done = await self.store.run(
            self._mark_completed,
            a.item_id,
            str(dst),
            size,
            language,
            series_dir.name if series_dir else None,
            str(series_dir.parent) if series_dir else None,
        )
        await asyncio.to_thread(files.remove_files, files.item_files(self.temp_dir, a.item_id))
        a.percent, a.downloaded_bytes, a.total_bytes = 100.0, size, size
        self.bus.publish(
            DOWNLOAD_COMPLETE,
            {
                "download_id": a.item_id,
                "key": info["key"],
                "folder": done["folder"],
                "season": info["season"],
                "episode": info["episode"],
                "name": info["name"],  # the series title: the UI's "Downloaded 12 episodes of <name>"
                "language": language,
                "path": str(dst),
                "size_bytes": size,
                # A language upgrade names the file it replaced, so clients can tell it from a new episode.
                "replaced": old if old and Path(old) != dst else None,
            },
        )
        log.info("downloaded %s %s -> %s", info["key"], _label(info["season"], info["episode"]), dst)

    def _series_dir(self, dst: Path, info: dict) -> Path | None:
        for root in self.roots:
            try:
                rel = dst.relative_to(Path(root).resolve())
            except ValueError:
                continue
            return Path(root).resolve() / rel.parts[0] if len(rel.parts) > 1 else None
        return None

    @staticmethod
    def _ensure_marker(series_dir: Path, info: dict) -> None:
        """A folder the download created gets its marker, so the scanner matches it to the key."""
        try:
            if read_marker(series_dir) is None:
                write_marker(series_dir, info["key"], info["site"], info["name"], info["link"])
        except ValueError as exc:  # an existing but broken marker is the scanner's to report
            log.warning("marker of %s not written: %s", series_dir, exc)

    def _mark_completed(
        self, item_id: int, path: str, size: int, language: str | None, folder: str | None, root: str | None
    ) -> dict:
        e = self.store.e
        row = e.DownloadQueueItem[item_id]
        row.status = COMPLETED
        row.progress = 100.0
        row.downloaded_bytes = size
        row.total_bytes = size
        row.speed = row.eta = None
        row.error = None
        row.next_attempt_at = None
        row.completed_at = utcnow()
        row.final_path = path
        if language:
            row.language = language
        s = row.series
        if folder and not s.folder:
            s.folder = folder
            s.root = root
        ep = e.Episode.get(series=s, season=row.season, number=row.episode)
        if ep is not None:
            ep.on_disk_path = path
            ep.on_disk_language = language
        return {"folder": s.folder or folder}

    async def _fail(
        self,
        a: _Active,
        info: dict | None,
        reason: str,
        retry: bool,
        *,
        count: bool = True,
        delay: float | None = None,
    ) -> None:
        reason = (reason or "download failed")[:2000]

        def q() -> dict | None:
            row = self.store.e.DownloadQueueItem.get(id=a.item_id)
            if row is None or row.deleted_at is not None:
                return None
            if count:
                row.attempts += 1
            will_retry = retry and (row.attempts <= self.max_retries or not count)
            row.error = reason
            row.speed = row.eta = None
            if will_retry:
                wait = delay if delay is not None else self.retry_backoff * (2 ** max(row.attempts - 1, 0))
                wait = min(wait, MAX_BACKOFF)
                row.status = PENDING
                row.next_attempt_at = utcnow() + timedelta(seconds=wait)
            else:
                row.status = FAILED
                row.next_attempt_at = None
            s = row.series
            return {
                "download_id": row.id,
                "key": s.key,
                "folder": s.folder or (info or {}).get("folder"),
                "season": row.season,
                "episode": row.episode,
                "language": row.language or a.language,
                "reason": reason,
                "attempts": row.attempts,
                "will_retry": will_retry,
            }

        payload = await self.store.run(q)
        if payload is None:
            return
        log.warning(
            "download of %s %s failed (attempt %d%s): %s",
            payload["key"],
            _label(payload["season"], payload["episode"]),
            payload["attempts"],
            ", will retry" if payload["will_retry"] else "",
            reason,
        )
        self.bus.publish(DOWNLOAD_FAILED, payload)

    # -- status helpers --------------------------------------------------------------------------

    def _overlay(self, item: dict) -> dict:
        a = self._active.get(item["id"])
        if a is None or item["status"] != DOWNLOADING:
            return item
        item = dict(item)
        item.update(
            progress=round(a.percent, 2),
            downloaded_bytes=a.downloaded_bytes,
            total_bytes=a.total_bytes,
            speed=0.0 if self._paused else a.speed,
            eta=None if self._paused else a.eta,
        )
        if a.hoster:
            item["hoster"] = a.hoster
        if a.language and not item.get("language"):
            item["language"] = a.language
        return item

    def _keep_warm(self) -> None:
        """Queue activity while the queue runs: have a yt-dlp child started ahead (see Launcher)."""
        if self._running:
            self.runner.launcher.keep_warm()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _notify(self) -> None:
        """Publish queue_status soon; changes in the same loop turn are coalesced into one event."""
        self._status_gen += 1  # a status query already running predates this change
        if self._status_pending:
            return
        self._status_pending = True
        self._spawn(self._publish_status())

    async def _publish_status(self) -> None:
        await asyncio.sleep(0)
        self._status_pending = False
        try:
            self.bus.publish(QUEUE_STATUS, await self.status())
        except Exception:
            log.exception("queue status could not be published")

    def _check_replaces(self, replaces: str) -> str:
        """The file an upgrade replaces must be inside a library root (we delete it later)."""
        for root in self.roots:
            try:
                path = safe_join(root, replaces)
            except ValueError:
                continue
            return str(path)
        raise BadRequest(f"replaces path {replaces!r} is not inside a library root")


def _leftover(info: dict) -> tuple[str, Path, int] | None:
    """("move", finished temp file, size) or ("record", library file, size) when an earlier run of this
    item finished the download (its final path is recorded) but was interrupted before completing."""
    if not (info["final_path"] and info["temp_path"]):
        return None
    done, dst = Path(info["temp_path"]), Path(info["final_path"])
    if done.is_file() and not files.is_partial(done):
        return "move", done, done.stat().st_size
    if dst.is_file() and not done.exists():
        return "record", dst, dst.stat().st_size
    return None


def _same_fs(a: Path, b: Path) -> bool:
    try:  # b is a library root: looked at, never created (see core.roots)
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False


def _is_expected(exc: BaseException) -> bool:
    """Failures with a user-facing reason (provider, hoster) are logged without a traceback."""
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"NoSourceError", "ProviderError", "HosterError", "DownloadError", "OSError"})


def _host_of(attempts: Any, info: dict) -> str:
    """The provider host an item's offers came from (for ProviderHealth): the episode page's host."""
    links = getattr(attempts, "ordered", None) or []
    for link in links:
        host = urlsplit(getattr(link, "redirect_url", "") or "").hostname
        if host:
            return host
    return info.get("site", "")
