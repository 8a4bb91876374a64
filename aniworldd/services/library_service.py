"""LibraryService: what the library looks like to the API, the UI and MQTT.

Read side only, plus `match` (give an unmatched folder its marker). "Missing" is always computed the same
way: episodes the provider lists (Episode.listed) minus what is on disk; with library.missing_by_language an
episode only counts as present when its file is tagged with a wanted language (an untagged file counts as
present: its language is unknown, and re-downloading a whole old library on a guess would be worse).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aniworldd.core.markers import MarkerError, read_marker, write_marker
from aniworldd.core.scanner import list_series_folders
from aniworldd.core.validators import SITES, safe_join, validate_series_key
from aniworldd.db.models import ACTIVE_STATUSES, DOWNLOADING
from aniworldd.db.store import Store
from aniworldd.providers.registry import site_urls
from aniworldd.services.errors import BadRequest, Conflict, NotFound
from aniworldd.services.scan_sync import SqlDialect

ON_DISK = "on_disk"
MISSING = "missing"
QUEUED = "queued"
STATUS_DOWNLOADING = "downloading"


class LibraryService:
    def __init__(self, config: dict, store: Store, scan: Any = None) -> None:
        self.config = config
        self.store = store
        self.scan = scan  # ScanService, optional: used to rescan a folder right after matching it
        self.roots = [os.path.normpath(r) for r in config["library"]["roots"]]
        temp = config.get("downloads", {}).get("temp_dir")
        self.ignore = [os.path.normpath(temp)] if temp else []
        self.wanted = list(config.get("downloads", {}).get("language") or [])
        self.by_language = bool(config["library"].get("missing_by_language"))
        self._dialect = SqlDialect(store.provider)

    def is_missing(self, path: str | None, language: str | None) -> bool:
        if path is None:
            return True
        return self.by_language and language is not None and language not in self.wanted

    # ---- summaries --------------------------------------------------------------------------------

    async def summaries(self, only_missing: bool = True) -> list[dict]:
        """AnimeSummary per live series: {key, name, site, folder, link, missing_episodes, missing_count,
        listed_count, on_disk_count, queued_count, languages}, sorted by name; only those missing something
        unless only_missing is False.

        The counts are what a library card shows ("38/38 on disk, 2 queued"): listed_count = episodes the
        provider lists, on_disk_count = those of them present (missing_count = the rest), queued_count =
        pending or downloading queue items, languages = the languages of the files present (sorted).
        Three queries for the whole library, whatever its size (the UI asks for 2,000 series at once).
        """
        return await self.store.run(self._summaries, only_missing)

    def _summaries(self, only_missing: bool) -> list[dict]:
        cur = self.store.db.get_connection().cursor()
        cur.execute(
            'SELECT "id","key","name","site","folder","link" FROM "anime_series" WHERE "deleted_at" IS NULL'
        )
        series = {
            sid: {
                "key": key,
                "name": name,
                "site": site,
                "folder": folder,
                "link": link,
                "missing_episodes": {},
                "listed_count": 0,
                "on_disk_count": 0,
                "queued_count": 0,
                "languages": set(),
            }
            for sid, key, name, site, folder, link in cur.fetchall()
        }
        cur.execute(
            self._dialect.q(
                'SELECT "series","season","number","on_disk_path","on_disk_language" FROM "episode" '
                'WHERE "listed" = ? ORDER BY "series","season","number"'
            ),
            [True],
        )
        is_missing = self.is_missing
        for sid, season, number, path, lang in cur.fetchall():
            s = series.get(sid)
            if s is None:
                continue
            s["listed_count"] += 1
            if is_missing(path, lang):
                s["missing_episodes"].setdefault(str(season), []).append(number)
            else:
                s["on_disk_count"] += 1
                if lang:
                    s["languages"].add(lang)
        active = list(ACTIVE_STATUSES)
        cur.execute(
            self._dialect.q(
                'SELECT "series", COUNT(*) FROM "download_queue_item" WHERE "deleted_at" IS NULL '
                f'AND "status" IN ({",".join("?" * len(active))}) GROUP BY "series"'
            ),
            active,
        )
        for sid, count in cur.fetchall():
            s = series.get(sid)
            if s is not None:
                s["queued_count"] = int(count)
        out = []
        for s in series.values():
            s["missing_count"] = s["listed_count"] - s["on_disk_count"]
            s["languages"] = sorted(s["languages"])
            if s["missing_count"] or not only_missing:
                out.append(s)
        out.sort(key=lambda s: (s["name"].casefold(), s["key"]))
        return out

    # ---- detail -----------------------------------------------------------------------------------

    async def detail(self, key: str) -> dict:
        """AnimeDetail: the series plus every episode with its status (on_disk, missing, queued,
        downloading). BadRequest for a malformed key, NotFound for an unknown one."""
        try:
            validate_series_key(key)
        except ValueError as exc:
            raise BadRequest(str(exc), {"key": key}) from None
        result = await self.store.run(self._detail, key)
        if result is None:
            raise NotFound(f"unknown series {key!r}", {"key": key})
        return result

    def _detail(self, key: str) -> dict | None:
        e = self.store.e
        s = e.AnimeSeries.get(key=key)
        if s is None or s.deleted_at is not None:
            return None
        queue: dict[tuple[int, int], str] = {}
        active = list(ACTIVE_STATUSES)
        items = e.DownloadQueueItem.select(
            lambda q: q.series == s and q.status in active and q.deleted_at is None
        )
        for q in items:
            k = (q.season, q.episode)
            if q.status == DOWNLOADING:
                queue[k] = STATUS_DOWNLOADING
            else:
                queue.setdefault(k, QUEUED)
        episodes = []
        missing = 0
        for ep in s.episodes.order_by(lambda x: (x.season, x.number)):
            absent = self.is_missing(ep.on_disk_path, ep.on_disk_language)
            if ep.listed and absent:
                missing += 1
            status = queue.get((ep.season, ep.number)) or (MISSING if absent else ON_DISK)
            episodes.append(
                {
                    "season": ep.season,
                    "episode": ep.number,
                    "title": ep.title or ep.title_en or "",
                    "languages": list(ep.languages or []),
                    "status": status,
                    "on_disk_language": ep.on_disk_language,
                    "listed": ep.listed,
                }
            )
        return {
            "key": s.key,
            "title": s.name,
            "name": s.name,
            "site": s.site,
            "folder": s.folder,
            "root": s.root,
            "link": s.link,
            "description": s.description or "",
            "monitored": s.monitored,
            "matched": s.matched,
            "year": s.year,
            "cover": s.cover,
            "genres": list(s.genres or []),
            "missing_count": missing,
            "episodes": episodes,
        }

    # ---- unmatched folders and matching -----------------------------------------------------------

    async def unmatched(self) -> list[dict]:
        """Series folders on disk without a usable marker: [{folder, root, path, reason}]."""
        found = await asyncio.to_thread(self._unmatched_on_disk)
        if self.scan is not None:  # reasons only a scan knows (series deleted, duplicate of a known folder)
            seen = {(u["root"], u["folder"]) for u in found}
            for u in self.scan.unmatched_folders():
                loc = (u["root"], u["folder"])
                if loc not in seen and await asyncio.to_thread(os.path.isdir, os.path.join(*loc)):
                    found.append({**u, "path": os.path.join(*loc)})
            found.sort(key=lambda u: (u["folder"].casefold(), u["root"]))
        return found

    def _unmatched_on_disk(self) -> list[dict]:
        out = []
        keys: dict[str, str] = {}
        for root in self.roots:
            for name in list_series_folders(root, self.ignore) or []:
                path = os.path.join(root, name)
                try:
                    marker = read_marker(path)
                except MarkerError as exc:
                    out.append({"folder": name, "root": root, "path": path, "reason": str(exc)})
                    continue
                except OSError as exc:
                    out.append({"folder": name, "root": root, "path": path, "reason": f"unreadable: {exc}"})
                    continue
                if marker is None:
                    out.append({"folder": name, "root": root, "path": path, "reason": "no marker"})
                elif marker.key in keys:
                    reason = f"duplicate key {marker.key!r}: already used by {keys[marker.key]}"
                    out.append({"folder": name, "root": root, "path": path, "reason": reason})
                else:
                    keys[marker.key] = path
        out.sort(key=lambda u: (u["folder"].casefold(), u["root"]))
        return out

    async def match(self, folder: str, key: str, site: str = "aniworld", root: str | None = None) -> dict:
        """Write the marker for an unmatched folder so it becomes series `key`, then rescan that folder.

        BadRequest: bad key/site/folder name, or the folder is in several roots; NotFound: no such folder;
        Conflict: the folder already belongs to another key, or the key already owns another folder.
        Nothing is written unless every check passes.
        """
        try:
            validate_series_key(key)
        except ValueError as exc:
            raise BadRequest(str(exc), {"key": key}) from None
        if site not in SITES:
            raise BadRequest(f"unknown site {site!r}: expected one of {', '.join(SITES)}", {"site": site})
        if not _plain_folder_name(folder):
            raise BadRequest(
                "folder must be the name of a series folder inside a library root", {"folder": folder}
            )
        roots = self.roots
        if root is not None:
            roots = [r for r in self.roots if r == _norm(root)]
            if not roots:
                raise BadRequest("root is not a configured library root", {"root": root})
        row = await self.store.run(self._series_row, key)
        name = row["name"] if row else folder
        link = (row and row["link"]) or self._link(site, key)
        root = await asyncio.to_thread(self._write_match, folder, key, site, roots, row, name, link)
        if row is not None and row["deleted"]:  # a removed series whose files were kept comes back
            await self.store.run(self._revive, key, root, folder)
        if self.scan is not None:
            await self.scan.scan_folders([(root, folder)])
        return {"key": key, "site": site, "name": name, "link": link, "folder": folder, "root": root}

    def _write_match(
        self, folder: str, key: str, site: str, roots: list[str], row: dict | None, name: str, link: str
    ) -> str:
        """Filesystem half of match(): find the folder, check both conflicts, write the marker."""
        found = []
        for r in roots:
            try:
                path = safe_join(r, folder)
            except ValueError:
                continue
            if path.is_dir() and str(path) not in self.ignore:
                found.append(r)
        if not found:
            raise NotFound(f"no series folder {folder!r} in the library", {"folder": folder})
        if len(found) > 1:
            raise BadRequest(f"folder {folder!r} exists in several roots; say which", {"roots": found})
        root = found[0]
        path = str(safe_join(root, folder))
        try:
            existing = read_marker(path)
        except MarkerError:
            existing = None  # a broken marker is replaced
        if existing is not None and existing.key != key:
            raise Conflict(
                f"folder {folder!r} is already matched to {existing.key!r}",
                {"folder": folder, "key": existing.key},
            )
        if row is not None and row["folder"] and row["root"]:
            other = os.path.join(row["root"], row["folder"])
            if _norm(other) != _norm(path) and _has_marker_for(other, key):
                raise Conflict(
                    f"series {key!r} already has the folder {other}", {"key": key, "folder": row["folder"]}
                )
        write_marker(path, key, site, name, link)
        return root

    def _series_row(self, key: str) -> dict | None:
        s = self.store.e.AnimeSeries.get(key=key)
        if s is None:
            return None
        return {
            "name": s.name,
            "link": s.link,
            "folder": s.folder,
            "root": s.root,
            "deleted": s.deleted_at is not None,
        }

    def _revive(self, key: str, root: str, folder: str) -> None:
        s = self.store.e.AnimeSeries.get(key=key)
        if s is not None and s.deleted_at is not None:
            s.set(deleted_at=None, root=root, folder=folder, matched=True)

    def _link(self, site: str, key: str) -> str:
        base = site_urls(self.config.get("provider", {}), site)[0]
        return f"{base}/serie/{key}" if site == "sto" else f"{base}/anime/stream/{key}"


def _norm(path: str) -> str:
    return os.path.normpath(path)


def _plain_folder_name(folder: Any) -> bool:
    """One visible path component: no separators, not `.`/`..`, not hidden (`.x`, `@eaDir`)."""
    return (
        isinstance(folder, str)
        and bool(folder.strip())
        and "/" not in folder
        and "\\" not in folder
        and "\x00" not in folder
        and not folder.startswith((".", "@"))
    )


def _has_marker_for(path: str, key: str) -> bool:
    try:
        marker = read_marker(path)
    except (MarkerError, OSError):
        return False
    return marker is not None and marker.key == key
