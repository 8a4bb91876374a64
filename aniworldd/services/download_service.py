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
import logging
from pathlib import Path
from typing import Any

from pony.orm import count, desc, flush, select

from aniworldd.config import LANGUAGE_CODES, LIVE_KEYS
from aniworldd.core.labels import episode_label
from aniworldd.core.validators import safe_join, validate_series_key
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
from aniworldd.download.ytdlp import YtDlpRunner
from aniworldd.events import QUEUE_CONTROL, QUEUE_STATUS, Event, EventBus
from aniworldd.services.download_worker import (
    FD_EXHAUSTED_WAIT,
    DownloadWorker,
    QueueControl,
    default_folder,
)
from aniworldd.services.errors import BadRequest, Conflict, NotFound
from aniworldd.services.hoster_health import HosterHealth
from aniworldd.services.provider_health import ProviderHealth
from aniworldd.services.queue_claims import QueueClaims
from aniworldd.services.queue_control import ControlState, ControlStore

__all__ = ["FD_EXHAUSTED_WAIT", "PENDING", "DownloadService", "default_folder"]

log = logging.getLogger(__name__)

#: The downloads settings apply_settings takes over while running (config.LIVE_KEYS).
LIVE_DOWNLOAD_KEYS = sorted(key.split(".", 1)[1] for key in LIVE_KEYS if key.startswith("downloads."))
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


class DownloadService:
    """The persistent download queue: its items, their order, the controls and the status (see the module
    docstring for the semantics). Downloads are its worker's (services.download_worker); an API-only
    process of a cluster has no worker and changes the shared queue for the workers elsewhere.

    One instance per data dir, in the daemon: on first use its worker treats every `downloading` row and
    every download process recorded in the temp dir as left over from a crash.
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
        claims: QueueClaims | None = None,
        dispatch: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        #: Per-hoster outcomes, cool-downs and the adaptive order (services.hoster_health); read by the
        #: API, /metrics and the MQTT bridge through `snapshot()`.
        self.hoster_health = hoster_health or HosterHealth.from_config(config, bus.publish)
        #: Walls on the provider sites (captcha, browser checks): items wait, `health` events tell it.
        self.provider_health = provider_health or ProviderHealth(
            bus.publish, first_wait=config.get("provider", {}).get("challenge_retry", 900.0)
        )
        self.roots = [str(r) for r in config["library"]["roots"]]
        self.control = QueueControl()
        #: Several processes (services.queue_claims): the node whose events are this process's own.
        self.claims = claims
        #: None in an API-only process of a cluster: it changes the queue, workers elsewhere download.
        self.worker: DownloadWorker | None = None
        if dispatch:
            self.worker = DownloadWorker(
                config,
                store,
                bus,
                self.control,
                self._notify,
                finder,
                runner,
                self.hoster_health,
                self.provider_health,
                claims,
                control_check=self._reload_control if claims is not None else None,
            )
        self._recovered = False
        self._recover_lock = asyncio.Lock()
        self._control = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        self._status_pending = False
        #: Changes so far (see _first_page); the default status query running or last run, and its generation.
        self._status_gen = 0
        self._status_query: tuple[int, asyncio.Future] | None = None
        self._control_store = ControlStore(config.get("data_dir"))
        if claims is not None:
            bus.add_listener(self._on_cluster_event, scope="cluster")

    # -- the worker's settings, as the queue's (the API, MQTT and tests read them here) ----------

    @property
    def max_concurrent(self) -> int:
        return int(self.config["downloads"]["max_concurrent"])

    @property
    def max_retries(self) -> int:
        return int(self.config["downloads"]["max_retries"])

    @property
    def languages(self) -> list[str]:
        return list(self.config["downloads"]["language"])

    @property
    def temp_dir(self) -> Path:
        return Path(self.config["downloads"]["temp_dir"])

    @property
    def runner(self) -> YtDlpRunner | None:
        return self.worker.runner if self.worker is not None else None

    @property
    def finder(self) -> Any:
        return self.worker.finder if self.worker is not None else None

    @finder.setter
    def finder(self, finder: Any) -> None:
        if self.worker is not None:
            self.worker.finder = finder

    @property
    def root_wait(self) -> float:
        return self.worker.root_wait if self.worker is not None else 0.0

    @root_wait.setter
    def root_wait(self, seconds: float) -> None:
        if self.worker is not None:
            self.worker.root_wait = seconds

    @property
    def _active(self) -> dict:
        """The running downloads of this process's worker (tests look at their processes)."""
        return self.worker._active if self.worker is not None else {}

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
        self._wake()
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
        if self.worker is not None:
            self.worker.apply_settings(running)
        log.info("download settings changed: %s", ", ".join(changed))
        self._notify()
        return changed

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
            self.control.running = True
            if self.control.paused and resume:
                self._set_paused(False)
            await self._save_control()
            if self.worker is not None:
                self.worker.start()
        if self.worker is not None and await self.store.run(self._has_pending):
            self.worker._keep_warm()
        self._notify()

    async def stop(self) -> None:
        """Start nothing new; active downloads are killed and go back to pending (partial data kept)."""
        await self._ensure_recovered()
        async with self._control:
            self.control.running = False
            self.control.paused = False
            await self._save_control()
            if self.worker is not None:
                await self.worker.stop_all()
        if self.worker is not None:
            await self.worker.runner.launcher.retire()
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
        self._wake()
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
                self.control.paused = True
        if saved.running:
            await self.start(resume=False)
        self._notify()

    async def _save_control(self) -> None:
        await asyncio.to_thread(
            self._control_store.save, ControlState(self.control.running, self.control.paused)
        )
        if self.claims is not None:  # the other processes read the shared file when they hear of it
            self.bus.publish(QUEUE_CONTROL, {"running": self.control.running, "paused": self.control.paused})

    def _set_paused(self, paused: bool) -> None:
        self.control.paused = paused
        if self.worker is not None:
            self.worker.set_paused(paused)

    def _wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    # -- several processes -------------------------------------------------------------------------

    def _on_cluster_event(self, event: Event) -> None:
        """(cluster scope) Another process changed the queue or its control: look again at once."""
        if self.claims is None or event.origin == self.claims.node:
            return
        if event.type == QUEUE_CONTROL:
            state = ControlState(bool(event.data.get("running")), bool(event.data.get("paused")))
            self._spawn(self._apply_control(state))
        elif event.type == QUEUE_STATUS:
            self._status_gen += 1  # a cached first page predates the other process's change
            self._wake()

    async def _reload_control(self) -> None:
        """The shared control file, in case this process missed the event that announced a change."""
        saved = await asyncio.to_thread(self._control_store.load)
        if saved is not None and (saved.running, saved.paused) != (self.control.running, self.control.paused):
            await self._apply_control(saved)

    async def _apply_control(self, state: ControlState) -> None:
        """What start/stop/pause/resume in another process means here (the file is already saved)."""
        async with self._control:
            if state.paused != self.control.paused:
                self._set_paused(state.paused)
            if state.running and not self.control.running:
                self.control.running = True
                if self.worker is not None:
                    self.worker.start()
            elif not state.running and self.control.running:
                self.control.running = False
                if self.worker is not None:
                    await self.worker.stop_all()
        self._wake()
        self._notify()

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
        self._wake()
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
            await self._cancel([item_id])

            def q() -> dict:
                row = self.store.e.DownloadQueueItem[item_id]
                if row.status in ACTIVE_STATUSES:
                    row.status = CANCELLED
                row.deleted_at = utcnow()
                row.speed = row.eta = None
                return queue_item_to_dict(row)

            removed = await self.store.run(q)
            await self._cancel([item_id])  # the dispatcher may have taken it meanwhile
            await asyncio.to_thread(files.remove_files, files.item_files(self.temp_dir, item_id))
        self._wake()
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
        self._wake()
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
        if self.worker is not None:
            speed = self.worker.speed()
        else:  # an API process of a cluster: the workers' last saved speeds
            speed = 0.0 if self.control.paused else sum(d.get("speed") or 0.0 for d in lists[DOWNLOADING])
        out: dict[str, Any] = {"is_running": self.control.running, "is_paused": self.control.paused}
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
        """Stop the worker for shutdown: active items go back to pending, partial files stay."""
        async with self._control:
            if self.worker is not None:
                await self.worker.close()
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task
        if self.worker is None:
            await self.hoster_health.flush()

    @property
    def is_running(self) -> bool:
        return self.control.running

    @property
    def is_paused(self) -> bool:
        return self.control.paused

    # -- recovery --------------------------------------------------------------------------------

    async def _ensure_recovered(self) -> None:
        if self._recovered:
            return
        async with self._recover_lock:
            if self._recovered:
                return
            if self.worker is not None:
                await self.worker.recover()
            self._recovered = True

    async def _cancel(self, ids: list[int]) -> None:
        if self.worker is not None:
            await self.worker.cancel(ids)

    def _overlay(self, item: dict) -> dict:
        return self.worker.overlay(item) if self.worker is not None else item

    def _keep_warm(self) -> None:
        if self.worker is not None:
            self.worker._keep_warm()

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
