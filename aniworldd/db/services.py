"""Lookups by identity. Series are found by `key` or by id, never by folder (the identity rule)."""

from __future__ import annotations

from typing import Any

from aniworldd.db.models import utcnow
from aniworldd.db.store import Store


def series_to_dict(s: Any) -> dict:
    return {
        "id": s.id,
        "key": s.key,
        "name": s.name,
        "site": s.site,
        "folder": s.folder,
        "root": s.root,
        "link": s.link,
        "description": s.description,
        "year": s.year,
        "end_year": s.end_year,
        "cover": s.cover,
        "alt_titles": list(s.alt_titles or []),
        "genres": list(s.genres or []),
        "fsk": s.fsk,
        "imdb_id": s.imdb_id,
        "monitored": s.monitored,
        "matched": s.matched,
        "last_refreshed": s.last_refreshed,
        "last_scanned": s.last_scanned,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def episode_to_dict(e: Any) -> dict:
    return {
        "id": e.id,
        "key": e.series.key,
        "season": e.season,
        "episode": e.number,
        "title": e.title or e.title_en or "",
        "title_en": e.title_en,
        "languages": list(e.languages or []),
        "listed": e.listed,
        "on_disk_path": e.on_disk_path,
        "on_disk_language": e.on_disk_language,
        "first_seen": e.first_seen,
    }


def queue_item_to_dict(q: Any) -> dict:
    """The seed's DownloadItem plus the fields the UI and CLI show."""
    s = q.series
    return {
        "id": q.id,
        "serie_id": s.key,
        "key": s.key,
        "serie_folder": s.folder,
        "serie_name": s.name,
        "season": q.season,
        "episode": q.episode,
        "language": q.language,
        "status": q.status,
        "priority": q.priority,
        "progress": round(q.progress, 2),
        "downloaded_bytes": q.downloaded_bytes,
        "total_bytes": q.total_bytes,
        "speed": q.speed,
        "eta": q.eta,
        "error": q.error,
        "attempts": q.attempts,
        "hoster": q.hoster,
        "created_at": q.created_at,
        "started_at": q.started_at,
        "completed_at": q.completed_at,
    }


class AnimeSeriesService:
    """Key-based access to series rows; soft-deleted rows are invisible unless asked for."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get_by_key(self, key: str, include_deleted: bool = False) -> dict | None:
        def q() -> dict | None:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None or (s.deleted_at is not None and not include_deleted):
                return None
            return series_to_dict(s)

        return await self.store.run(q)

    async def get_by_id(self, series_id: int) -> dict | None:
        def q() -> dict | None:
            s = self.store.e.AnimeSeries.get(id=series_id)
            return series_to_dict(s) if s is not None and s.deleted_at is None else None

        return await self.store.run(q)

    async def list(self) -> list[dict]:
        def q() -> list[dict]:
            rows = self.store.e.AnimeSeries.select(lambda s: s.deleted_at is None).order_by(lambda s: s.name)
            return [series_to_dict(s) for s in rows]

        return await self.store.run(q)

    async def upsert(self, key: str, **fields: Any) -> dict:
        """Create or update by key; a soft-deleted row is revived (its history is kept)."""

        def q() -> dict:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None:
                s = self.store.e.AnimeSeries(key=key, **fields)
                s.flush()
            else:
                s.set(**fields)
                s.deleted_at = None
            return series_to_dict(s)

        return await self.store.run(q)

    async def soft_delete(self, key: str) -> bool:
        def q() -> bool:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None or s.deleted_at is not None:
                return False
            s.deleted_at = utcnow()
            return True

        return await self.store.run(q)

    async def episodes(self, key: str) -> list[dict]:
        def q() -> list[dict]:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None:
                return []
            return [episode_to_dict(e) for e in s.episodes.order_by(lambda e: (e.season, e.number))]

        return await self.store.run(q)
