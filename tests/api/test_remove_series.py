"""DELETE /api/anime/{key}: removing a series, with its queue items, optionally with its folder.

Against the real services (SQLite, queue, scanner) and the fake provider site; the library is a real
folder under tmp_path. Every refusal must leave the series, its queue items and its files as they were.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from aniworldd import events
from aniworldd.services.errors import NotFound
from aniworldd.services.folder_removal import TRASH_PREFIX
from tests.api.conftest import Api

KEY = "kaguya-sama-love-is-war"


async def _add(api: Api, origin: str) -> dict:
    status, data = await api.call("POST", "/api/anime/add", json={"link": f"{origin}/anime/stream/{KEY}"})
    assert status == 200, data
    return data


async def _wait_for(sub: events.Subscription, type_: str) -> events.Event:
    async def loop() -> events.Event:
        while True:
            ev = await sub.get()
            if ev.type == type_:
                return ev

    return await asyncio.wait_for(loop(), 20)


async def _series_with_queue(api: Api, origin: str) -> tuple[Path, list[int]]:
    """The series added, one episode file on disk, two episodes queued; returns (folder, item ids)."""
    added = await _add(api, origin)
    root = Path(api.ctx.config["library"]["roots"][0])
    folder = root / added["folder"]
    (folder / "Season 01").mkdir(parents=True, exist_ok=True)
    (folder / "Season 01" / "keep-me.mkv").write_bytes(b"video")
    body = {"serie_id": KEY, "episodes": [{"season": 1, "episode": 1}, {"season": 1, "episode": 2}]}
    status, data = await api.call("POST", "/api/queue/add", json=body)
    assert status == 201, data
    return folder, data["added_items"]


async def _queue_ids(api: Api) -> set[int]:
    items = await api.ctx.queue.items()
    return {i["id"] for i in items}


async def _assert_unchanged(api: Api, folder: Path, item_ids: list[int]) -> None:
    status, detail = await api.call("GET", f"/api/anime/{KEY}")
    assert status == 200 and detail["key"] == KEY
    assert (folder / "Season 01" / "keep-me.mkv").read_bytes() == b"video"
    assert set(item_ids) <= await _queue_ids(api)


async def test_unknown_key_is_404_and_bad_input_is_400(logged_in: Api, fakesite: str) -> None:
    folder, ids = await _series_with_queue(logged_in, fakesite)
    status, data = await logged_in.call("DELETE", "/api/anime/no-such-series")
    assert status == 404 and data["error"]["code"] == "not_found"
    for path in (
        f"/api/anime/{KEY}?delete_files=maybe",
        f"/api/anime/{KEY}?delete_files=",
        f"/api/anime/{KEY}?deletefiles=true",  # a misspelt parameter must not pass unnoticed
        "/api/anime/Not_A_Key",
    ):
        status, data = await logged_in.call("DELETE", path)
        assert status == 400, (path, data)
        assert data["error"]["code"] == "validation_error"
    await _assert_unchanged(logged_in, folder, ids)


async def test_remove_keeps_files_and_cancels_queue_items(logged_in: Api, fakesite: str) -> None:
    folder, ids = await _series_with_queue(logged_in, fakesite)
    sub = logged_in.ctx.bus.subscribe({events.SERIES_REMOVED, events.SCAN_COMPLETE})
    status, data = await logged_in.call("DELETE", f"/api/anime/{KEY}")
    assert status == 200, data
    assert data["status"] == "success" and data["key"] == KEY
    assert data["files_deleted"] is False and data["files_kept"] is True
    assert data["cancelled_downloads"] == len(ids) == 2
    removed = await _wait_for(sub, events.SERIES_REMOVED)
    assert removed.data["key"] == KEY and removed.data["files_deleted"] is False

    assert (folder / "Season 01" / "keep-me.mkv").read_bytes() == b"video"
    status, _ = await logged_in.call("GET", f"/api/anime/{KEY}")
    assert status == 404
    status, listed = await logged_in.call("GET", "/api/anime?all=true")
    assert status == 200 and KEY not in [s["key"] for s in listed]
    assert not set(ids) & await _queue_ids(logged_in)
    status, queue = await logged_in.call("GET", "/api/queue/status")
    assert status == 200 and queue["pending_queue"] == []
    status, data = await logged_in.call("DELETE", f"/api/anime/{KEY}")  # twice: gone
    assert status == 404
    with pytest.raises(NotFound):  # a refresh (scheduled or running) does not bring it back
        await logged_in.ctx.anime.refresh(KEY)

    # The kept folder is rescanned at once: listed as unmatched, not added back.
    await _wait_for(sub, events.SCAN_COMPLETE)
    status, unmatched = await logged_in.call("GET", "/api/library/unmatched")
    assert status == 200
    (entry,) = [u for u in unmatched if u["folder"] == folder.name]
    assert "deleted" in entry["reason"]
    await logged_in.call("POST", "/api/anime/rescan")
    await _wait_for(sub, events.SCAN_COMPLETE)
    status, _ = await logged_in.call("GET", f"/api/anime/{KEY}")
    assert status == 404

    # Matching the kept folder again brings the series back with its folder.
    body = {"folder": folder.name, "key": KEY, "site": "aniworld"}
    status, data = await logged_in.call("POST", "/api/library/match", json=body)
    assert status == 200, data
    status, detail = await logged_in.call("GET", f"/api/anime/{KEY}")
    assert status == 200 and detail["folder"] == folder.name


async def test_add_again_revives_the_removed_series_in_its_folder(logged_in: Api, fakesite: str) -> None:
    folder, _ = await _series_with_queue(logged_in, fakesite)
    status, _ = await logged_in.call("DELETE", f"/api/anime/{KEY}")
    assert status == 200
    again = await _add(logged_in, fakesite)
    assert again["folder"] == folder.name
    status, detail = await logged_in.call("GET", f"/api/anime/{KEY}")
    assert status == 200 and detail["episodes"]


async def test_delete_files_inside_the_root(logged_in: Api, fakesite: str, tmp_path: Path) -> None:
    folder, ids = await _series_with_queue(logged_in, fakesite)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious.mkv").write_bytes(b"not yours")
    os.symlink(outside, folder / "link-out")  # a link inside the tree is removed, never followed
    sub = logged_in.ctx.bus.subscribe({events.SERIES_REMOVED})
    status, data = await logged_in.call("DELETE", f"/api/anime/{KEY}?delete_files=true")
    assert status == 200, data
    assert data["files_deleted"] is True and data["files_kept"] is False and "warning" not in data
    assert data["cancelled_downloads"] == 2
    assert (await _wait_for(sub, events.SERIES_REMOVED)).data["files_deleted"] is True
    assert not folder.exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(TRASH_PREFIX)]
    assert (outside / "precious.mkv").read_bytes() == b"not yours"
    assert not set(ids) & await _queue_ids(logged_in)
    status, _ = await logged_in.call("GET", f"/api/anime/{KEY}")
    assert status == 404


async def test_delete_files_refused_outside_the_roots(logged_in: Api, fakesite: str, tmp_path: Path) -> None:
    folder, ids = await _series_with_queue(logged_in, fakesite)
    elsewhere = tmp_path / "not-a-root"
    (elsewhere / folder.name / "Season 01").mkdir(parents=True)
    (elsewhere / folder.name / "Season 01" / "keep-me.mkv").write_bytes(b"video")

    def move_row() -> None:
        s = logged_in.ctx.store.e.AnimeSeries.get(key=KEY)
        s.root = str(elsewhere)

    await logged_in.ctx.store.run(move_row)
    status, data = await logged_in.call("DELETE", f"/api/anime/{KEY}?delete_files=true")
    assert status == 409 and data["error"]["code"] == "folder_outside_library"
    await _assert_unchanged(logged_in, elsewhere / folder.name, ids)
    assert (folder / "Season 01" / "keep-me.mkv").exists()


async def test_delete_files_refused_for_a_symlinked_folder(
    logged_in: Api, fakesite: str, tmp_path: Path
) -> None:
    folder, ids = await _series_with_queue(logged_in, fakesite)
    real = tmp_path / "real-folder"
    folder.rename(real)
    os.symlink(real, folder)  # the series folder is a link to somewhere outside the root
    status, data = await logged_in.call("DELETE", f"/api/anime/{KEY}?delete_files=true")
    assert status == 409 and data["error"]["code"] == "folder_is_symlink"
    await _assert_unchanged(logged_in, folder, ids)
    assert folder.is_symlink() and (real / "Season 01" / "keep-me.mkv").exists()


async def test_a_downloading_item_is_cancelled(logged_in: Api, fakesite: str) -> None:
    _, ids = await _series_with_queue(logged_in, fakesite)

    def mark_downloading() -> None:
        logged_in.ctx.store.e.DownloadQueueItem[ids[0]].status = "downloading"

    await logged_in.ctx.store.run(mark_downloading)
    status, data = await logged_in.call("DELETE", f"/api/anime/{KEY}")
    assert status == 200 and data["cancelled_downloads"] == 2

    def states() -> list[tuple[str, bool]]:
        rows = [logged_in.ctx.store.e.DownloadQueueItem[i] for i in ids]
        return [(r.status, r.deleted_at is not None) for r in rows]

    assert await logged_in.ctx.store.run(states) == [("cancelled", True), ("cancelled", True)]


async def test_read_scoped_api_key_cannot_remove(logged_in: Api, fakesite: str) -> None:
    await _add(logged_in, fakesite)
    status, created = await logged_in.call(
        "POST", "/api/auth/api-keys", json={"name": "reader", "scope": "read"}
    )
    assert status == 201, created
    resp = await logged_in.client.delete(f"/api/anime/{KEY}", headers={"X-Api-Key": created["key"]})
    assert resp.status == 403
    status, _ = await logged_in.call("GET", f"/api/anime/{KEY}")
    assert status == 200


async def test_detail_carries_the_preferred_languages(logged_in: Api, fakesite: str) -> None:
    await _add(logged_in, fakesite)
    status, detail = await logged_in.call("GET", f"/api/anime/{KEY}")
    assert status == 200
    assert detail["preferred_languages"] == logged_in.ctx.config["downloads"]["language"]


async def test_a_failed_folder_delete_keeps_the_series(
    logged_in: Api, fakesite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = await _series_with_queue(logged_in, fakesite)

    def refuse(*_args: object) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("aniworldd.services.folder_removal.move_aside", refuse)
    status, data = await logged_in.call("DELETE", f"/api/anime/{KEY}?delete_files=true")
    assert status == 503 and data["error"]["code"] == "files_not_deleted"
    assert "kept" in data["error"]["message"]
    status, detail = await logged_in.call("GET", f"/api/anime/{KEY}")
    assert status == 200 and (folder / "Season 01" / "keep-me.mkv").exists()
