"""Walk the library roots and say what is on disk (the seed's SerieScanner), without touching the database.

Every immediate subfolder of a root is one series folder; its identity comes from its marker
(`.aniworld.json` or a legacy `key` file), never from its name. Inside, video files anywhere below
(`Season 1/`, `Staffel 2/`, `Movies/`) are parsed into (season, episode, language).

Speed matters (100,000 files must rescan faster than 3x `find`): os.scandir only, precompiled patterns,
and an optional `DirCache` that reuses a directory's parsed listing while its mtime is unchanged, the way
git trusts its index. A directory's mtime changes whenever an entry is added, removed or renamed, which is
all a name-based scan depends on. Listings younger than RACY_NS are never trusted, because a change in the
same clock tick as the previous look would not move the mtime.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from aniworldd.core.markers import LEGACY_KEY_NAME, MARKER_NAME, Marker, MarkerError, read_marker
from aniworldd.core.naming import SAMPLE_RE, VIDEO_EXTENSIONS, parse_episode_filename, season_from_dirname

log = logging.getLogger(__name__)

#: Nesting below a series folder that is still searched (`Series/Season 1/Extras/x.mkv` is depth 2).
MAX_DEPTH = 4
#: Listings whose directory changed less than this long ago are re-read on every scan (coarse mtimes on
#: FAT/SMB/NFS are 1-2 s).
RACY_NS = 2_000_000_000
TEMP_DIR_NAME = ".aniworldd-tmp"


class FoundFile(NamedTuple):
    """One episode file: absolute path, season, the episodes it holds, language tag if any.
    (A NamedTuple: 100,000 of them are built per cold scan and tuples are the cheapest to make.)"""

    path: str
    season: int
    episodes: tuple[int, ...]
    language: str | None


@dataclass(slots=True)
class SeriesFolder:
    """One immediate subfolder of a root and what was found in it."""

    root: str
    folder: str
    path: str
    marker: Marker | None = None
    #: Why the folder is unmatched although it has a marker (bad JSON, bad key, duplicate key).
    error: str | None = None
    files: list[FoundFile] = field(default_factory=list)

    @property
    def key(self) -> str | None:
        return self.marker.key if self.marker is not None and self.error is None else None

    @property
    def matched(self) -> bool:
        return self.key is not None


@dataclass(slots=True)
class LibraryScan:
    folders: list[SeriesFolder]
    missing_roots: list[str]


@dataclass(slots=True)
class _Listing:
    mtime_ns: int
    hint: int | None
    files: list[FoundFile]
    subdirs: list[tuple[str, int | None]]
    has_marker: bool
    has_key_file: bool


class DirCache:
    """Parsed directory listings and markers from the previous scan, keyed by absolute path."""

    def __init__(self) -> None:
        self.listings: dict[str, _Listing] = {}
        self.markers: dict[str, tuple[tuple, Marker | None, str | None]] = {}
        self.hits = 0
        self.misses = 0
        self._visited: set[str] | None = None

    def begin(self) -> None:
        """Start a full pass: listings not visited before `prune()` belong to deleted directories."""
        self._visited = set()

    def prune(self) -> None:
        visited = self._visited
        if visited is None:
            return
        for d in (self.listings, self.markers):
            for p in [p for p in d if p not in visited]:
                del d[p]
        self._visited = None

    def visit(self, path: str) -> None:
        if self._visited is not None:
            self._visited.add(path)

    def forget(self, path: str) -> None:
        """Drop everything at or below `path` (a watcher saw a change there)."""
        prefix = path.rstrip("/") + "/"
        for d in (self.listings, self.markers):
            for p in [p for p in d if p == path or p.startswith(prefix)]:
                del d[p]

    def clear(self) -> None:
        self.listings.clear()
        self.markers.clear()


def _storable(name: str) -> bool:
    """False for names that are not valid UTF-8 on disk (os.fsdecode leaves surrogates the database
    cannot store)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _list_dir(path: str, hint: int | None) -> _Listing | None:
    files: list[FoundFile] = []
    subdirs: list[tuple[str, int | None]] = []
    has_marker = has_key_file = False
    try:
        st = os.stat(path)
        it = os.scandir(path)
    except OSError:
        return None
    prefix = path + "/"
    with it:
        for entry in it:
            name = entry.name
            if name[0] == ".":
                if name == MARKER_NAME:
                    has_marker = True
                continue
            dot = name.rfind(".")
            if dot > 0 and name[dot + 1 :].lower() in VIDEO_EXTENSIONS:
                try:
                    if not entry.is_file():
                        continue
                except OSError:
                    continue
                if ("ample" in name or "AMPLE" in name) and SAMPLE_RE.search(name) is not None:
                    continue
                if not _storable(name):
                    continue
                ref = parse_episode_filename(name, hint)
                if ref is not None:
                    files.append(FoundFile(prefix + name, ref.season, ref.episodes, ref.language))
                continue
            if name == LEGACY_KEY_NAME:
                has_key_file = True
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    sub_hint = season_from_dirname(name)
                    subdirs.append((name, hint if sub_hint is None else sub_hint))
            except OSError:
                continue
    return _Listing(st.st_mtime_ns, hint, files, subdirs, has_marker, has_key_file)


def _cached_listing(path: str, hint: int | None, cache: DirCache | None, now_ns: int) -> _Listing | None:
    if cache is None:
        return _list_dir(path, hint)
    cache.visit(path)
    old = cache.listings.get(path)
    if old is not None and old.hint == hint:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            cache.listings.pop(path, None)
            return None
        if mtime == old.mtime_ns and now_ns - mtime > RACY_NS:
            cache.hits += 1
            return old
    cache.misses += 1
    listing = _list_dir(path, hint)
    if listing is None:
        cache.listings.pop(path, None)
    else:
        cache.listings[path] = listing
    return listing


def _marker_for(path: str, top: _Listing, cache: DirCache | None) -> tuple[Marker | None, str | None]:
    if not top.has_marker and not top.has_key_file:
        return None, None
    name = MARKER_NAME if top.has_marker else LEGACY_KEY_NAME
    signature: tuple = ()
    if cache is not None:
        try:
            st = os.stat(f"{path}/{name}")
            signature = (name, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            signature = (name, None)
        old = cache.markers.get(path)
        if old is not None and old[0] == signature:
            return old[1], old[2]
    try:
        marker, error = read_marker(path), None
    except MarkerError as exc:
        marker, error = None, str(exc)
    except OSError as exc:
        marker, error = None, f"cannot read marker: {exc.strerror}"
    if cache is not None:
        cache.markers[path] = (signature, marker, error)
    return marker, error


def scan_series_folder(root: str, folder: str, cache: DirCache | None = None) -> SeriesFolder | None:
    """Read one series folder: marker + every episode file below it. None when it is gone."""
    path = f"{root.rstrip('/')}/{folder}"
    now_ns = time.time_ns()
    top = _cached_listing(path, None, cache, now_ns)
    if top is None:
        return None
    result = SeriesFolder(root=root, folder=folder, path=path)
    result.marker, result.error = _marker_for(path, top, cache)
    files = result.files
    files.extend(top.files)
    stack = [(f"{path}/{name}", hint, 1) for name, hint in top.subdirs]
    while stack:
        d, hint, depth = stack.pop()
        listing = _cached_listing(d, hint, cache, now_ns)
        if listing is None:
            continue
        files.extend(listing.files)
        if depth < MAX_DEPTH:
            stack.extend((f"{d}/{name}", h, depth + 1) for name, h in listing.subdirs)
    return result


def list_series_folders(root: str, ignore: Iterable[str] = ()) -> list[str] | None:
    """Names of the series folders in a root (sorted), None when the root does not exist.

    Hidden entries (the download temp dir `.aniworldd-tmp`, `.Trash`, `@eaDir`-style dot dirs) and any
    absolute path in `ignore` are skipped.
    """
    ignored = {os.path.normpath(p) for p in ignore}
    root = root.rstrip("/") or "/"
    names = []
    try:
        with os.scandir(root) as it:
            for entry in it:
                name = entry.name
                if name[0] == "." or name.startswith("@"):
                    continue
                try:
                    if not entry.is_dir():
                        continue
                except OSError:
                    continue
                if ignored and os.path.normpath(entry.path) in ignored:
                    continue
                if not _storable(name):
                    log.warning("skipping folder with a name that is not valid UTF-8: %r", name)
                    continue
                names.append(name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    names.sort()
    return names


def scan_library(
    roots: list[str],
    cache: DirCache | None = None,
    ignore: Iterable[str] = (),
    progress: Callable[[int, int, SeriesFolder], None] | None = None,
) -> LibraryScan:
    """Scan every root. A key claimed by two folders keeps the first (root order, then name); the other is
    reported unmatched with the reason, because silently picking one would hide a duplicate download."""
    ignore = list(ignore)
    plan: list[tuple[str, str]] = []
    missing: list[str] = []
    for root in roots:
        names = list_series_folders(root, ignore)
        if names is None:
            missing.append(root)
            continue
        plan.extend((root, name) for name in names)
    folders: list[SeriesFolder] = []
    seen: dict[str, SeriesFolder] = {}
    total = len(plan)
    if cache is not None:
        cache.begin()
    for i, (root, name) in enumerate(plan, 1):
        found = scan_series_folder(root, name, cache)
        if found is None:
            continue
        mark_duplicate(found, seen)
        folders.append(found)
        if progress is not None:
            progress(i, total, found)
    if cache is not None:
        cache.prune()
    return LibraryScan(folders, missing)


def mark_duplicate(found: SeriesFolder, seen: dict[str, SeriesFolder]) -> None:
    """Second and later folders claiming a key already seen in this scan become unmatched."""
    key = found.key
    if key is None:
        return
    first = seen.get(key)
    if first is not None:
        found.error = f"duplicate key {key!r}: already used by {first.path}"
    else:
        seen[key] = found
