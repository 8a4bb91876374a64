"""Disk scan -> database, writing only differences (used by ScanService on the DB thread).

Reading 100,000 episode rows costs more than walking the whole library with a warm directory cache, so the
episode rows are kept in memory between scans (a snapshot per series) and re-read only where the database
changed. "Changed" is detected cheaply: a global fingerprint (row count and newest `updated_at` of both
tables, ~10 ms) and, when that moved, a per-series fingerprint (count, newest `updated_at`). Every writer
goes through Pony, whose entities stamp `updated_at` on insert and update, so any change by another service
(the provider listing episodes, the downloader recording a file) invalidates exactly the series it touched.

Writes are plain executemany statements in a few transactions (one per BATCH_SERIES changed series); series
are created through Pony so every default of the entity applies.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pony.orm import commit
from pony.utils import datetime2timestamp

from aniworldd.core.markers import MarkerError, read_marker
from aniworldd.core.scanner import LibraryScan, SeriesFolder, list_series_folders
from aniworldd.db.models import utcnow
from aniworldd.db.store import Store
from aniworldd.events import SERIES_ADDED, SERIES_UPDATED

log = logging.getLogger(__name__)

Folder = tuple[str, str]
#: (id, listed, on_disk_path, on_disk_language) per (season, number)
EpisodeRows = dict[tuple[int, int], tuple[int, bool, str | None, str | None]]

BATCH_SERIES = 500
CHUNK = 500


class SqlDialect:
    """The two differences between SQLite and PostgreSQL that raw statements care about."""

    def __init__(self, provider: str) -> None:
        self.pg = provider == "postgres"

    def q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def ts(self, moment: datetime) -> Any:
        return moment if self.pg else datetime2timestamp(moment)


def count_missing(store: Store, wanted: list[str] | None) -> int:
    """Listed episodes of live series without a file (with `wanted`: or only in an unwanted, tagged
    language; an untagged file counts as present because its language is unknown). Inside a db_session."""
    dialect = SqlDialect(store.provider)
    sql = (
        'SELECT COUNT(*) FROM "episode" e JOIN "anime_series" s ON s."id" = e."series" '
        'WHERE e."listed" = ? AND s."deleted_at" IS NULL AND (e."on_disk_path" IS NULL'
    )
    params: list[Any] = [True]
    if wanted:
        marks = ",".join("?" * len(wanted))
        sql += f' OR (e."on_disk_language" IS NOT NULL AND e."on_disk_language" NOT IN ({marks}))'
        params.extend(wanted)
    cur = store.db.get_connection().cursor()
    cur.execute(dialect.q(sql + ")"), params)
    return int(cur.fetchone()[0])


@dataclass
class SyncResult:
    events: list[tuple[str, dict]] = field(default_factory=list)
    missing: int = 0
    #: Folders found with a marker that still cannot be used (duplicate key, deleted series).
    errors: dict[Folder, str] = field(default_factory=dict)
    #: Distinct episodes on disk per folder.
    episodes: dict[Folder, int] = field(default_factory=dict)
    #: Keys of series whose folder disappeared in this scan.
    vanished: list[str] = field(default_factory=list)
    #: Rows written (0 for an unchanged library).
    changes: int = 0


@dataclass
class _Writes:
    inserts: list[tuple] = field(default_factory=list)
    updates: list[tuple] = field(default_factory=list)
    clears: list[tuple] = field(default_factory=list)
    deletes: list[tuple] = field(default_factory=list)
    series: list[tuple] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)

    def size(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.clears) + len(self.deletes)


class LibrarySync:
    """Owns the in-memory episode snapshot; every method runs on the DB thread inside a db_session."""

    def __init__(
        self, store: Store, roots: list[str], ignore: list[str], wanted: list[str], missing_by_language: bool
    ) -> None:
        self.store = store
        self.d = SqlDialect(store.provider)
        self.roots = roots
        self.ignore = ignore
        self.wanted = wanted
        self.missing_by_language = missing_by_language
        self._eps: dict[int, EpisodeRows] = {}
        self._series_fp: dict[int, tuple] = {}
        self._fp: tuple | None = None
        self._missing: int | None = None
        self._written: set[int] = set()

    # ---- reading ----------------------------------------------------------------------------------

    def _cursor(self) -> Any:
        # get_connection() (re)opens the session's transaction, also after a commit().
        return self.store.db.get_connection().cursor()

    def _global_fp(self) -> tuple:
        cur = self._cursor()
        cur.execute('SELECT COUNT(*), MAX("updated_at") FROM "episode"')
        eps = tuple(cur.fetchone())
        cur.execute('SELECT COUNT(*), MAX("updated_at") FROM "anime_series"')
        return eps + tuple(cur.fetchone())

    def _per_series_fp(self) -> dict[int, tuple]:
        cur = self._cursor()
        cur.execute('SELECT "series", COUNT(*), MAX("updated_at") FROM "episode" GROUP BY "series"')
        return {sid: (n, stamp) for sid, n, stamp in cur.fetchall()}

    def _refresh_snapshot(self) -> tuple:
        """Drop the snapshot of every series whose rows changed since we last looked."""
        fp = self._global_fp()
        if fp != self._fp:
            fresh = self._per_series_fp()
            for sid in set(self._series_fp) | set(fresh):
                if self._series_fp.get(sid) != fresh.get(sid):
                    self._eps.pop(sid, None)
            self._series_fp = fresh
        return fp

    def _load(self, ids: list[int]) -> None:
        """Fill the snapshot for `ids` (one query for all when most are needed)."""
        need = [sid for sid in ids if sid not in self._eps]
        if not need:
            return
        base = (
            'SELECT "series","season","number","id","listed","on_disk_path","on_disk_language" FROM "episode"'
        )
        cur = self._cursor()
        rows: list[tuple] = []
        if len(need) > len(self._series_fp) // 2:
            wanted = set(need)
            cur.execute(base)
            rows = [r for r in cur.fetchall() if r[0] in wanted]
        else:
            for i in range(0, len(need), CHUNK):
                chunk = need[i : i + CHUNK]
                cur.execute(
                    self.d.q(base + ' WHERE "series" IN ({})'.format(",".join("?" * len(chunk)))), chunk
                )
                rows.extend(cur.fetchall())
        for sid in need:
            self._eps[sid] = {}
        for sid, season, number, eid, listed, path, lang in rows:
            self._eps[sid][(season, number)] = (eid, bool(listed), path, lang)

    def _series_rows(self) -> dict[str, list]:
        """key -> [id, name, link, folder, root, matched, deleted, site]"""
        cur = self._cursor()
        cur.execute(
            'SELECT "id","key","name","link","folder","root","matched","deleted_at","site" '
            'FROM "anime_series"'
        )
        return {
            key: [sid, name, link, folder, root, bool(matched), deleted is not None, site]
            for sid, key, name, link, folder, root, matched, deleted, site in cur.fetchall()
        }

    # ---- the sync ---------------------------------------------------------------------------------

    def rank(self, language: str | None) -> int:
        wanted = self.wanted
        if language is None:
            return len(wanted)
        try:
            return wanted.index(language)
        except ValueError:
            return len(wanted) + 1

    def best_files(self, folder: SeriesFolder) -> dict[tuple[int, int], tuple[str, str | None]]:
        """One file per (season, episode): the most wanted language, then the shortest path."""
        best: dict[tuple[int, int], tuple[str, str | None]] = {}
        rank = self.rank
        for f in folder.files:
            for ep in f.episodes:
                k = (f.season, ep)
                cur = best.get(k)
                if cur is None:
                    best[k] = (f.path, f.language)
                elif cur[0] != f.path:
                    a, b = rank(f.language), rank(cur[1])
                    if a < b or (a == b and (len(f.path), f.path) < (len(cur[0]), cur[0])):
                        best[k] = (f.path, f.language)
        return best

    def sync(
        self, scan: LibraryScan, scope: set[Folder] | None, known: dict[Folder, str | None] | None = None
    ) -> SyncResult:
        """Make the database match `scan`. `scope` None = full scan, else the (root, folder) pairs that
        were looked at. `known` maps folders to their key as of the last scan (duplicate detection)."""
        res = SyncResult()
        previous_fp = self._fp
        fp = self._refresh_snapshot()
        by_key = self._series_rows()
        by_loc = {(os.path.normpath(r[4]), r[3]): k for k, r in by_key.items() if r[3] and r[4]}

        unavailable = self._unavailable_roots(scan, by_loc, scope)
        if scope is None:
            _prefer_known_folder(scan, by_loc)
            responsible = {k for k, row in by_key.items() if not row[6]}
        else:
            self._partial_duplicates(scan, by_key, scope, known or {}, res.errors)
            responsible = {by_loc[loc] for loc in scope if loc in by_loc}
            responsible |= {
                f.key
                for f in scan.folders
                if f.key in by_key and (os.path.normpath(f.root), f.folder) not in res.errors
            }
            responsible = {k for k in responsible if not by_key[k][6]}
        responsible = {
            k for k in responsible if not (by_key[k][4] and os.path.normpath(by_key[k][4]) in unavailable)
        }
        for f in scan.folders:
            row = by_key.get(f.key) if f.key else None
            if row is not None and row[6]:
                res.errors[(os.path.normpath(f.root), f.folder)] = (
                    f"series {f.key!r} was deleted in aniworldd"
                )
        self._load([by_key[k][0] for k in responsible])

        now = utcnow()
        now_db = self.d.ts(now)
        w = _Writes()
        pending = 0
        found: set[str] = set()
        for folder in scan.folders:
            loc = (os.path.normpath(folder.root), folder.folder)
            key = folder.key
            if key is None or loc in res.errors or (key in by_key and key not in responsible):
                continue  # unmatched, duplicate, deleted series or unavailable root: nothing to write
            row = by_key.get(key)
            if row is None:
                row = by_key[key] = self._create_series(folder, now, res)
                responsible.add(key)
                self._eps[row[0]] = {}
            else:
                self._update_series(folder, row, now_db, w, res)
            found.add(key)
            sid = row[0]
            eps = self._eps[sid]
            best = self.best_files(folder)
            res.episodes[loc] = len(best)
            before = w.size()
            for k, (path, lang) in best.items():
                old = eps.get(k)
                if old is None:
                    w.inserts.append((sid, k[0], k[1], "[]", False, path, lang, now_db, now_db, now_db))
                elif old[2] != path or (old[3] != lang and lang is not None):
                    # An untagged name says nothing about the language: keep what the downloader recorded.
                    w.updates.append((path, lang, now_db, old[0]))
            if len(eps) > len(best) or w.size() != before:
                for k in eps.keys() - best.keys():
                    self._forget_file(eps[k], sid, now_db, w)
            if w.size() != before:
                w.touched.add(sid)
                pending += 1
            if pending >= BATCH_SERIES:
                res.changes += self._flush(w, now_db)
                pending = 0

        for key in sorted(responsible - found):  # folder gone (or lost its marker)
            row = by_key[key]
            before = w.size()
            for old in self._eps.get(row[0], {}).values():
                self._forget_file(old, row[0], now_db, w)
            if w.size() != before:
                w.touched.add(row[0])
            if row[5] and row[3]:
                w.series.append((row[3], row[4], False, row[2], now_db, now_db, row[0]))
                res.events.append(
                    (SERIES_UPDATED, {"key": key, "folder": row[3], "name": row[1], "site": row[7]})
                )
                res.vanished.append(key)
        res.changes += self._flush(w, now_db)

        if res.changes:
            self._after_write()
        else:
            self._fp = fp
        if res.changes or self._missing is None or fp != previous_fp:
            self._missing = count_missing(self.store, self.wanted if self.missing_by_language else None)
        res.missing = self._missing
        return res

    def _forget_file(self, old: tuple, sid: int, now_db: Any, w: _Writes) -> None:
        eid, listed, path, _lang = old
        if path is None:
            return
        if listed:
            w.clears.append((now_db, eid))
        else:
            w.deletes.append((eid,))  # a row that only existed for the file

    def _create_series(self, folder: SeriesFolder, now: datetime, res: SyncResult) -> list:
        marker = folder.marker
        assert marker is not None
        s = self.store.e.AnimeSeries(
            key=marker.key,
            name=marker.name or folder.folder,
            site=marker.site,
            link=marker.link,
            folder=folder.folder,
            root=folder.root,
            matched=True,
            last_scanned=now,
        )
        s.flush()
        res.changes += 1
        res.events.append((SERIES_ADDED, {"key": s.key, "folder": s.folder, "name": s.name, "site": s.site}))
        return [s.id, s.name, s.link, s.folder, s.root, True, False, s.site]

    def _update_series(
        self, folder: SeriesFolder, row: list, now_db: Any, w: _Writes, res: SyncResult
    ) -> None:
        moved = row[3] != folder.folder or row[4] != folder.root or not row[5]
        link = row[2] or (folder.marker.link if folder.marker else None)
        if not moved and link == row[2]:
            return
        w.series.append((folder.folder, folder.root, True, link, now_db, now_db, row[0]))
        if moved:
            res.events.append(
                (SERIES_UPDATED, {"key": folder.key, "folder": folder.folder, "name": row[1], "site": row[7]})
            )
        row[2:6] = [link, folder.folder, folder.root, True]

    def _flush(self, w: _Writes, now_db: Any) -> int:
        c = self._cursor()
        q = self.d.q
        if w.inserts:
            c.executemany(
                q(
                    'INSERT INTO "episode" ("series","season","number","languages","listed","on_disk_path",'
                    '"on_disk_language","first_seen","created_at","updated_at") VALUES (?,?,?,?,?,?,?,?,?,?)'
                ),
                w.inserts,
            )
        if w.updates:
            c.executemany(
                q('UPDATE "episode" SET "on_disk_path"=?,"on_disk_language"=?,"updated_at"=? WHERE "id"=?'),
                w.updates,
            )
        if w.clears:
            c.executemany(
                q(
                    'UPDATE "episode" SET "on_disk_path"=NULL,"on_disk_language"=NULL,"updated_at"=? '
                    'WHERE "id"=?'
                ),
                w.clears,
            )
        if w.deletes:
            c.executemany(q('DELETE FROM "episode" WHERE "id"=?'), w.deletes)
        if w.series:
            c.executemany(
                q(
                    'UPDATE "anime_series" SET "folder"=?,"root"=?,"matched"=?,"link"=?,"last_scanned"=?,'
                    '"updated_at"=? WHERE "id"=?'
                ),
                w.series,
            )
        # A series whose files changed gets last_scanned; an unchanged one is not written at all.
        stamps = [(now_db, now_db, sid) for sid in w.touched - {s[-1] for s in w.series}]
        if stamps:
            c.executemany(q('UPDATE "anime_series" SET "last_scanned"=?,"updated_at"=? WHERE "id"=?'), stamps)
        n = w.size() + len(w.series) + len(stamps)
        for sid in w.touched | {s[-1] for s in w.series}:
            self._eps.pop(sid, None)  # ids of new rows are unknown: re-read after the commit
            self._written.add(sid)
        for lst in (w.inserts, w.updates, w.clears, w.deletes, w.series):
            lst.clear()
        w.touched.clear()
        if n:
            commit()
        return n

    def _after_write(self) -> None:
        """Re-read the fingerprints and rows of the series we changed, so the next scan starts warm.
        Nobody else writes inside our transaction, so only those series can differ."""
        written, self._written = sorted(self._written), set()
        self._fp = self._global_fp()
        cur = self._cursor()
        for i in range(0, len(written), CHUNK):
            chunk = written[i : i + CHUNK]
            for sid in chunk:
                self._series_fp.pop(sid, None)
            sql = (
                'SELECT "series", COUNT(*), MAX("updated_at") FROM "episode" '
                'WHERE "series" IN ({}) GROUP BY "series"'
            )
            cur.execute(self.d.q(sql.format(",".join("?" * len(chunk)))), chunk)
            self._series_fp.update({sid: (n, stamp) for sid, n, stamp in cur.fetchall()})
        self._load(written)

    def _unavailable_roots(
        self, scan: LibraryScan, by_loc: dict[Folder, str], scope: set[Folder] | None
    ) -> set[str]:
        """Roots that are missing, or empty although the database knows series there (an unmounted
        share): their series are left alone instead of being marked gone."""
        out = {os.path.normpath(r) for r in scan.missing_roots}
        known = {root for root, _ in by_loc}
        seen = {os.path.normpath(f.root) for f in scan.folders}
        candidates = self.roots if scope is None else sorted({root for root, _ in scope})
        for root in candidates:
            if root in known and root not in seen and not list_series_folders(root, self.ignore):
                out.add(root)
        for root in sorted(out):
            log.warning("library root %s is missing or empty; its series are left as they are", root)
        return out

    def _partial_duplicates(
        self,
        scan: LibraryScan,
        by_key: dict[str, list],
        scope: set[Folder],
        known: dict[Folder, str | None],
        errors: dict[Folder, str],
    ) -> None:
        """In a partial scan, a key still owned by another existing folder (outside the scanned set) is a
        copy, not a rename: report the new folder as unmatched instead of moving the series."""
        for f in scan.folders:
            row = by_key.get(f.key) if f.key else None
            if row is None or not row[3] or not row[4]:
                continue
            old = (os.path.normpath(row[4]), row[3])
            new = (os.path.normpath(f.root), f.folder)
            if old == new or old in scope:
                continue
            if known.get(old, f.key) == f.key and _marker_key(os.path.join(*old)) == f.key:
                errors[new] = f"duplicate key {f.key!r}: already used by {os.path.join(*old)}"


def _marker_key(path: str) -> str | None:
    """The key in a folder's marker, None when there is none (or it is unreadable)."""
    try:
        marker = read_marker(path)
    except (MarkerError, OSError):
        return None
    return marker.key if marker is not None else None


def _prefer_known_folder(scan: LibraryScan, by_loc: dict[Folder, str]) -> None:
    """Two folders with one key: the scanner keeps the first by name; if the database already knows the
    other one, that one keeps the key instead (a copy must not steal the series from the original)."""
    owner: dict[str, SeriesFolder] = {f.key: f for f in scan.folders if f.key}
    for f in scan.folders:
        if f.marker is None or not (f.error or "").startswith("duplicate key"):
            continue
        key = f.marker.key
        first = owner.get(key)
        loc = (os.path.normpath(f.root), f.folder)
        if first is not None and by_loc.get(loc) == key:
            f.error, first.error = None, f"duplicate key {key!r}: already used by {f.path}"
            owner[key] = f
