"""The worker half of the download queue: it takes due items and runs one download each (resolve the
episode's offers, yt-dlp, move the file into the library, record it).

DownloadService (the queue) owns the items' state and the controls; a process that downloads (role `all` or
`worker`) has one DownloadWorker, an API-only process has none. With several processes the worker leases
items (services.queue_claims) instead of simply taking them, and renews its leases while it downloads.
See services.download_service for the queue's semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aniworldd.core.labels import episode_label
from aniworldd.core.markers import read_marker, write_marker
from aniworldd.core.naming import build_episode_path
from aniworldd.core.roots import ROOT_WAIT, missing_root_reason, root_of
from aniworldd.core.validators import safe_join, sanitize_filename
from aniworldd.db import Store
from aniworldd.db.models import COMPLETED, DOWNLOADING, FAILED, PENDING, utcnow
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
from aniworldd.events import DOWNLOAD_COMPLETE, DOWNLOAD_FAILED, DOWNLOAD_PROGRESS, EventBus
from aniworldd.limits import out_of_descriptors
from aniworldd.providers.base import ChallengeError
from aniworldd.providers.sources import COOLDOWN, HOSTER_FAILURE, PROVIDER_FAILURE
from aniworldd.services.errors import ServiceError
from aniworldd.services.hoster_health import HosterHealth
from aniworldd.services.provider_health import ProviderHealth
from aniworldd.services.queue_claims import QueueClaims, pick_due

log = logging.getLogger("aniworldd.services.download_service")  # one logger name for the whole queue

#: download_progress events per item are at least this far apart (at most 2/s).
PROGRESS_EVENT_INTERVAL = 0.5
#: Progress is written to the database at most this often per item (status after a restart).
PROGRESS_DB_INTERVAL = 1.0
#: Longest automatic retry delay, whatever retry_backoff and the attempt count say.
MAX_BACKOFF = 24 * 3600.0
_MIB = 1024 * 1024

#: Seconds between a worker's looks at the shared queue when no event woke it (several processes).
CLUSTER_POLL = 2.0

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


def default_folder(name: str, year: int | None) -> str:
    """Folder for a series that has none on disk yet: `Name (Year)` like the seed's libraries."""
    text = f"{name} ({year})" if year else name
    return sanitize_filename(text)


@dataclass(slots=True)
class QueueControl:
    """Started and paused: set by the queue, read by its worker (one object, so they never disagree)."""

    running: bool = False
    paused: bool = False


class DownloadWorker:
    """Runs the queue's due items, at most `downloads.max_concurrent` at once (in the whole cluster with
    several processes). `notify` asks the queue to publish a queue_status soon."""

    def __init__(
        self,
        config: dict,
        store: Store,
        bus: EventBus,
        control: QueueControl,
        notify: Callable[[], None],
        finder: Any = None,
        runner: YtDlpRunner | None = None,
        hoster_health: HosterHealth | None = None,
        provider_health: ProviderHealth | None = None,
        claims: QueueClaims | None = None,
        control_check: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        self.control = control
        self._notify = notify
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
        self.roots = [str(r) for r in config["library"]["roots"]]
        #: Seconds between looks at a missing library root (tests shorten it).
        self.root_wait = ROOT_WAIT
        self.take_settings(dl)
        #: Several processes: items are leased (services.queue_claims); None = one process.
        self.claims = claims
        #: Several processes: the queue re-reads the shared control state (a missed event) on each renewal.
        self._control_check = control_check
        self._active: dict[int, _Active] = {}
        self._wake = asyncio.Event()
        self._lease_check = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None
        self._lease_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()

    @property
    def _running(self) -> bool:
        return self.control.running

    @property
    def _paused(self) -> bool:
        return self.control.paused

    # -- what the queue asks of its worker -------------------------------------------------------

    def take_settings(self, dl: dict) -> None:
        """The `downloads` settings the worker follows, at start and after a config save."""
        self.max_concurrent = int(dl["max_concurrent"])
        self.max_retries = int(dl["max_retries"])
        self.retry_backoff = float(dl["retry_backoff"])
        self.min_free_bytes = int(float(dl["min_free_gb"]) * 1024**3)
        self.languages = list(dl["language"])
        self.hoster_health.configure(
            dl["hoster_failures_before_cooldown"], dl["hoster_cooldown"], dl["hosters"]
        )

    def apply_settings(self, dl: dict) -> None:
        """New settings while running: the limits apply to what starts next, yt-dlp's from the next run."""
        self.take_settings(dl)
        self.runner.speed_limit, self.runner.quality = dl["speed_limit"], dl["quality"]
        self.runner.launcher.warm_seconds = float(dl["warm_start"])
        self.runner.fragments = int(dl["fragments"])
        self.runner.hls_downloader = dl["hls_downloader"]
        if hasattr(self.finder, "hosters_pref"):
            self.finder.hosters_pref = list(dl["hosters"])
            self.finder.languages_pref = list(self.languages)
        self._wake.set()  # a higher max_concurrent starts more at once

    def start(self) -> None:
        """Take items (again): the dispatcher, and with several processes the lease renewals."""
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="download-dispatcher")
        if self.claims is not None and (self._lease_task is None or self._lease_task.done()):
            self._lease_task = asyncio.create_task(self._lease_loop(), name="queue-leases")
        self._wake.set()

    def wake(self) -> None:
        """Look at the queue now (an item was added, retried, moved up; another process changed it)."""
        self._wake.set()
        self._lease_check.set()

    def active_ids(self) -> list[int]:
        return list(self._active)

    def speed(self) -> float:
        """Bytes per second of every running download together."""
        return sum(a.speed or 0.0 for a in self._active.values() if a.proc is not None and not self._paused)

    async def cancel(self, ids: list[int]) -> None:
        """Stop these downloads (yt-dlp killed); an item being moved into the library is let finish."""
        await self._cancel_items(ids)

    async def stop_all(self) -> None:
        """Stop every download; the items go back to pending with their partial files."""
        ids = list(self._active)
        await self._cancel_items(ids)
        if ids:
            await self.store.run(self._requeue, ids)

    def set_paused(self, paused: bool) -> None:
        """SIGSTOP / SIGCONT the running downloads (the queue has set control.paused)."""
        for a in self._active.values():
            if a.proc is not None:
                a.proc.pause() if paused else a.proc.resume()
            if paused:
                a.speed = 0.0
                a.eta = None

    def overlay(self, item: dict) -> dict:
        """A queue row with the live numbers of its running download, if this worker runs it."""
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

    async def recover(self) -> None:
        await self._recover()

    async def close(self) -> None:
        """For shutdown: active items go back to pending, partial files stay for the restart."""
        for task in (self._lease_task, self._dispatcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._lease_task = self._dispatcher = None
        await self.stop_all()
        if self.claims is not None:
            with contextlib.suppress(Exception):  # the database may be gone already: the row just ages out
                await self.store.run(self.claims.leave)
        await self.runner.launcher.close()
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task
        await self.hoster_health.flush()

    # -- several processes -------------------------------------------------------------------------

    async def _drop_removed(self, ids: list[int]) -> None:
        """Temp files of items removed in another process (which deleted them while this one still wrote).
        An item another worker took over keeps its files: that worker resumes from them."""

        def removed() -> list[int]:
            rows = (self.store.e.DownloadQueueItem.get(id=i) for i in ids)
            return [r.id for r in rows if r is not None and r.deleted_at is not None]

        for item_id in await self.store.run(removed):
            await asyncio.to_thread(files.remove_files, files.item_files(self.temp_dir, item_id))

    async def _lease_loop(self) -> None:
        """Renew this worker's leases every third of the lease (sooner when another process changed the
        queue); stop downloads whose lease was lost or whose item was removed elsewhere."""
        assert self.claims is not None
        with contextlib.suppress(Exception):  # counted among the workers before its first claim
            await self.store.run(self.claims.join)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lease_check.wait(), self.claims.lease / 3)
            self._lease_check.clear()
            try:
                lost = await self.store.run(self.claims.renew, list(self._active))
            except Exception as exc:  # the database is away: the lease runs out, another worker goes on
                log.warning("queue leases not renewed: %s", exc)
                continue
            if lost:
                log.warning("queue item(s) %s no longer this worker's (lease lost or removed): stopped", lost)
                await self._cancel_items(lost)
                await self._drop_removed(lost)
            if self._control_check is not None:
                await self._control_check()

    async def _recover(self) -> None:
        """After a restart: kill downloads a dead daemon left running, requeue interrupted items,
        delete staging files in the library and temp files nobody owns.

        Not with several processes: the `downloading` items, processes and temp files are other workers'
        (leases hand a dead worker's items on, and its download children die with it)."""
        if self.claims is not None:
            return
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

    async def _dispatch_loop(self) -> None:
        while True:
            self._wake.clear()
            delay: float | None = None
            if self._running and not self._paused:
                free = self.max_concurrent - len(self._active)
                if free > 0:
                    try:
                        if self.claims is not None:
                            ready, delay = await self.store.run(self.claims.claim, free, self.max_concurrent)
                            # other processes add items too; their events wake us, this is the safety net
                            delay = CLUSTER_POLL if delay is None else min(delay, CLUSTER_POLL)
                        else:
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
        return pick_due(rows, busy, limit, now)

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
        if self.claims is not None:
            self.claims.release(ids)

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
            if self.claims is not None:
                self._spawn(self.store.run(self.claims.release, [a.item_id]))
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
        log.info("downloaded %s %s -> %s", info["key"], episode_label(info["season"], info["episode"]), dst)

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
            episode_label(payload["season"], payload["episode"]),
            payload["attempts"],
            ", will retry" if payload["will_retry"] else "",
            reason,
        )
        self.bus.publish(DOWNLOAD_FAILED, payload)

    def _keep_warm(self) -> None:
        """Queue activity while the queue runs: have a yt-dlp child started ahead (see Launcher)."""
        if self._running:
            self.runner.launcher.keep_warm()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


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
