"""Series from the provider into the library: add by link, refresh episode lists, report what is missing.

The provider is only asked through the ProviderSet; the database only through the Store (one DB thread);
the filesystem only for the series folder and its marker. Every change is announced on the EventBus
(SERIES_ADDED, SERIES_UPDATED, NEW_EPISODES) so WebSocket, MQTT and webhooks learn about it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from pony.orm import select

from aniworldd.core.markers import MARKER_NAME, MarkerError, read_marker, write_marker
from aniworldd.core.roots import missing_root_reason
from aniworldd.core.validators import (
    EPISODE_MAX,
    clean_text,
    safe_join,
    sanitize_filename,
    validate_series_key,
)
from aniworldd.db.models import ACTIVE_STATUSES, FAILED, utcnow
from aniworldd.db.services import series_to_dict
from aniworldd.db.store import Store
from aniworldd.events import NEW_EPISODES, SERIES_ADDED, SERIES_REMOVED, SERIES_UPDATED, EventBus
from aniworldd.providers.base import SearchResult, SeriesInfo
from aniworldd.providers.registry import LinkError, ProviderSet
from aniworldd.services import folder_removal
from aniworldd.services.errors import BadRequest, NotFound, Unavailable

log = logging.getLogger(__name__)


def folder_name(info: SeriesInfo) -> str:
    """`Title (Year)` made safe for every filesystem (the year keeps remakes apart)."""
    title = info.title.strip() or info.key
    base = f"{title} ({info.start_year})" if info.start_year else title
    try:
        return sanitize_filename(base)
    except ValueError:
        return sanitize_filename(info.key)


def _episode_status(e: Any, queued: dict[tuple[int, int], str]) -> str:
    if e.on_disk_path:
        return "on_disk"
    state = queued.get((e.season, e.number))
    if state == "downloading":
        return "downloading"
    if state:
        return "queued"
    return "missing"


#: Highest season number taken from a provider page; a page claiming `staffel-3000000000` is hostile or
#: broken, and the number would not even fit the database column.
SEASON_NUMBER_MAX = 1000


def plausible_seasons(info: SeriesInfo) -> dict[int, list]:
    """info.seasons without season or episode numbers no real series has (logged once per call)."""
    kept: dict[int, list] = {}
    dropped = 0
    for season, eps in info.seasons.items():
        if not 0 <= season <= SEASON_NUMBER_MAX:
            dropped += len(eps) or 1
            continue
        good = [ep for ep in eps if 0 <= ep.season <= SEASON_NUMBER_MAX and 0 <= ep.number <= EPISODE_MAX]
        dropped += len(eps) - len(good)
        kept[season] = good
    if dropped:
        log.warning("%s: ignored %d entries with impossible season/episode numbers", info.key, dropped)
    return kept


class AnimeService:
    """Add, refresh, search, and describe series. `library_roots[0]` receives new series folders."""

    def __init__(
        self,
        store: Store,
        providers: ProviderSet,
        library_roots: list[str | Path],
        bus: EventBus | None = None,
        *,
        languages: list[str] | None = None,
        missing_by_language: bool = False,
    ) -> None:
        if not library_roots:
            raise ValueError("at least one library root is needed")
        self.store = store
        self.providers = providers
        self.roots = [Path(r) for r in library_roots]
        self.bus = bus
        self.languages = list(languages or [])
        self.missing_by_language = missing_by_language

    # -- events ------------------------------------------------------------------------------------

    def _publish(self, event: str, data: dict) -> None:
        if self.bus is not None:
            self.bus.publish(event, data)

    # -- search --------------------------------------------------------------------------------------

    async def search(self, query: str, site: str | None = None) -> list[dict]:
        """[{key, name, site, link, year}] from one site or both."""
        if not isinstance(query, str) or not query.strip():
            raise BadRequest("query must be a non-empty string")
        if len(query) > 200:
            raise BadRequest("query is longer than 200 characters")
        try:
            results: list[SearchResult] = await self.providers.search(query.strip(), site=site)
        except ValueError as exc:  # unknown site
            raise BadRequest(str(exc)) from None
        return [r.to_dict() for r in results]

    # -- add -------------------------------------------------------------------------------------------

    async def add(self, link: str) -> dict:
        """Add (or re-read) the series a link points at; returns the series with a season summary.

        Idempotent: adding a key that is already known keeps its folder and refreshes its data
        (`created` is False then). The folder `<first root>/<Title (Year)>` gets the `.aniworld.json`
        marker before anything is stored, so a failure leaves neither a row without a marker nor a
        half-written marker.
        """
        if not isinstance(link, str) or not link.strip() or len(link) > 2000:
            raise BadRequest("link must be a non-empty URL", details={"link": link}, code="invalid_link")
        try:
            provider, key = self.providers.for_link(link)
        except LinkError as exc:
            raise BadRequest(str(exc), details={"link": link}, code="invalid_link") from None
        info = await provider.get_series(key, fresh=True)
        if not info.seasons:
            log.warning("%s: %s lists no episodes yet; adding it anyway", provider.site, key)
        existing = await self.store.run(self._location, key)
        created_dir = False
        if existing and existing["folder"] and existing["root"]:
            root, folder = Path(existing["root"]), existing["folder"]
            target = safe_join(root, folder)
        else:
            root = self.roots[0]
            folder = await self._free_folder(root, folder_name(info), key)
            target = safe_join(root, folder)
        missing = missing_root_reason(root)
        if missing is not None:  # an unmounted share: never create the root on the system disk
            raise Unavailable(missing, {"root": str(root)}, code="library_root_missing")
        try:
            if not target.exists():
                target.mkdir(parents=True)
                created_dir = True
            write_marker(target, key, provider.site, info.title, info.link)
        except OSError as exc:
            raise Unavailable(f"cannot write the series folder {target}: {exc.strerror or exc}") from None
        try:
            result = await self.store.run(self._save, info, str(root), folder)
        except Exception:
            if created_dir:
                shutil.rmtree(target, ignore_errors=True)
            raise
        series = result["series"]
        data = {"key": key, "folder": folder, "name": series["name"], "site": series["site"]}
        if result["created"]:
            self._publish(SERIES_ADDED, {**data, "episode_count": info.episode_count})
        else:
            self._publish(
                SERIES_UPDATED,
                {**data, "new_episodes": len(result["new"]), "episode_count": info.episode_count},
            )
            if result["new"]:
                self._publish(NEW_EPISODES, {**data, "episodes": result["new"]})
        return self._summary(series, info, created=result["created"])

    def _location(self, key: str) -> dict | None:
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None:
            return None
        return {"folder": s.folder, "root": s.root, "deleted": s.deleted_at is not None}

    async def _free_folder(self, root: Path, wanted: str, key: str) -> str:
        """`wanted`, unless another series already owns that folder (DB row or a marker on disk)."""

        def taken_in_db(name: str) -> bool:
            s = self.store.e.AnimeSeries.get(root=str(root), folder=name)
            return s is not None and s.key != key and s.deleted_at is None

        for candidate in (wanted, sanitize_filename(f"{wanted} [{key}]")):
            path = safe_join(root, candidate)
            if await self.store.run(taken_in_db, candidate):
                continue
            if (path / MARKER_NAME).exists() or (path / "key").exists():
                try:
                    marker = read_marker(path)
                except MarkerError:
                    continue
                if marker is not None and marker.key != key:
                    continue
            return candidate
        raise BadRequest(f"no free folder name for {key!r} in {root}", code="folder_conflict")

    # -- refresh ---------------------------------------------------------------------------------------

    async def refresh(self, key: str) -> dict:
        """Re-read a series' episode list from its provider; new episodes get `first_seen` = now.

        Returns {key, folder, new_episodes: [{season, episode, title}], removed: [...], episode_count}.
        """
        row = await self.store.run(self._site_of, key)
        if row is None:
            raise NotFound(f"unknown series {key!r}", details={"key": key})
        provider = self.providers.for_site(row["site"])
        info = await provider.get_series(key, fresh=True)
        # revive=False: a series removed while its page was being read stays removed.
        result = await self.store.run(self._save, info, None, None, False)
        if result is None:
            raise NotFound(f"unknown series {key!r}", details={"key": key})
        series = result["series"]
        data = {"key": key, "folder": series["folder"], "name": series["name"], "site": series["site"]}
        if result["new"]:
            self._publish(NEW_EPISODES, {**data, "episodes": result["new"]})
        self._publish(
            SERIES_UPDATED,
            {
                **data,
                "new_episodes": len(result["new"]),
                "removed": len(result["removed"]),
                "episode_count": info.episode_count,
            },
        )
        return {
            **data,
            "new_episodes": result["new"],
            "removed": result["removed"],
            "episode_count": info.episode_count,
        }

    def _site_of(self, key: str) -> dict | None:
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None or s.deleted_at is not None:
            return None
        return {"site": s.site}

    def _save(
        self, info: SeriesInfo, root: str | None, folder: str | None, revive: bool = True
    ) -> dict | None:
        """Upsert the series and diff its episodes (runs on the DB thread, one transaction).

        `revive` False (a refresh): a removed series is left removed and None is returned."""
        e = self.store.e
        now = utcnow()
        fields = {
            "name": clean_text(info.title),
            "site": info.site,
            "link": info.link,
            "description": clean_text(info.description, multiline=True) or None,
            "year": info.start_year,
            "end_year": info.end_year,
            "cover": info.cover,
            "alt_titles": [clean_text(t) for t in info.alt_titles],
            "genres": [clean_text(g) for g in info.genres],
            "fsk": info.fsk,
            "imdb_id": info.imdb_id,
            "last_refreshed": now,
        }
        s = e.AnimeSeries.get(key=info.key)
        if not revive and (s is None or s.deleted_at is not None):
            return None
        created = s is None or s.deleted_at is not None
        # The first provider read (a new series, or a row the scanner made from a marker) only populates;
        # after that every episode we did not know yet is a new one.
        initial = created or s.last_refreshed is None
        if s is None:
            s = e.AnimeSeries(key=info.key, folder=folder, root=root, matched=True, **fields)
        else:
            s.set(**fields)
            s.deleted_at = None
            if folder and not s.folder:
                s.folder, s.root, s.matched = folder, root, True
        known = {(ep.season, ep.number): ep for ep in s.episodes}
        listed = {(ep.season, ep.number): ep for eps in plausible_seasons(info).values() for ep in eps}
        new: list[dict] = []
        for (season, number), ep in sorted(listed.items()):
            row = known.get((season, number))
            title, title_en = clean_text(ep.title_de) or None, clean_text(ep.title_en) or None
            if row is None:
                e.Episode(
                    series=s,
                    season=season,
                    number=number,
                    title=title,
                    title_en=title_en,
                    languages=list(ep.languages),
                    listed=True,
                    first_seen=now,
                )
                if not initial:
                    new.append(
                        {
                            "season": season,
                            "episode": number,
                            "title": ep.title,
                            "languages": list(ep.languages),
                        }
                    )
            else:
                values = {
                    "title": title,
                    "title_en": title_en,
                    "languages": list(ep.languages),
                    "listed": True,
                }
                if any(getattr(row, k) != v for k, v in values.items()):
                    row.set(**values)
        removed: list[dict] = []
        if listed:  # an empty listing is a broken page, not a series that lost every episode
            for (season, number), row in sorted(known.items()):
                if (season, number) not in listed and row.listed:
                    row.listed = False
                    removed.append({"season": season, "episode": number})
        else:
            log.warning("%s: the provider listed no episodes; keeping the known ones", info.key)
        s.flush()
        return {"series": series_to_dict(s), "created": created, "new": new, "removed": removed}

    # -- reading ------------------------------------------------------------------------------------------

    def _summary(self, series: dict, info: SeriesInfo, *, created: bool) -> dict:
        seasons = {str(n): len(eps) for n, eps in sorted(plausible_seasons(info).items())}
        return {**series, "created": created, "seasons": seasons, "episode_count": info.episode_count}

    def _is_missing(self, e: Any) -> bool:
        if not e.listed:
            return False
        if not e.on_disk_path:
            return True
        # A file with an untagged language counts as present (as in the scanner's count).
        return bool(
            self.missing_by_language
            and self.languages
            and e.on_disk_language is not None
            and e.on_disk_language not in self.languages
        )

    async def detail(self, key: str) -> dict:
        """The series with every episode: {season, episode, title, title_en, languages, status, path}."""

        def q() -> dict | None:
            s = self.store.e.AnimeSeries.get(key=key)
            if s is None or s.deleted_at is not None:
                return None
            queued = {(i.season, i.episode): i.status for i in s.queue_items if i.status in ACTIVE_STATUSES}
            episodes = []
            missing: dict[str, list[int]] = {}
            for e in s.episodes.order_by(lambda x: (x.season, x.number)):
                status = _episode_status(e, queued)
                if self._is_missing(e):
                    missing.setdefault(str(e.season), []).append(e.number)
                episodes.append(
                    {
                        "season": e.season,
                        "episode": e.number,
                        "title": e.title or e.title_en or "",
                        "title_en": e.title_en or "",
                        "languages": list(e.languages or []),
                        "listed": e.listed,
                        "status": status,
                        "path": e.on_disk_path,
                        "language": e.on_disk_language,
                    }
                )
            data = series_to_dict(s)
            data["episodes"] = episodes
            data["missing_episodes"] = missing
            data["missing_count"] = sum(len(v) for v in missing.values())
            return data

        result = await self.store.run(q)
        if result is None:
            raise NotFound(f"unknown series {key!r}", details={"key": key})
        return result

    async def missing_episodes(self, key: str) -> dict[str, list[int]]:
        """{"<season>": [episode, ...]} of listed episodes without a file (season "0" = movies)."""
        return (await self.detail(key))["missing_episodes"]

    async def list_missing(self, include_complete: bool = False) -> list[dict]:
        """Series with missing episodes: {key, name, site, folder, link, missing_episodes, missing_count}."""

        def q() -> list[dict]:
            e = self.store.e
            series: dict[int, dict] = {}
            rows = e.AnimeSeries.select(lambda s: s.deleted_at is None).order_by(lambda s: s.name)
            for s in rows:
                series[s.id] = {
                    "key": s.key,
                    "name": s.name,
                    "site": s.site,
                    "folder": s.folder,
                    "link": s.link,
                    "missing_episodes": {},
                    "missing_count": 0,
                }
            # One tuple query for the missing rows only: no Episode objects are built (50k rows stay cheap).
            if self.missing_by_language and self.languages:
                wanted = list(self.languages)
                missing = select(
                    (x.series.id, x.season, x.number)
                    for x in e.Episode
                    if x.listed
                    and x.series.deleted_at is None
                    and (
                        x.on_disk_path is None
                        or (x.on_disk_language is not None and x.on_disk_language not in wanted)
                    )
                )
            else:
                missing = select(
                    (x.series.id, x.season, x.number)
                    for x in e.Episode
                    if x.listed and x.series.deleted_at is None and x.on_disk_path is None
                )
            for sid, season, number in sorted(missing[:]):
                entry = series.get(sid)
                if entry is not None:
                    entry["missing_episodes"].setdefault(str(season), []).append(number)
                    entry["missing_count"] += 1
            return [v for v in series.values() if v["missing_count"] or include_complete]

        return await self.store.run(q)

    async def episode_links(self, key: str, season: int, episode: int) -> list:
        """The hoster offers of one episode (for the download side)."""
        row = await self.store.run(self._site_of, key)
        if row is None:
            raise NotFound(f"unknown series {key!r}", details={"key": key})
        return await self.providers.for_site(row["site"]).get_episode_links(key, season, episode)

    # -- remove --------------------------------------------------------------------------------------------

    async def remove(self, key: str, *, delete_files: bool = False, queue: Any = None) -> dict:
        """Remove a series from the library: its row is soft-deleted (history kept; adding it again
        revives it), its queue items are cancelled and hidden through `queue.remove` (a running download
        is killed, its temp files deleted), and with `delete_files` its folder is deleted too.

        Every refusal (unknown key 404, a folder outside the configured roots or behind a symlink 409,
        an unmounted root or an unwritable folder 503) comes before anything changes. Files kept: the
        folder keeps its marker, and the scanner lists it as unmatched ("series was deleted") instead of
        adding it back; adding the series again, or matching the folder, brings it back.
        """
        try:
            key = validate_series_key(key)
        except ValueError as exc:
            raise BadRequest(str(exc), {"key": key}) from None
        row = await self.store.run(self._removal_row, key)
        if row is None:
            raise NotFound(f"unknown series {key!r}", details={"key": key})
        target = None
        if delete_files:
            target = await asyncio.to_thread(
                folder_removal.check_deletable, row["root"], row["folder"], [str(r) for r in self.roots]
            )
        cancel = await self.store.run(self._soft_delete, key)
        if cancel is None:  # removed by someone else in between
            raise NotFound(f"unknown series {key!r}", details={"key": key})
        cancelled = 0
        if queue is not None:
            for item_id in cancel:
                try:
                    await queue.remove(item_id)
                    cancelled += 1
                except NotFound:
                    pass
        files_deleted, warning = False, None
        if target is not None and target.exists:
            try:
                trash = await asyncio.to_thread(folder_removal.move_aside, target, key)
            except OSError as exc:
                await self.store.run(self._undelete, key)
                raise Unavailable(
                    f"cannot delete {target.path}: {exc.strerror or exc}; the series was kept"
                    + (f" (its {cancelled} queued download(s) were cancelled)" if cancelled else ""),
                    {"key": key, "path": target.path},
                    code="files_not_deleted",
                ) from None
            warning = await asyncio.to_thread(folder_removal.purge, trash)
            files_deleted = True
            await self.store.run(self._forget_files, key)
        data = {"key": key, "folder": row["folder"], "name": row["name"], "site": row["site"]}
        result = {
            **data,
            "root": row["root"],
            "files_deleted": files_deleted,
            "files_kept": bool(row["folder"]) and not files_deleted,
            "cancelled_downloads": cancelled,
        }
        if warning:
            result["warning"] = warning
        self._publish(SERIES_REMOVED, {**data, "files_deleted": files_deleted})
        log.info(
            "removed series %s%s (%d queued download(s) cancelled)",
            key,
            " and its folder" if files_deleted else "",
            cancelled,
        )
        return result

    def _removal_row(self, key: str) -> dict | None:
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None or s.deleted_at is not None:
            return None
        return {"name": s.name, "site": s.site, "folder": s.folder, "root": s.root}

    def _soft_delete(self, key: str) -> list[int] | None:
        """Mark the series deleted; returns the ids of its queue items the queue must cancel and remove
        (pending, downloading, failed: they may own temp files). Finished ones are only hidden."""
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None or s.deleted_at is not None:
            return None
        now = utcnow()
        s.deleted_at = now
        cancel = []
        for item in s.queue_items:
            if item.deleted_at is not None:
                continue
            if item.status in (*ACTIVE_STATUSES, FAILED):
                cancel.append(item.id)
            else:
                item.deleted_at = now
        return sorted(cancel)

    def _undelete(self, key: str) -> None:
        """Take back _soft_delete (the folder could not be deleted): the row and the finished queue
        items it hid (same stamp) come back; cancelled downloads stay cancelled."""
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None or s.deleted_at is None:
            return
        stamp = s.deleted_at
        for item in s.queue_items:
            if item.deleted_at == stamp:
                item.deleted_at = None
        s.deleted_at = None

    def _forget_files(self, key: str) -> None:
        """After the folder was deleted: no episode is on disk; rows that only existed for a file go."""
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None:
            return
        for ep in list(s.episodes):
            if not ep.listed:
                ep.delete()
            elif ep.on_disk_path is not None or ep.on_disk_language is not None:
                ep.on_disk_path = None
                ep.on_disk_language = None
