"""Keeps monitored series up to date without anyone asking.

Every monitored series is re-read from the provider once per `provider.refresh_interval`, each at its own
jittered moment (stable per key, so 2,000 series spread out instead of hitting the site at once). The HTTP
client's per-host limit and spacing keep the request rate polite; here we only bound how many series are
refreshed at once. New episodes are queued when `downloads.auto_queue` is on; episodes on disk in a
lower-ranked language are queued again in the better one when `downloads.upgrade_language` is on.

Politeness when things go wrong:
- a series whose refresh fails is retried with its own backoff (not every tick);
- a blocked answer (403, challenge page, 429 after retries) ends the pass at once and pauses refreshing
  for a while: hammering a site that is already refusing us only makes the block longer.

A series that was never refreshed (found on disk by the scanner) gets its first listing as a *baseline*:
its episodes are the back catalogue, not news, so they are not auto-queued and do not show up as "newly
listed" in the calendar (their `first_seen` is set to the series' first listing).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from datetime import timedelta
from typing import Any

from aniworldd.db import Store
from aniworldd.db.models import ACTIVE_STATUSES, FAILED, utcnow
from aniworldd.events import SERIES_UPDATED, EventBus, iso_timestamp
from aniworldd.providers.base import BlockedError
from aniworldd.services.errors import Conflict, NotFound, ServiceError, Unavailable

log = logging.getLogger(__name__)

#: Event type of health changes (notifications.HEALTH; not a WebSocket/MQTT message type).
HEALTH = "health"
#: Longest wait before a failed series is tried again (capped by refresh_interval).
MAX_FAILURE_BACKOFF = 6 * 3600.0
FIRST_FAILURE_BACKOFF = 60.0
#: Pause after the provider blocked us (capped by refresh_interval).
BLOCKED_PAUSE = 1800.0


def jitter_factor(key: str, jitter: float) -> float:
    """A stable factor in [1 - jitter, 1 + jitter] per key."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return 1 + jitter * (2 * h - 1)


def better_language(on_disk: str | None, offered: list[str], preference: list[str]) -> str | None:
    """The best offered language that ranks above what is on disk, or None."""
    rank = {lang: i for i, lang in enumerate(preference)}
    current = rank.get(on_disk or "", len(preference))
    candidates = sorted((rank[lang], lang) for lang in offered if lang in rank)
    if candidates and candidates[0][0] < current:
        return candidates[0][1]
    return None


class RefreshService:
    def __init__(
        self,
        store: Store,
        anime: Any,
        queue: Any,
        provider_cfg: dict,
        downloads_cfg: dict,
        bus: EventBus | None = None,
        clock: Any = time.monotonic,
        services: Any = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self._anime = anime
        self._queue_svc = queue
        # Any object with `.anime` / `.queue` (the daemon's AppContext), read at use time so the daemon's
        # build order does not matter.
        self._services = services
        self.interval = float(provider_cfg["refresh_interval"])
        self.jitter = float(provider_cfg["refresh_jitter"])
        self.max_concurrent = max(1, int(provider_cfg["max_concurrent"]))
        self.auto_queue = bool(downloads_cfg["auto_queue"])
        self.upgrade = bool(downloads_cfg["upgrade_language"])
        self.languages = list(downloads_cfg["language"])
        self._clock = clock
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._force = False
        self._lock = asyncio.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, retry not before)
        self._blocked_until = 0.0
        self._degraded = False
        self.running = False
        self.last_run: dict | None = None

    @property
    def anime(self) -> Any:
        return self._anime if self._anime is not None else getattr(self._services, "anime", None)

    @property
    def queue(self) -> Any:
        return self._queue_svc if self._queue_svc is not None else getattr(self._services, "queue", None)

    # -- scheduling --------------------------------------------------------------------------------

    async def due_keys(self, force: bool = False) -> list[str]:
        """Monitored live series whose jittered interval has passed (all of them with force)."""

        def q() -> list[tuple[str, Any]]:
            rows = self.store.e.AnimeSeries.select(lambda s: s.monitored and s.deleted_at is None)
            return [(s.key, s.last_refreshed) for s in rows]

        now = utcnow()
        mono = self._clock()
        due = []
        for key, last in await self.store.run(q):
            if force:
                due.append(key)
                continue
            fails = self._failures.get(key)
            if fails is not None and mono < fails[1]:
                continue
            period = timedelta(seconds=self.interval * jitter_factor(key, self.jitter))
            if last is None or now - last >= period:
                due.append(key)
        return sorted(due)

    def _backoff(self, key: str) -> None:
        count = self._failures.get(key, (0, 0.0))[0] + 1
        delay = min(FIRST_FAILURE_BACKOFF * 2 ** (count - 1), MAX_FAILURE_BACKOFF, self.interval)
        self._failures[key] = (count, self._clock() + delay)

    def _health(self, status: str, message: str) -> None:
        """A `health` event (for webhooks) once when refreshing gets blocked, once when it works again."""
        degraded = status != "ok"
        if degraded == self._degraded:
            return
        self._degraded = degraded
        if self.bus is not None:
            self.bus.publish(HEALTH, {"status": status, "component": "provider", "message": message})

    @property
    def blocked(self) -> bool:
        return self._clock() < self._blocked_until

    # -- one pass ----------------------------------------------------------------------------------

    async def refresh_all(self, keys: list[str] | None = None, force: bool = False) -> dict:
        """Refresh the given (default: due) series; returns counts and the new episodes per key."""
        async with self._lock:
            self.running = True
            try:
                return await self._pass(keys, force)
            finally:
                self.running = False

    async def _pass(self, keys: list[str] | None, force: bool) -> dict:
        keys = await self.due_keys(force) if keys is None else keys
        started = time.monotonic()
        sem = asyncio.Semaphore(self.max_concurrent)
        new: dict[str, list[dict]] = {}
        errors: dict[str, str] = {}
        queued: dict[str, int] = {}
        upgrades: dict[str, int] = {}
        skipped = 0

        async def one(key: str) -> None:
            nonlocal skipped
            async with sem:
                if self.blocked:
                    skipped += 1
                    return
                try:
                    result = await self.refresh_one(key)
                except BlockedError as exc:
                    pause = min(BLOCKED_PAUSE, self.interval)
                    self._blocked_until = self._clock() + pause
                    errors[key] = str(exc)
                    log.warning("provider blocked the refresh of %s; pausing refreshes: %s", key, exc)
                    self._health("degraded", f"provider blocked the refresh; pausing {pause:.0f}s: {exc}")
                    return
                except Exception as exc:  # one broken series must not stop the others
                    errors[key] = str(exc) or type(exc).__name__
                    self._backoff(key)
                    log.warning("refresh of %s failed: %s", key, errors[key])
                    return
            self._failures.pop(key, None)
            if result["new_episodes"]:
                new[key] = result["new_episodes"]
            if result["queued"]:
                queued[key] = result["queued"]
            if result["upgrades"]:
                upgrades[key] = result["upgrades"]

        await asyncio.gather(*(one(k) for k in keys))
        if self._degraded and not self.blocked and len(errors) < len(keys):
            self._health("ok", "provider answers refreshes again")
        self.last_run = {
            "series": len(keys),
            "refreshed": len(keys) - len(errors) - skipped,
            "failed": errors,
            "skipped": skipped,
            "new_episodes": new,
            "queued": queued,
            "upgrades": upgrades,
            "duration_s": round(time.monotonic() - started, 3),
            "finished_at": iso_timestamp(),
        }
        if keys:
            log.info(
                "refresh pass: %d series, %d new episode(s), %d failed, %d skipped",
                len(keys),
                sum(len(v) for v in new.values()),
                len(errors),
                skipped,
            )
        return self.last_run

    async def refresh_one(self, key: str) -> dict:
        """Refresh one series now: {key, new_episodes, queued, upgrades, baseline}."""

        def before() -> dict | None:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None or s.deleted_at is not None:
                return None
            return {"first": s.last_refreshed is None}

        state = await self.store.run(before)
        if state is None:
            raise NotFound(f"unknown series {key!r}", {"key": key})
        if self.anime is None:
            raise Unavailable("the anime component is not available", {"component": "anime"})
        result = await self.anime.refresh(key)
        eps = list(result.get("new_episodes") or [])
        if state["first"]:  # (AnimeService reports no news on a first read either; we also date it)
            await self.store.run(self._as_baseline, key)
            eps = []
        queued = 0
        if self.queue is None:
            return {"key": key, "new_episodes": eps, "queued": 0, "upgrades": 0, "baseline": state["first"]}
        if self.auto_queue and eps:
            queued = await self._queue(key, eps)
        ups = await self.queue_upgrades(key) if self.upgrade else []
        return {
            "key": key,
            "new_episodes": eps,
            "queued": queued,
            "upgrades": len(ups),
            "baseline": state["first"],
        }

    def _as_baseline(self, key: str) -> None:
        """The first listing of a series found on disk is one moment: the earliest we knew of any episode.

        (Files the scanner found at different times became listed only now; none of them is news.)
        """
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None:
            return
        listed = [e for e in s.episodes if e.listed]
        earliest = min((e.first_seen for e in listed), default=None)
        if earliest is None:
            return
        for e in listed:
            if e.first_seen != earliest:
                e.first_seen = earliest

    async def _queue(
        self, key: str, episodes: list[dict], language: str | None = None, replaces: str | None = None
    ) -> int:
        pairs = [(int(e["season"]), int(e["episode"])) for e in episodes]
        kwargs: dict[str, Any] = {"language": language} if language else {}
        if replaces:
            kwargs["replaces"] = replaces
        added = 0
        # One call per episode: a single duplicate must not keep the others out (add is all-or-nothing).
        for pair in pairs:
            try:
                added += len(await self.queue.add(key, [pair], priority="normal", **kwargs))
            except Conflict:
                pass  # already queued or already in the library: exactly what we wanted
            except ServiceError as exc:
                log.warning("auto-queue of %s S%02dE%02d failed: %s", key, pair[0], pair[1], exc)
        return added

    async def queue_upgrades(self, key: str) -> list[dict]:
        """Queue a better language for every episode on disk in a lower-ranked one (not yet queued).

        A file without a language tag is left alone: its language is unknown, so it cannot be called worse.
        An upgrade that already failed in that language is not queued again on every refresh (the user can
        retry it); it is tried again once the provider lists an even better language.
        """

        def q() -> list[dict]:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None:
                return []
            busy = set()
            failed = set()
            for i in s.queue_items:
                if i.deleted_at is not None:
                    continue
                if i.status in ACTIVE_STATUSES:
                    busy.add((i.season, i.episode))
                elif i.status == FAILED and i.replaces_path:
                    failed.add((i.season, i.episode, i.language))
            out = []
            for e in s.episodes:
                if not e.on_disk_path or not e.on_disk_language or (e.season, e.number) in busy:
                    continue
                lang = better_language(e.on_disk_language, list(e.languages or []), self.languages)
                if lang and (e.season, e.number, lang) not in failed:
                    out.append(
                        {
                            "season": e.season,
                            "episode": e.number,
                            "language": lang,
                            "replaces": e.on_disk_path,
                        }
                    )
            return out

        upgrades = await self.store.run(q)
        done = []
        for up in upgrades:
            if await self._queue(key, [up], language=up["language"], replaces=up["replaces"]):
                done.append(up)
        return done

    async def set_monitored(self, key: str, monitored: bool) -> dict:
        """Turn scheduled refresh of one series on or off; announced as series_updated."""

        def q() -> dict | None:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None or s.deleted_at is not None:
                return None
            if s.monitored != monitored:
                s.monitored = monitored
            return {"key": s.key, "folder": s.folder, "name": s.name, "site": s.site, "monitored": monitored}

        data = await self.store.run(q)
        if data is None:
            raise NotFound(f"unknown series {key!r}", {"key": key})
        self._failures.pop(key, None)
        if self.bus is not None:
            self.bus.publish(SERIES_UPDATED, data)
        return {"key": key, "monitored": monitored}

    # -- background loop ----------------------------------------------------------------------------

    def trigger(self, force: bool = True) -> None:
        """Run a pass now (API / tests); with force every monitored series, not only the due ones."""
        self._force = self._force or force
        self._wake.set()

    def status(self) -> dict:
        return {
            "running": self.running,
            "interval_s": self.interval,
            "auto_queue": self.auto_queue,
            "upgrade_language": self.upgrade,
            "blocked": self.blocked,
            "failing": len(self._failures),
            "last_run": self.last_run,
        }

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="refresh")

    async def _loop(self) -> None:
        tick = max(1.0, min(60.0, self.interval / 20))
        while True:
            force, self._force = self._force, False
            self._wake.clear()
            try:
                if not self.blocked and (force or await self.due_keys()):
                    await self.refresh_all(force=force)
            except Exception:
                log.exception("refresh pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
