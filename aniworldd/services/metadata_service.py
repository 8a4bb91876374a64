"""Writes tvshow.nfo and poster.jpg into series folders for media servers.

A user may hand-edit an NFO (fix a title, add a tag); we remember the hash of what we wrote and never
overwrite a file whose content is no longer ours. A poster that exists is likewise left alone.

In the daemon it follows the bus: series_added / series_updated (add, refresh, scan) lead to a write, one
series at a time, so a refresh pass over 2,000 series never fetches covers in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aniworldd.core.nfo import build_tvshow_nfo
from aniworldd.db import Store
from aniworldd.db.services import series_to_dict
from aniworldd.events import SERIES_ADDED, SERIES_UPDATED, EventBus
from aniworldd.fileio import atomic_write

log = logging.getLogger(__name__)

FetchBytes = Callable[[str], Awaitable[bytes]]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MetadataService:
    def __init__(self, store: Store, enabled: bool, fetch: FetchBytes | None = None) -> None:
        self.store = store
        self.enabled = enabled
        self.fetch = fetch
        self._task: asyncio.Task | None = None
        self._sub = None
        self.last_result: dict[str, dict] = {}

    async def start(self, bus: EventBus) -> None:
        """Write metadata whenever a series is added or updated (nothing to do when disabled)."""
        if not self.enabled or self._task is not None:
            return
        self._sub = bus.subscribe({SERIES_ADDED, SERIES_UPDATED})
        self._task = asyncio.create_task(self._follow(), name="metadata")

    async def _follow(self) -> None:
        assert self._sub is not None
        async for event in self._sub:
            key = event.data.get("key")
            if not key:
                continue
            try:
                self.last_result[key] = await self.write(key)
            except Exception:  # metadata is a courtesy to media servers; never let it stop the loop
                log.exception("metadata for %s not written", key)

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def write(self, key: str) -> dict:
        """Write what is missing or still ours; returns {"nfo": written|kept_user_edit|..., "poster": ...}."""
        if not self.enabled:
            return {"nfo": "disabled", "poster": "disabled"}

        def load() -> tuple[dict, str | None] | None:
            s = self.store.e.AnimeSeries.get(key=key)
            return (series_to_dict(s), s.nfo_hash) if s is not None else None

        loaded = await self.store.run(load)
        if loaded is None:
            return {"nfo": "unknown_series", "poster": "unknown_series"}
        series, known_hash = loaded
        if not series["folder"] or not series["root"]:
            return {"nfo": "no_folder", "poster": "no_folder"}
        folder = Path(series["root"]) / series["folder"]
        if not folder.is_dir():
            return {"nfo": "no_folder", "poster": "no_folder"}
        result = {"nfo": await asyncio.to_thread(self._write_nfo, folder, series, known_hash)}
        if result["nfo"] == "written":
            new_hash = sha256_bytes((folder / "tvshow.nfo").read_bytes())

            def remember() -> None:
                self.store.e.AnimeSeries.get(key=key).nfo_hash = new_hash

            await self.store.run(remember)
        result["poster"] = await self._write_poster(folder, series.get("cover"))
        return result

    def _write_nfo(self, folder: Path, series: dict, known_hash: str | None) -> str:
        path = folder / "tvshow.nfo"
        text = build_tvshow_nfo(series).encode("utf-8")
        if path.exists():
            current = sha256_bytes(path.read_bytes())
            if current == sha256_bytes(text):
                return "unchanged"
            if current != known_hash:
                return "kept_user_edit"
        atomic_write(path, text, 0o644)
        return "written"

    async def _write_poster(self, folder: Path, cover: str | None) -> str:
        path = folder / "poster.jpg"
        if path.exists():
            return "exists"
        if not cover or self.fetch is None:
            return "no_cover"
        try:
            data = await self.fetch(cover)
        except Exception as exc:  # a missing poster is cosmetic; never fail an add for it
            log.info("poster for %s not fetched: %s", folder.name, exc)
            return "fetch_failed"
        await asyncio.to_thread(atomic_write, path, data, 0o644)
        return "written"


#: A cover larger than this is not a cover.
MAX_POSTER_BYTES = 10 * 1024 * 1024


def provider_fetcher(client: Any) -> FetchBytes:
    """GET image bytes through the provider HTTP client (its transport, DoH, proxy and host gate)."""

    async def fetch(url: str) -> bytes:
        from aniworldd.providers.base import ProviderError

        try:
            page = await client.fetch(
                "GET",
                url,
                headers={"Accept": "image/avif,image/webp,image/*,*/*;q=0.8", "Sec-Fetch-Dest": "image"},
                max_bytes=MAX_POSTER_BYTES,
            )
        except ProviderError as exc:
            raise OSError(str(exc)) from None
        if page.status >= 400:
            raise OSError(f"HTTP {page.status} for {url}")
        ctype = page.headers.get("content-type", "")
        if not ctype.startswith("image/"):
            raise OSError(f"not an image ({ctype or 'no content type'}): {url}")
        data = page.body
        if not data:
            raise OSError(f"empty cover: {url}")
        return data

    return fetch
