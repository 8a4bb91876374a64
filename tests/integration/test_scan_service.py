"""ScanService + LibraryService against real SQLite files (and PostgreSQL when it answers)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest

from aniworldd.core.markers import MARKER_NAME, read_marker, write_marker
from aniworldd.db import Store
from aniworldd.db.models import DOWNLOADING, PENDING
from aniworldd.events import SCAN_COMPLETE, SCAN_PROGRESS, SERIES_ADDED, SERIES_UPDATED, EventBus
from aniworldd.services.errors import BadRequest, Conflict, NotFound
from aniworldd.services.library_service import LibraryService
from aniworldd.services.scan_service import ScanService
from tests.conftest import postgres_answers


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def make_series(root: Path, folder: str, key: str | None, files: list[str], name: str | None = None) -> Path:
    base = root / folder
    base.mkdir(parents=True, exist_ok=True)
    if key:
        write_marker(base, key, "aniworld", name or folder, f"https://aniworld.to/anime/stream/{key}")
    for rel in files:
        touch(base / rel)
    return base


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "library"
    r.mkdir()
    return r


@pytest.fixture
async def scan(config: dict, store: Store, bus: EventBus):
    svc = ScanService({**config, "library": {**config["library"], "watch": False}}, store, bus)
    yield svc
    await svc.close()


def drain(sub) -> list:
    out = []
    while (ev := sub.get_nowait()) is not None:
        out.append(ev)
    return out


def list_episodes(store: Store, key: str, rows: list[tuple[int, int]]) -> None:
    """What the provider issue stores: listed episodes with their languages."""

    def q() -> None:
        s = store.e.AnimeSeries.get(key=key)
        if s is None:
            s = store.e.AnimeSeries(key=key, name=key.replace("-", " ").title())
        for season, number in rows:
            e = store.e.Episode.get(series=s, season=season, number=number)
            if e is None:
                store.e.Episode(series=s, season=season, number=number, title=f"Ep {number}",
                                languages=["ger-dub", "ger-sub"])  # fmt: skip
            else:
                e.listed = True

    store.run_sync(q)


def db_rows(store: Store) -> dict:
    def q() -> dict:
        return {
            (e.series.key, e.season, e.number): (e.listed, e.on_disk_path, e.on_disk_language)
            for e in store.e.Episode.select()
        }

    return store.run_sync(q)


def series_row(store: Store, key: str) -> dict | None:
    def q():
        s = store.e.AnimeSeries.get(key=key)
        return None if s is None else {"id": s.id, "name": s.name, "folder": s.folder, "root": s.root,
                                       "matched": s.matched, "site": s.site, "link": s.link}  # fmt: skip

    return store.run_sync(q)


async def test_first_scan_creates_series_and_episodes(
    root: Path, scan: ScanService, store: Store, bus
) -> None:
    make_series(root, "Show A (2020)", "show-a", ["Season 01/Show A - S01E001 - (German Dub).mp4",
                                                 "Season 01/Show A - S01E002.mkv", "Show A S01E03-E04.mkv"],
                name="Show A")  # fmt: skip
    legacy = make_series(root, "Legacy", None, ["Legacy S02E01.mkv"])
    (legacy / "key").write_text("legacy-show\n")
    make_series(root, "No Marker", None, ["No Marker S01E01.mkv"])
    sub = bus.subscribe()
    summary = await scan.scan_all()
    assert summary["series"] == 2
    assert summary["episodes"] == 5
    assert summary["unmatched"] == ["No Marker"]
    assert summary["missing_episodes"] == 0
    a = series_row(store, "show-a")
    assert (a["name"], a["folder"], a["root"], a["matched"], a["site"]) == (
        "Show A", "Show A (2020)", str(root), True, "aniworld"
    )  # fmt: skip
    assert a["link"] == "https://aniworld.to/anime/stream/show-a"
    assert series_row(store, "legacy-show")["name"] == "Legacy"  # no name in a key file: the folder
    rows = db_rows(store)
    first_file = root / "Show A (2020)/Season 01/Show A - S01E001 - (German Dub).mp4"
    assert rows[("show-a", 1, 1)] == (False, str(first_file), "ger-dub")
    assert rows[("show-a", 1, 3)][1] == rows[("show-a", 1, 4)][1]  # one file, two episodes
    assert set(rows) == {("show-a", 1, 1), ("show-a", 1, 2), ("show-a", 1, 3), ("show-a", 1, 4),
                         ("legacy-show", 2, 1)}  # fmt: skip
    events = drain(sub)
    added = [e.data for e in events if e.type == SERIES_ADDED]
    assert sorted(d["key"] for d in added) == ["legacy-show", "show-a"]
    assert {"key", "folder", "name", "site"} <= set(added[0])
    progress = [e.data for e in events if e.type == SCAN_PROGRESS]
    assert [p["current"] for p in progress] == [1, 2, 3] and progress[-1]["percent"] == 100.0
    assert {"key", "folder", "current", "total", "percent", "partial"} == set(progress[0])
    assert progress[0]["partial"] is False  # a folder rescan says True: no "scan running" in HA/UI
    complete = [e.data for e in events if e.type == SCAN_COMPLETE]
    assert len(complete) == 1
    assert {"series", "episodes", "missing_episodes", "unmatched", "duration_s"} <= set(complete[0])
    state = scan.state()
    assert (state["running"], state["percent"], state["series"], state["unmatched"]) == (False, 100.0, 2, 1)
    assert state["last_scan"].endswith("Z")


async def test_rescan_of_unchanged_library_writes_nothing(
    root: Path, scan: ScanService, store: Store
) -> None:
    make_series(root, "A", "show-a", [f"Season 1/A S01E{n:02d}.mkv" for n in range(1, 6)])
    make_series(root, "B", "show-b", ["B S01E01.mkv"])
    list_episodes(store, "show-a", [(1, n) for n in range(1, 9)])
    await scan.scan_all()
    watcher = sqlite3.connect(store.sqlite_path)
    version = watcher.execute("PRAGMA data_version").fetchone()[0]
    before = db_rows(store)
    summary = await scan.scan_all()
    assert summary["changes"] == 0
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == version  # no commit at all
    assert db_rows(store) == before
    assert summary["missing_episodes"] == 3
    fresh = ScanService(scan.config, store, EventBus())  # no warm caches (e.g. after a restart)
    assert (await fresh.scan_all())["changes"] == 0
    await fresh.close()
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == version
    watcher.close()


async def test_vanished_files_clear_or_drop_rows(root: Path, scan: ScanService, store: Store) -> None:
    a = make_series(root, "A", "show-a", ["A S01E01.mkv", "A S01E02.mkv", "A S01E03.mkv"])
    list_episodes(store, "show-a", [(1, 1), (1, 2)])
    await scan.scan_all()
    assert db_rows(store)[("show-a", 1, 3)][0] is False
    os.remove(a / "A S01E01.mkv")  # listed: kept, now missing
    os.remove(a / "A S01E03.mkv")  # only existed because of the file: dropped
    summary = await scan.scan_all()
    rows = db_rows(store)
    assert rows[("show-a", 1, 1)] == (True, None, None)
    assert ("show-a", 1, 3) not in rows
    assert rows[("show-a", 1, 2)][1] == str(a / "A S01E02.mkv")
    assert summary["missing_episodes"] == 1


async def test_provider_rows_written_between_scans_are_picked_up(
    root: Path, scan: ScanService, store: Store
) -> None:
    a = make_series(root, "A", "show-a", ["A S01E01.mkv"])
    await scan.scan_all()
    list_episodes(store, "show-a", [(1, 1), (1, 2), (1, 3)])  # another service writes in between
    assert (await scan.scan_all())["missing_episodes"] == 2
    touch(a / "A S01E02.mkv")
    summary = await scan.scan_all()
    assert summary["missing_episodes"] == 1
    assert db_rows(store)[("show-a", 1, 2)] == (True, str(a / "A S01E02.mkv"), None)


async def test_renamed_folder_keeps_its_key(root: Path, scan: ScanService, store: Store, bus) -> None:
    make_series(root, "Old Name", "show-a", ["Season 01/X S01E01.mkv"])
    await scan.scan_all()
    before = series_row(store, "show-a")
    os.rename(root / "Old Name", root / "New Name (2021)")
    sub = bus.subscribe({SERIES_UPDATED})
    summary = await scan.scan_all()
    after = series_row(store, "show-a")
    assert after["id"] == before["id"] and after["folder"] == "New Name (2021)" and after["matched"]
    assert db_rows(store)[("show-a", 1, 1)][1] == str(root / "New Name (2021)/Season 01/X S01E01.mkv")
    assert summary["unmatched"] == []
    assert [e.data["folder"] for e in drain(sub)] == ["New Name (2021)"]


async def test_deleted_folder_marks_series_unmatched(root: Path, scan: ScanService, store: Store) -> None:
    make_series(root, "A", "show-a", ["A S01E01.mkv"])
    make_series(root, "Keep", "keep", ["K S01E01.mkv"])
    list_episodes(store, "show-a", [(1, 1)])
    await scan.scan_all()
    (root / "A" / "A S01E01.mkv").unlink()
    (root / "A" / MARKER_NAME).unlink()
    (root / "A").rmdir()
    summary = await scan.scan_all()
    assert series_row(store, "show-a")["matched"] is False
    assert db_rows(store)[("show-a", 1, 1)] == (True, None, None)
    assert summary["missing_episodes"] == 1 and summary["series"] == 1


async def test_unmounted_root_is_left_alone(tmp_path: Path, config_factory, store: Store, bus) -> None:
    root = tmp_path / "nas"
    make_series(root, "A", "show-a", ["A S01E01.mkv"])
    cfg = config_factory(f"library:\n  roots: [{root}]\n  watch: false\n")
    svc = ScanService(cfg, store, bus)
    try:
        await svc.scan_all()
        for child in (root / "A").iterdir():
            child.unlink()
        (root / "A").rmdir()  # the mount point is there but empty
        await svc.scan_all()
        assert series_row(store, "show-a")["matched"] is True
        assert db_rows(store)[("show-a", 1, 1)][1] is not None
        root.rmdir()  # and gone entirely
        await svc.scan_all()
        assert db_rows(store)[("show-a", 1, 1)][1] is not None
    finally:
        await svc.close()


async def test_best_language_wins_when_several_files_exist(
    root: Path, scan: ScanService, store: Store
) -> None:
    # downloads.language defaults to [ger-dub, ger-sub, eng-sub]
    make_series(root, "A", "show-a", ["A S01E01 [eng-sub].mkv", "A S01E01 (German Sub).mkv", "A S01E01.mkv"])
    await scan.scan_all()
    assert db_rows(store)[("show-a", 1, 1)][2] == "ger-sub"


async def test_missing_by_language(tmp_path: Path, root: Path, config_factory, store: Store, bus) -> None:
    cfg = config_factory(
        f"library:\n  roots: [{root}]\n  watch: false\n  missing_by_language: true\n"
        "downloads:\n  language: [ger-dub]\n"
    )
    make_series(
        root, "A", "show-a", ["A S01E01 (German Dub).mkv", "A S01E02 (English Sub).mkv", "A S01E03.mkv"]
    )
    list_episodes(store, "show-a", [(1, 1), (1, 2), (1, 3), (1, 4)])
    svc = ScanService(cfg, store, bus)
    try:
        summary = await svc.scan_all()
    finally:
        await svc.close()
    assert summary["missing_episodes"] == 2  # E02 only in an unwanted language, E04 absent
    lib = LibraryService(cfg, store)
    [s] = await lib.summaries()
    assert s["missing_episodes"] == {"1": [2, 4]} and s["missing_count"] == 2
    detail = await lib.detail("show-a")
    assert [e["status"] for e in detail["episodes"]] == ["on_disk", "missing", "on_disk", "missing"]
    plain = LibraryService(config_factory(f"library:\n  roots: [{root}]\n"), store)
    assert (await plain.summaries())[0]["missing_episodes"] == {"1": [4]}


async def test_library_summaries_and_detail(root: Path, scan: ScanService, store: Store, config) -> None:
    make_series(
        root, "A", "show-a", ["A S01E01.mkv", "A S01E05.mkv", "Movies/A - Movie 01.mkv"], name="Alpha"
    )
    make_series(root, "B", "show-b", ["B S01E01.mkv"], name="Beta")
    await scan.scan_all()  # series created from the markers, then the provider lists episodes
    list_episodes(store, "show-a", [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (0, 1), (0, 2)])
    list_episodes(store, "show-b", [(1, 1)])

    def queue(season: int, episode: int, status: str) -> None:
        s = store.e.AnimeSeries.get(key="show-a")
        store.e.DownloadQueueItem(series=s, season=season, episode=episode, status=status)

    store.run_sync(queue, 1, 2, PENDING)
    store.run_sync(queue, 1, 3, DOWNLOADING)
    store.run_sync(queue, 1, 4, "completed")
    lib = LibraryService(config, store, scan)
    summaries = await lib.summaries()
    assert [s["key"] for s in summaries] == ["show-a"]
    a = summaries[0]
    assert a["missing_episodes"] == {"0": [2], "1": [2, 3, 4], "2": [1]} and a["missing_count"] == 5
    assert (a["name"], a["site"], a["folder"], a["link"]) == (
        "Alpha", "aniworld", "A", "https://aniworld.to/anime/stream/show-a"
    )  # fmt: skip
    assert [s["key"] for s in await lib.summaries(only_missing=False)] == ["show-a", "show-b"]
    detail = await lib.detail("show-a")
    assert detail["key"] == "show-a" and detail["title"] == "Alpha" and detail["folder"] == "A"
    status = {(e["season"], e["episode"]): e["status"] for e in detail["episodes"]}
    assert status == {
        (0, 1): "on_disk", (0, 2): "missing", (1, 1): "on_disk", (1, 2): "queued",
        (1, 3): "downloading", (1, 4): "missing", (1, 5): "on_disk", (2, 1): "missing",
    }  # fmt: skip
    assert {"season", "episode", "title", "languages", "status", "on_disk_language"} <= set(
        detail["episodes"][0]
    )
    with pytest.raises(NotFound):
        await lib.detail("no-such-show")
    with pytest.raises(BadRequest):
        await lib.detail("../etc")


async def test_unmatched_and_match(root: Path, scan: ScanService, store: Store, config, bus) -> None:
    make_series(root, "Taken", "taken-show", ["T S01E01.mkv"])
    make_series(root, "Loose Folder", None, ["Loose S01E01.mkv", "Loose S01E02.mkv"])
    outside = root.parent / "outside"
    outside.mkdir()
    await scan.scan_all()
    lib = LibraryService(config, store, scan)
    unmatched = await lib.unmatched()
    assert [(u["folder"], u["reason"]) for u in unmatched] == [("Loose Folder", "no marker")]

    for folder, key, site, err in [
        ("../outside", "loose-show", "aniworld", BadRequest),  # path traversal
        ("..", "loose-show", "aniworld", BadRequest),
        ("/etc", "loose-show", "aniworld", BadRequest),
        (".aniworldd-tmp", "loose-show", "aniworld", BadRequest),
        ("Loose Folder", "Loose Show", "aniworld", BadRequest),
        ("Loose Folder", "loose-show", "netflix", BadRequest),
        ("Nope", "loose-show", "aniworld", NotFound),
        ("Taken", "loose-show", "aniworld", Conflict),  # folder already has another key
        ("Loose Folder", "taken-show", "aniworld", Conflict),  # key already has a folder
    ]:
        with pytest.raises(err):
            await lib.match(folder, key, site)
    assert read_marker(root / "Loose Folder") is None and not (outside / MARKER_NAME).exists()

    sub = bus.subscribe({SERIES_ADDED})
    result = await lib.match("Loose Folder", "loose-show", "sto")
    assert result["key"] == "loose-show" and result["link"] == "https://serienstream.to/serie/loose-show"
    marker = read_marker(root / "Loose Folder")
    assert (marker.key, marker.site, marker.name) == ("loose-show", "sto", "Loose Folder")
    row = series_row(store, "loose-show")
    assert (row["folder"], row["site"], row["matched"]) == ("Loose Folder", "sto", True)
    assert db_rows(store)[("loose-show", 1, 2)][1] is not None
    assert [e.data["key"] for e in drain(sub)] == ["loose-show"]
    assert await lib.unmatched() == []
    assert scan.state()["unmatched"] == 0


async def test_scan_series_and_unknown_key(root: Path, scan: ScanService, store: Store) -> None:
    a = make_series(root, "A", "show-a", ["A S01E01.mkv"])
    make_series(root, "B", "show-b", ["B S01E01.mkv"])
    await scan.scan_all()
    touch(a / "A S01E02.mkv")
    summary = await scan.scan_series("show-a")
    assert summary["scope"] == "partial" and summary["keys"] == ["show-a"]
    assert db_rows(store)[("show-a", 1, 2)][1] is not None
    assert summary["series"] == 2  # totals still cover the whole library
    with pytest.raises(NotFound):
        await scan.scan_series("no-such-show")


async def test_requests_during_a_scan_coalesce(root: Path, scan: ScanService, bus) -> None:
    for i in range(5):
        make_series(root, f"S{i}", f"show-{i}", [f"X S01E0{j}.mkv" for j in range(1, 4)])
    sub = bus.subscribe({SCAN_COMPLETE})
    progress = bus.subscribe({SCAN_PROGRESS})
    first = asyncio.ensure_future(scan.scan_all())
    await progress.get()  # the walk of the first scan is under way
    assert scan.state()["running"]
    for _ in range(5):
        scan.request_scan()
    scan.request_folders([(str(root), "S1")])
    await first
    await scan.scan_all()  # queued behind the single follow-up
    assert len(drain(sub)) == 3  # first + one merged follow-up + this one


async def test_scan_complete_says_whether_a_user_asked(root: Path, scan: ScanService, bus) -> None:
    """A UI toasts "Scan finished" only for `requested` scans, never for the rescans after downloads."""
    make_series(root, "A", "show-a", ["A S01E01.mkv"])
    sub = bus.subscribe({SCAN_COMPLETE})

    async def next_complete() -> dict:
        return (await asyncio.wait_for(sub.get(), 10)).data

    scan.request_scan(requested=False)  # scan_on_start
    done = await next_complete()
    assert (done["scope"], done["requested"]) == ("full", False)
    scan.request_folders([(str(root), "A")])  # the watcher, after a download
    done = await next_complete()
    assert (done["scope"], done["requested"]) == ("partial", False)
    await scan.scan_all()  # API / CLI
    assert drain(sub)[-1].data["requested"] is True
    progress = bus.subscribe({SCAN_PROGRESS})
    first = asyncio.ensure_future(scan.scan_all())
    await progress.get()  # the first scan is under way: what follows waits for one follow-up
    scan.request_folders([(str(root), "A")])
    scan.request_scan()  # merged into the watcher's follow-up: the follow-up was asked for
    await first
    assert (await next_complete())["requested"] is True  # the first one
    follow_up = await next_complete()
    assert (follow_up["scope"], follow_up["requested"]) == ("full", True)


async def test_scan_failure_is_reported(root: Path, scan: ScanService, bus, monkeypatch) -> None:
    make_series(root, "A", "show-a", ["A S01E01.mkv"])

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(scan.sync, "sync", boom)
    sub = bus.subscribe()
    with pytest.raises(RuntimeError):
        await scan.scan_all()
    failed = [e.data for e in drain(sub) if e.type == "scan_failed"]
    assert failed == [{"error": "disk on fire"}]
    assert scan.state()["running"] is False


@pytest.mark.postgres
async def test_same_scan_on_postgres(tmp_path: Path, root: Path, config_factory, bus) -> None:
    """The raw statements (paramstyle, booleans, timestamps) on PostgreSQL, in a private database."""
    if not postgres_answers():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    import psycopg2

    name = f"aniworldd_scan_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    store = Store(f"postgres://postgres@127.0.0.1:5432/{name}", tmp_path)
    cfg = config_factory(f"library:\n  roots: [{root}]\n  watch: false\n")
    svc = ScanService(cfg, store, bus)
    try:
        a = make_series(root, "A", "show-a", ["A S01E01 (German Dub).mkv", "A S01E02.mkv"])
        list_episodes(store, "show-a", [(1, 1), (1, 3)])
        first = await svc.scan_all()
        assert first["missing_episodes"] == 1
        assert (await svc.scan_all())["changes"] == 0
        os.remove(a / "A S01E01 (German Dub).mkv")
        os.remove(a / "A S01E02.mkv")
        assert (await svc.scan_all())["missing_episodes"] == 2
        assert db_rows(store) == {("show-a", 1, 1): (True, None, None), ("show-a", 1, 3): (True, None, None)}
        [summary] = await LibraryService(cfg, store).summaries()
        assert summary["missing_episodes"] == {"1": [1, 3]}
    finally:
        await svc.close()
        store.close()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


async def test_untagged_file_keeps_the_language_the_downloader_recorded(
    root: Path, scan: ScanService, store: Store
) -> None:
    a = make_series(root, "A", "show-a", [])
    path = touch(a / "Season 01" / "A - S01E001.mp4")  # a naming template without {language}
    list_episodes(store, "show-a", [(1, 1)])

    def downloaded() -> None:
        e = store.e.Episode.get(number=1)
        e.on_disk_path, e.on_disk_language = str(path), "ger-sub"

    await scan.scan_all()
    store.run_sync(downloaded)
    assert (await scan.scan_all())["changes"] == 0
    assert db_rows(store)[("show-a", 1, 1)] == (True, str(path), "ger-sub")


def test_scan_command_prints_json(tmp_path: Path, capsys) -> None:
    from aniworldd.cli import main

    root = tmp_path / "lib"
    make_series(root, "A", "show-a", ["A S01E01.mkv", "A S01E02.mkv"])
    make_series(root, "Stray", None, ["S S01E01.mkv"])
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nlibrary:\n  roots: [{root}]\n")
    assert main(["scan", "--config", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in ("series", "episodes", "missing_episodes", "unmatched")} == {
        "series": 1, "episodes": 2, "missing_episodes": 0, "unmatched": ["Stray"]
    }  # fmt: skip
    assert out["duration_s"] >= 0
    assert main(["scan", "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert "1 series, 2 episodes on disk, 0 missing, 1 unmatched" in text and "unmatched: Stray" in text
    cfg.write_text("library:\n  watch: maybe\n")
    assert main(["scan", "--config", str(cfg), "--json"]) == 1
    assert "library.watch" in capsys.readouterr().err


async def test_copied_folder_is_a_duplicate_not_a_rename(root: Path, scan: ScanService, store: Store) -> None:
    make_series(root, "A", "show-a", ["A S01E01.mkv"])
    await scan.scan_all()
    shutil.copytree(root / "A", root / "A copy")
    summary = await scan.scan_folders([(str(root), "A copy")])
    assert summary["unmatched"] == ["A copy"]
    assert series_row(store, "show-a")["folder"] == "A"
    assert db_rows(store)[("show-a", 1, 1)][1] == str(root / "A" / "A S01E01.mkv")
    [entry] = scan.unmatched_folders()
    assert entry["folder"] == "A copy" and "duplicate key" in entry["reason"]
    shutil.copytree(root / "A", root / "0 copy")  # sorts first, but the database knows "A"
    full = await scan.scan_all()
    assert full["unmatched"] == ["0 copy", "A copy"] and series_row(store, "show-a")["folder"] == "A"
    assert full["changes"] == 0
