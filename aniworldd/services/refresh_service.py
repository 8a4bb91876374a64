"""Keeps monitored series up to date without anyone asking.

Every monitored series is re-read from the provider once per `provider.refresh_interval`, each at its own
jittered moment (stable per key, so 2,000 series spread out instead of hitting the site at once). The HTTP
client's per-host limit and spacing keep the request rate polite; here we only bound how many series are
refreshed at once. New episodes are queued when `downloads.auto_queue` is on; episodes on disk in a
lower-ranked language are queued again in the better one when `downloads.upgrade_language` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import timedelta
from typing import Any

from aniworldd.db import Store
from aniworldd.db.models import ACTIVE_STATUSES, utcnow
from aniworldd.services.errors import Conflict, ServiceError

log = logging.getLogger(__name__)


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
    def __init__(self, store: Store, anime: Any, queue: Any, provider_cfg: dict, downloads_cfg: dict) -> None:
        self.store = store
        self.anime = anime
        self.queue = queue
        self.interval = provider_cfg["refresh_interval"]
        self.jitter = provider_cfg["refresh_jitter"]
        self.max_concurrent = provider_cfg["max_concurrent"]
        self.auto_queue = downloads_cfg["auto_queue"]
        self.upgrade = downloads_cfg["upgrade_language"]
        self.languages = list(downloads_cfg["language"])
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self.last_run: dict | None = None

    async def due_keys(self) -> list[str]:
        def q() -> list[tuple[str, Any]]:
            rows = self.store.e.AnimeSeries.select(lambda s: s.monitored and s.deleted_at is None)
            return [(s.key, s.last_refreshed) for s in rows]

        now = utcnow()
        due = []
        for key, last in await self.store.run(q):
            if last is None or now - last >= timedelta(seconds=self.interval * jitter_factor(key, self.jitter)):
                due.append(key)
        return sorted(due)

    async def refresh_all(self, keys: list[str] | None = None) -> dict:
        """Refresh the given (default: due) series; returns counts and the new episodes per key."""
        keys = await self.due_keys() if keys is None else keys
        sem = asyncio.Semaphore(self.max_concurrent)
        new: dict[str, list[dict]] = {}
        errors: dict[str, str] = {}

        async def one(key: str) -> None:
            async with sem:
                try:
                    result = await self.anime.refresh(key)
                except Exception as exc:  # one broken series must not stop the others
                    errors[key] = str(exc) or type(exc).__name__
                    log.warning("refresh of %s failed: %s", key, errors[key])
                    return
            eps = result.get("new_episodes") or []
            if eps:
                new[key] = eps
            if self.auto_queue and eps:
                await self._queue(key, eps)
            if self.upgrade:
                await self.queue_upgrades(key)

        await asyncio.gather(*(one(k) for k in keys))
        self.last_run = {"refreshed": len(keys) - len(errors), "failed": errors, "new_episodes": new,
                         "finished_at": utcnow().isoformat() + "Z"}
        return self.last_run

    async def _queue(self, key: str, episodes: list[dict], language: str | None = None,
                     replaces: str | None = None) -> None:
        pairs = [(int(e["season"]), int(e["episode"])) for e in episodes]
        kwargs: dict[str, Any] = {"language": language} if language else {}
        if replaces:
            kwargs["replaces"] = replaces
        try:
            await self.queue.add(key, pairs, priority="normal", **kwargs)
        except Conflict:
            pass  # already queued: exactly what we wanted
        except ServiceError as exc:
            log.warning("auto-queue of %s failed: %s", key, exc)

    async def queue_upgrades(self, key: str) -> list[dict]:
        """Queue a better language for every episode on disk in a lower-ranked one (not yet queued)."""

        def q() -> list[dict]:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None:
                return []
            busy = {(i.season, i.episode) for i in s.queue_items if i.status in ACTIVE_STATUSES}
            out = []
            for e in s.episodes:
                if not e.on_disk_path or (e.season, e.number) in busy:
                    continue
                lang = better_language(e.on_disk_language, list(e.languages or []), self.languages)
                if lang:
                    out.append({"season": e.season, "episode": e.number, "language": lang,
                                "replaces": e.on_disk_path})
            return out

        upgrades = await self.store.run(q)
        for up in upgrades:
            await self._queue(key, [up], language=up["language"], replaces=up["replaces"])
        return upgrades

    def trigger(self) -> None:
        """Run a refresh pass now (API / MQTT 'refresh' and tests)."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="refresh")

    async def _loop(self) -> None:
        tick = max(1.0, min(60.0, self.interval / 20))
        while True:
            try:
                if await self.due_keys():
                    await self.refresh_all()
            except Exception:
                log.exception("refresh pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
