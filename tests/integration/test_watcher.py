"""Incremental scans: real watchfiles (inotify) on a temp library -> ScanService -> SQLite."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from watchfiles import Change

from aniworldd.core.markers import write_marker
from aniworldd.db import Store
from aniworldd.events import SCAN_COMPLETE, SERIES_ADDED, EventBus
from aniworldd.services.scan_service import ScanService
from aniworldd.services.watcher import PathMapper

ROOT = "/srv/anime"


@pytest.mark.parametrize(
    ("path", "folder"),
    [
        (f"{ROOT}/Show/Season 01/Show - S01E01.mkv", "Show"),
        (f"{ROOT}/Show", "Show"),  # the folder itself: created, deleted or renamed
        (f"{ROOT}/Show/.aniworld.json", "Show"),  # the marker counts although hidden
        (f"{ROOT}/Show/key", "Show"),
        (f"{ROOT}/Show/Season 01/Show - S01E01.mkv.part", None),
        (f"{ROOT}/Show/Season 01/Show - S01E01.mkv.ytdl", None),
        (f"{ROOT}/Show/Season 01/Show - S01E01.tmp", None),
        (f"{ROOT}/Show/.aniworld.abc123.tmp", None),  # the marker's own temp file
        (f"{ROOT}/Show/Season 01/.hidden.mkv", None),
        (f"{ROOT}/Show/.cache/thumb.mkv", None),
        (f"{ROOT}/.aniworldd-tmp/Show - S01E01.mkv", None),
        (f"{ROOT}/.aniworldd-tmp", None),
        (f"{ROOT}/@eaDir/x", None),
        (f"{ROOT}/Downloads/x.mkv", None),  # configured temp dir
        ("/elsewhere/Show/x.mkv", None),
        (f"{ROOT}-other/Show/x.mkv", None),
    ],
)
def test_path_mapping(path: str, folder: str | None) -> None:
    mapper = PathMapper([ROOT], ignore=[f"{ROOT}/Downloads"])
    assert mapper.folder_of(path) == ((ROOT, folder) if folder else None)
    assert mapper.accept(Change.added, path) is (folder is not None)


def test_changes_group_by_folder() -> None:
    mapper = PathMapper([ROOT, "/mnt/other"])
    changes = {
        (Change.added, f"{ROOT}/A/x S01E01.mkv"),
        (Change.deleted, f"{ROOT}/A/x S01E02.mkv"),
        (Change.added, "/mnt/other/B/y S01E01.mkv"),
        (Change.added, f"{ROOT}/C/y S01E01.mkv.part"),
    }
    assert mapper.folders(changes) == {(ROOT, "A"), ("/mnt/other", "B")}


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


@pytest.fixture
async def watched(tmp_path: Path, config_factory, store: Store, bus: EventBus):
    root = tmp_path / "library"
    root.mkdir()
    cfg = config_factory(f"library:\n  roots: [{root}]\n  watch: true\n  watch_debounce: 0.05\n")
    svc = ScanService(cfg, store, bus)
    yield root, svc
    await svc.close()


async def wait_for(sub, predicate: Callable[[dict], bool]) -> dict:
    """The first event matching predicate; a generous bound so a broken watcher fails instead of hanging."""
    async with asyncio.timeout(20):
        while True:
            ev = await sub.get()
            if predicate(ev.data):
                return ev.data


def on_disk(store: Store, key: str) -> dict:
    def q() -> dict:
        s = store.e.AnimeSeries.get(key=key)
        return {(e.season, e.number): e.on_disk_path for e in s.episodes} if s else {}

    return store.run_sync(q)


def series(store: Store, key: str) -> dict | None:
    def q():
        s = store.e.AnimeSeries.get(key=key)
        return {"id": s.id, "folder": s.folder, "matched": s.matched} if s else None

    return store.run_sync(q)


async def test_new_file_triggers_a_scan_of_that_series_only(watched, store: Store, bus: EventBus) -> None:
    root, svc = watched
    for name in ("A", "B"):
        touch(root / name / f"{name} S01E01.mkv")
        (root / name / "Season 01").mkdir()
        write_marker(root / name, f"show-{name.lower()}")
    await svc.scan_all()
    await svc.start()
    sub = bus.subscribe({SCAN_COMPLETE})
    touch(root / "A" / "Season 01" / "A S01E02.mkv.part")  # a running download: never a trigger
    touch(root / "B" / "Season 01" / "B S01E02.mkv")
    done = await wait_for(sub, lambda d: d.get("scope") == "partial")
    assert done["keys"] == ["show-b"]
    assert on_disk(store, "show-b")[(1, 2)] == str(root / "B" / "Season 01" / "B S01E02.mkv")
    assert (1, 2) not in on_disk(store, "show-a")
    assert done["series"] == 2  # the summary still describes the whole library

    os.remove(root / "B" / "Season 01" / "B S01E02.mkv")
    await wait_for(sub, lambda d: d.get("keys") == ["show-b"])
    assert (1, 2) not in on_disk(store, "show-b")  # an unlisted episode whose file is gone


async def test_new_folder_and_rename_keep_the_key(watched, store: Store, bus: EventBus) -> None:
    root, svc = watched
    await svc.scan_all()
    await svc.start()
    sub = bus.subscribe({SCAN_COMPLETE, SERIES_ADDED})
    staging = root.parent / "staging"  # build the folder elsewhere, then move it in (as a user would)
    touch(staging / "Season 01" / "Show S01E01.mkv")
    write_marker(staging, "new-show", "sto", "New Show")
    os.rename(staging, root / "New Show")
    await wait_for(sub, lambda d: "new-show" in d.get("keys", []))
    first = series(store, "new-show")
    assert first["folder"] == "New Show" and first["matched"]

    os.rename(root / "New Show", root / "New Show (2024)")
    # The move may arrive as one batch or two (old folder gone, new one found): wait for the end state.
    await wait_for(sub, lambda d: "new-show" in d.get("keys", []) and series(store, "new-show")["matched"]
                   and series(store, "new-show")["folder"] == "New Show (2024)")  # fmt: skip
    after = series(store, "new-show")
    assert after == {"id": first["id"], "folder": "New Show (2024)", "matched": True}
    assert on_disk(store, "new-show")[(1, 1)] == str(
        root / "New Show (2024)" / "Season 01" / "Show S01E01.mkv"
    )


async def test_writing_a_marker_matches_a_folder(watched, store: Store, bus: EventBus) -> None:
    root, svc = watched
    touch(root / "Loose" / "Loose S01E01.mkv")
    first = await svc.scan_all()
    assert first["unmatched"] == ["Loose"]
    await svc.start()
    sub = bus.subscribe({SCAN_COMPLETE})
    write_marker(root / "Loose", "loose-show")
    done = await wait_for(sub, lambda d: d.get("keys") == ["loose-show"])
    assert done["unmatched"] == []
    assert on_disk(store, "loose-show")[(1, 1)] is not None
