"""/api/anime and /api/library against the fake provider site, a real library folder and scanner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aniworldd import events
from tests.api.conftest import Api

KAGUYA = "kaguya-sama-love-is-war"


async def _add(api: Api, origin: str, key: str = KAGUYA) -> dict:
    status, data = await api.call("POST", "/api/anime/add", json={"link": f"{origin}/anime/stream/{key}"})
    assert status == 200, data
    return data


async def _wait_for(sub: events.Subscription, type_: str) -> events.Event:
    async def loop() -> events.Event:
        while True:
            ev = await sub.get()
            if ev.type == type_:
                return ev

    return await asyncio.wait_for(loop(), 20)


async def test_search_both_sites_and_one_site(logged_in: Api) -> None:
    status, results = await logged_in.call("POST", "/api/anime/search", json={"query": "kaguya"})
    assert status == 200
    assert any(r["key"] == KAGUYA and r["site"] == "aniworld" for r in results)
    for r in results:
        assert set(r) == {"key", "name", "site", "link", "year"}
    status, results = await logged_in.call(
        "POST", "/api/anime/search", json={"query": "office", "site": "sto"}
    )
    assert status == 200 and results and all(r["site"] == "sto" for r in results)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": "   "},
        {"query": 5},
        {"query": "x", "site": "netflix"},
        {"query": "x" * 201},
    ],
)
async def test_search_rejects_bad_bodies(logged_in: Api, body: dict) -> None:
    status, data = await logged_in.call("POST", "/api/anime/search", json=body)
    assert status == 400 and data["error"]["code"] == "validation_error"
    assert data["error"]["details"]["errors"]


async def test_search_provider_blocked_and_unreachable(logged_in: Api, fakesite_state) -> None:
    fakesite_state.blocked = True
    status, data = await logged_in.call(
        "POST", "/api/anime/search", json={"query": "kaguya", "site": "aniworld"}
    )
    assert status == 403 and data["error"]["code"] == "provider_blocked"
    fakesite_state.blocked = False
    fakesite_state.fail_next = 100
    status, data = await logged_in.call(
        "POST", "/api/anime/search", json={"query": "kaguya", "site": "aniworld"}
    )
    assert status == 503 and data["error"]["code"] == "provider_unreachable"


async def test_add_then_list_missing_and_detail(logged_in: Api, fakesite: str) -> None:
    status, listed = await logged_in.call("GET", "/api/anime")
    assert status == 200 and listed == []

    added = await _add(logged_in, fakesite)
    assert added["status"] == "success" and added["key"] == KAGUYA and added["folder"]

    status, listed = await logged_in.call("GET", "/api/anime")
    assert status == 200
    (summary,) = [s for s in listed if s["key"] == KAGUYA]
    assert {"key", "name", "site", "folder", "link", "missing_episodes", "missing_count"} <= set(summary)
    assert summary["site"] == "aniworld" and summary["folder"] == added["folder"]
    missing = summary["missing_episodes"]
    assert all(isinstance(season, str) and season.isdigit() for season in missing)
    assert summary["missing_count"] == sum(len(v) for v in missing.values()) > 0
    assert "0" in missing  # the movies count as season 0

    status, detail = await logged_in.call("GET", f"/api/anime/{KAGUYA}")
    assert status == 200
    assert detail["key"] == KAGUYA and detail["title"] and detail["folder"] == added["folder"]
    assert "description" in detail
    assert len(detail["episodes"]) == summary["missing_count"]
    for ep in detail["episodes"]:
        assert {"season", "episode", "title", "languages", "status"} <= set(ep)
        assert ep["status"] == "missing"

    # the seed's trailing-slash spelling works too
    status, again = await logged_in.call("GET", "/api/anime/")
    assert status == 200 and again == listed


async def test_detail_accepts_folder_name_once_resolved_to_key(logged_in: Api, fakesite: str) -> None:
    added = await _add(logged_in, fakesite)
    status, detail = await logged_in.call("GET", f"/api/anime/{added['folder']}")
    assert status == 200 and detail["key"] == KAGUYA


@pytest.mark.parametrize(
    ("anime_id", "code"), [("no-such-series", 404), ("Not A Key!", 400), ("a%2F..%2Fb", 400)]
)
async def test_detail_unknown_and_bad_ids(logged_in: Api, anime_id: str, code: int) -> None:
    status, data = await logged_in.call("GET", f"/api/anime/{anime_id}")
    assert status == code and "error" in data


@pytest.mark.parametrize(
    "link",
    [
        "not a link",
        "https://example.com/anime/stream/x",
        "https://aniworld.to/animes",
        "ftp://aniworld.to/x",
        "\u00a9m]",  # the URL parser itself gives up ("Invalid IPv6 URL")
    ],
)
async def test_add_rejects_bad_links(logged_in: Api, link: str) -> None:
    status, data = await logged_in.call("POST", "/api/anime/add", json={"link": link})
    assert status == 400, data
    status, listed = await logged_in.call("GET", "/api/anime?all=true")
    assert listed == []


async def test_add_unknown_series_is_404_and_changes_nothing(
    logged_in: Api, fakesite: str, tmp_path: Path
) -> None:
    status, data = await logged_in.call(
        "POST", "/api/anime/add", json={"link": f"{fakesite}/anime/stream/nope"}
    )
    assert status == 404
    library = Path(logged_in.ctx.config["library"]["roots"][0])
    assert not library.exists() or list(library.iterdir()) == []  # noqa: ASYNC240


async def test_list_all_and_cache_follows_scans(logged_in: Api, fakesite: str) -> None:
    added = await _add(logged_in, fakesite)
    status, before = await logged_in.call("GET", "/api/anime")
    (summary,) = before
    season = sorted(summary["missing_episodes"], key=int)[-1]
    number = summary["missing_episodes"][season][0]
    # put one episode on disk the way the daemon names files, then rescan through the API
    root = Path(logged_in.ctx.config["library"]["roots"][0])
    folder = root / added["folder"]
    season_dir = folder / ("Movies" if season == "0" else f"Season {int(season):02d}")
    season_dir.mkdir(parents=True, exist_ok=True)
    name = added["name"]
    if season == "0":
        fname = f"{name} - Movie {number:02d} - (German Dub).mp4"
    else:
        fname = f"{name} - S{int(season):02d}E{number:03d} - (German Dub).mp4"
    (season_dir / fname).write_bytes(b"\0" * 1024)

    sub = logged_in.ctx.bus.subscribe({events.SCAN_COMPLETE, events.SCAN_FAILED})
    status, data = await logged_in.call("POST", "/api/anime/rescan", json={"key": KAGUYA})
    assert status == 202 and data == {"status": "started", "key": KAGUYA}
    ev = await _wait_for(sub, events.SCAN_COMPLETE)
    assert ev.type == events.SCAN_COMPLETE

    status, after = await logged_in.call("GET", "/api/anime")
    assert after[0]["missing_count"] == summary["missing_count"] - 1
    assert number not in after[0]["missing_episodes"].get(season, [])
    status, detail = await logged_in.call("GET", f"/api/anime/{KAGUYA}")
    on_disk = [e for e in detail["episodes"] if e["status"] == "on_disk"]
    assert [(str(e["season"]), e["episode"]) for e in on_disk] == [(season, number)]


async def test_list_only_missing_by_default(logged_in: Api, fakesite: str) -> None:
    await _add(logged_in, fakesite)

    def complete() -> None:
        s = logged_in.ctx.store.e.AnimeSeries.get(key=KAGUYA)
        for e in s.episodes:
            e.on_disk_path = f"/x/{e.season}-{e.number}.mp4"

    logged_in.ctx.store.run_sync(complete)
    logged_in.ctx.bus.publish(events.SERIES_UPDATED, {"key": KAGUYA, "folder": None, "name": "", "site": ""})
    status, listed = await logged_in.call("GET", "/api/anime")
    assert status == 200 and listed == []
    status, listed = await logged_in.call("GET", "/api/anime?all=true")
    assert [s["key"] for s in listed] == [KAGUYA] and listed[0]["missing_count"] == 0
    status, data = await logged_in.call("GET", "/api/anime?all=maybe")
    assert status == 400


async def test_rescan_whole_library_and_errors(logged_in: Api) -> None:
    sub = logged_in.ctx.bus.subscribe({events.SCAN_COMPLETE})
    status, data = await logged_in.call("POST", "/api/anime/rescan")
    assert status == 202 and data["status"] == "started"
    await _wait_for(sub, events.SCAN_COMPLETE)
    status, data = await logged_in.call("POST", "/api/anime/rescan", json={"key": "unknown-series"})
    assert status == 404
    status, data = await logged_in.call("POST", "/api/anime/rescan", json={"key": "Bad Key"})
    assert status == 400
    status, data = await logged_in.call(
        "POST", "/api/anime/rescan", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and data["error"]["code"] == "invalid_json"


async def test_unmatched_folders_are_listed(logged_in: Api) -> None:
    root = Path(logged_in.ctx.config["library"]["roots"][0])
    (root / "Some Show (2020)" / "Season 01").mkdir(parents=True)
    sub = logged_in.ctx.bus.subscribe({events.SCAN_COMPLETE})
    await logged_in.call("POST", "/api/anime/rescan")
    await _wait_for(sub, events.SCAN_COMPLETE)
    status, folders = await logged_in.call("GET", "/api/library/unmatched")
    assert status == 200 and [f["folder"] for f in folders] == ["Some Show (2020)"]


async def test_match_an_unmatched_folder(logged_in: Api, fakesite: str) -> None:
    root = Path(logged_in.ctx.config["library"]["roots"][0])
    (root / "Office Copy" / "Season 01").mkdir(parents=True)
    body = {"folder": "Office Copy", "key": "the-office-us", "site": "sto"}
    status, data = await logged_in.call("POST", "/api/library/match", json=body)
    assert status == 200 and data["status"] == "success" and data["key"] == "the-office-us"
    status, folders = await logged_in.call("GET", "/api/library/unmatched")
    assert folders == []
    status, listed = await logged_in.call("GET", "/api/anime?all=true")
    assert [(s["key"], s["folder"]) for s in listed] == [("the-office-us", "Office Copy")]
    # the folder now belongs to that key: matching it to another one is a conflict
    status, data = await logged_in.call("POST", "/api/library/match", json={**body, "key": "other-show"})
    assert status == 409
    status, data = await logged_in.call("POST", "/api/library/match", json={**body, "folder": "Nope"})
    assert status == 404
    status, data = await logged_in.call("POST", "/api/library/match", json={**body, "folder": "../etc"})
    assert status == 400


async def test_components_missing_answer_503(api_factory) -> None:
    api = await api_factory(with_services=False)
    await api.setup_and_login()
    for method, path, body in [
        ("GET", "/api/anime", None),
        ("GET", f"/api/anime/{KAGUYA}", None),
        ("POST", "/api/anime/search", {"query": "x"}),
        ("POST", "/api/anime/add", {"link": "https://aniworld.to/anime/stream/x"}),
        ("POST", "/api/anime/rescan", None),
        ("GET", "/api/library/unmatched", None),
        ("POST", "/api/library/match", {"folder": "a", "key": "a"}),
        ("GET", "/api/queue/status", None),
        ("POST", "/api/queue/start", None),
    ]:
        status, data = await api.call(method, path, json=body)
        assert status == 503, (path, data)
        assert data["error"]["code"] == "unavailable"
