"""The pure scanner and the marker files, on small real trees in tmp_path."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from aniworldd.core.markers import MARKER_NAME, MarkerError, read_marker, write_marker
from aniworldd.core.scanner import DirCache, list_series_folders, scan_library, scan_series_folder


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def age(root: Path, seconds: float = 3600) -> None:
    """Make every directory older than the scanner's racy window, like an existing library."""
    old = time.time() - seconds
    for dirpath, _dirs, _files in os.walk(root):
        os.utime(dirpath, (old, old))


def episodes(folder) -> set[tuple[int, int, str | None]]:
    return {(f.season, e, f.language) for f in folder.files for e in f.episodes}


# ---- markers ------------------------------------------------------------------------------------------


def test_marker_round_trip_is_atomic(tmp_path: Path) -> None:
    write_marker(tmp_path, "kaguya-sama-love-is-war", "aniworld", "Kaguya-sama", "https://aniworld.to/x")
    data = json.loads((tmp_path / MARKER_NAME).read_text())
    assert data == {
        "key": "kaguya-sama-love-is-war",
        "site": "aniworld",
        "name": "Kaguya-sama",
        "link": "https://aniworld.to/x",
    }
    marker = read_marker(tmp_path)
    assert (marker.key, marker.site, marker.name, marker.source) == (
        "kaguya-sama-love-is-war", "aniworld", "Kaguya-sama", "json"
    )  # fmt: skip
    write_marker(tmp_path, "other-key", "sto")
    assert read_marker(tmp_path).key == "other-key"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER_NAME]  # no temp files left behind


def test_write_marker_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    for key, site in (("Bad Key", "aniworld"), ("../x", "aniworld"), ("ok-key", "netflix")):
        with pytest.raises(ValueError):
            write_marker(tmp_path, key, site)
    with pytest.raises(ValueError):
        write_marker(tmp_path / "missing", "ok-key")
    assert list(tmp_path.iterdir()) == []


def test_legacy_key_file_and_precedence(tmp_path: Path) -> None:
    assert read_marker(tmp_path) is None
    (tmp_path / "key").write_text("one-piece\n")
    marker = read_marker(tmp_path)
    assert (marker.key, marker.site, marker.source) == ("one-piece", "aniworld", "key")
    write_marker(tmp_path, "one-piece-2")
    assert read_marker(tmp_path).key == "one-piece-2"  # the daemon's marker wins


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (MARKER_NAME, "{not json"),
        (MARKER_NAME, '["a list"]'),
        (MARKER_NAME, '{"key": "Bad Key"}'),
        (MARKER_NAME, '{"key": "ok", "site": "netflix"}'),
        ("key", "Attack On Titan"),
        ("key", ""),
    ],
)
def test_broken_markers_are_errors_not_guesses(tmp_path: Path, name: str, content: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(MarkerError):
        read_marker(tmp_path)


# ---- scanning -------------------------------------------------------------------------------------------


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    a = root / "Show A (2020)"
    write_marker(touch(a / "x").parent, "show-a", "aniworld", "Show A")
    (a / "x").unlink()
    touch(a / "Season 01" / "Show A - S01E001 - (German Dub).mp4")
    touch(a / "Season 01" / "Show A - S01E002 - (German Sub).mkv")
    touch(a / "Season 01" / "Show A - S01E003.mp4.part")
    touch(a / "Season 01" / "Show A - S01E004.mp4.ytdl")
    touch(a / "Season 01" / "Show A - S01E005.tmp")
    touch(a / "Season 01" / ".Show A - S01E006.mkv")
    touch(a / "Season 01" / "Show A - S01E007 - sample.mkv")
    touch(a / "Season 01" / "Show A - S01E008.nfo")
    touch(a / "Staffel 2" / "Folge 3.mkv")
    touch(a / "Staffel 2" / "Show A S02E04E05 [ger-sub].mkv")
    touch(a / "Movies" / "Show A - Movie 01 - (German Dub).mp4")
    touch(a / "Show A - Film 2.mkv")
    touch(a / ".hidden" / "Show A - S01E009.mkv")
    b = root / "Legacy B"
    touch(b / "key").write_text("legacy-b\n")
    touch(b / "Legacy B S01E01-E02.mkv")
    touch(root / "Unmatched C" / "Unmatched C S01E01.mkv")
    touch(root / "Broken D" / MARKER_NAME).write_text("{oops")
    touch(root / ".aniworldd-tmp" / "Show A - S01E010.mp4")
    touch(root / "@eaDir" / "thumb.mkv")
    touch(root / "loose file S01E01.mkv")
    return root


def test_scan_library(library: Path) -> None:
    scan = scan_library([str(library)])
    by_folder = {f.folder: f for f in scan.folders}
    assert sorted(by_folder) == ["Broken D", "Legacy B", "Show A (2020)", "Unmatched C"]
    a = by_folder["Show A (2020)"]
    assert (a.key, a.marker.name, a.marker.site, a.root) == ("show-a", "Show A", "aniworld", str(library))
    assert episodes(a) == {
        (1, 1, "ger-dub"),
        (1, 2, "ger-sub"),
        (2, 3, None),
        (2, 4, "ger-sub"),
        (2, 5, "ger-sub"),
        (0, 1, "ger-dub"),
        (0, 2, None),
    }
    assert all(Path(f.path).is_file() and Path(f.path).is_absolute() for f in a.files)
    assert by_folder["Legacy B"].key == "legacy-b"
    assert episodes(by_folder["Legacy B"]) == {(1, 1, None), (1, 2, None)}
    assert by_folder["Unmatched C"].key is None and by_folder["Unmatched C"].error is None
    assert by_folder["Broken D"].key is None and "not valid JSON" in by_folder["Broken D"].error
    assert scan.missing_roots == []


def test_duplicate_keys_keep_the_first_folder(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    for name in ("B copy", "A original"):
        (root / name).mkdir(parents=True)
        write_marker(root / name, "same-key")
    scan = scan_library([str(root)])
    first, second = scan.folders
    assert (first.folder, first.key) == ("A original", "same-key")
    assert second.key is None and "duplicate key" in second.error


def test_missing_root_and_ignored_paths(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    touch(root / "Downloads" / "x S01E01.mkv")
    touch(root / "Show" / "x S01E01.mkv")
    scan = scan_library([str(root), str(tmp_path / "nope")], ignore=[str(root / "Downloads")])
    assert [f.folder for f in scan.folders] == ["Show"]
    assert scan.missing_roots == [str(tmp_path / "nope")]
    assert list_series_folders(str(tmp_path / "nope")) is None


def test_symlinked_directories_inside_a_series_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    touch(outside / "Secret S01E01.mkv")
    series = tmp_path / "lib" / "Show"
    touch(series / "Show S01E02.mkv")
    os.symlink(outside, series / "escape")
    os.symlink(series, series / "loop")
    found = scan_series_folder(str(tmp_path / "lib"), "Show")
    assert {Path(f.path).name for f in found.files} == {"Show S01E02.mkv"}


def test_progress_callback(library: Path) -> None:
    calls = []
    scan_library([str(library)], progress=lambda i, n, f: calls.append((i, n, f.folder)))
    assert [c[0] for c in calls] == [1, 2, 3, 4]
    assert {c[1] for c in calls} == {4}


def test_dir_cache_reuses_old_listings_and_sees_changes(library: Path) -> None:
    age(library)
    cache = DirCache()
    first = scan_library([str(library)], cache)
    assert cache.hits == 0 and cache.misses > 0
    again = scan_library([str(library)], cache)
    assert cache.hits > 0
    assert [episodes(f) for f in again.folders] == [episodes(f) for f in first.folders]
    # A new file changes its directory's mtime, so that listing is read again.
    touch(library / "Show A (2020)" / "Season 01" / "Show A - S01E011.mkv")
    os.remove(library / "Legacy B" / "Legacy B S01E01-E02.mkv")
    third = {f.folder: f for f in scan_library([str(library)], cache).folders}
    assert (1, 11, None) in episodes(third["Show A (2020)"])
    assert episodes(third["Legacy B"]) == set()


def test_dir_cache_sees_a_rewritten_marker(library: Path) -> None:
    age(library)
    cache = DirCache()
    scan_library([str(library)], cache)
    marker = library / "Legacy B" / "key"
    marker.write_text("renamed-key\n")  # in place: the directory mtime does not move
    os.utime(library / "Legacy B", (time.time() - 3600, time.time() - 3600))
    found = {f.folder: f for f in scan_library([str(library)], cache).folders}
    assert found["Legacy B"].key == "renamed-key"


def test_recent_directories_are_never_trusted(tmp_path: Path) -> None:
    """A change within the mtime granularity of the previous look must still be seen."""
    root = tmp_path / "lib"
    touch(root / "Show" / "Show S01E01.mkv")
    cache = DirCache()
    scan_library([str(root)], cache)
    st = os.stat(root / "Show")
    touch(root / "Show" / "Show S01E02.mkv")
    os.utime(root / "Show", ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime as when it was cached
    found = scan_library([str(root)], cache).folders[0]
    assert {e for f in found.files for e in f.episodes} == {1, 2}


def test_dir_cache_drops_deleted_directories(library: Path) -> None:
    cache = DirCache()
    scan_library([str(library)], cache)
    gone = str(library / "Legacy B")
    assert gone in cache.listings and gone in cache.markers
    for p in (library / "Legacy B").iterdir():
        p.unlink()
    (library / "Legacy B").rmdir()
    scan_library([str(library)], cache)
    assert gone not in cache.listings and gone not in cache.markers
    assert str(library / "Show A (2020)" / "Season 01") in cache.listings
