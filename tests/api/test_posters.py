"""GET /api/anime/{key}/poster and GET /api/library/poster-token, against the real PosterService and ffmpeg.

A poster.jpg in a series folder is scaled once into the data dir's thumbnail cache (a new one only when the
source file changes); a series without a usable poster gets the SVG placeholder; an unknown key is a 404 JSON
error; every answer needs a credential: Bearer, X-Api-Key (scope read) or a poster token in `?t=`.
Also the per-series counts the library cards show (GET /api/anime?all=true).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aniworldd.api.posters import PLACEHOLDER_FILE, TOKEN_WINDOW, PosterTokens
from aniworldd.services.auth_service import PasswordFile
from aniworldd.services.poster_service import THUMB_WIDTH, PosterService
from tests.api.conftest import Api

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")

KEY = "poster-show"
FOLDER = "Poster Show (2020)"


def make_image(path: Path, size: str = "600x900", color: str = "red") -> bytes:
    """A real JPEG of `size`, made by ffmpeg (no image library needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"color=c={color}:s={size}"]
        + ["-frames:v", "1", str(path)],
        check=True,
    )
    return path.read_bytes()


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOF marker."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + length
    raise AssertionError("no SOF marker")


def add_series(api: Api, key: str = KEY, folder: str | None = FOLDER) -> Path:
    root = api.ctx.config["library"]["roots"][0]

    def create() -> None:
        api.ctx.store.e.AnimeSeries(key=key, name=key.title(), root=root if folder else None, folder=folder)

    api.ctx.store.run_sync(create)
    path = Path(root) / (folder or "none")
    if folder:
        path.mkdir(parents=True, exist_ok=True)
    return path


def service(api: Api) -> PosterService:
    return api.ctx.extras["posters"]  # wired as the daemon does (tests/api/conftest.py)


async def get(api: Api, path: str, headers: dict | None = None):
    resp = await api.client.get(path, headers=headers or {})
    return resp, await resp.read()


async def test_poster_is_resized_once_and_cached(logged_in: Api) -> None:
    api = logged_in
    folder = add_series(api)
    source = make_image(folder / "poster.jpg")
    svc = service(api)

    resp, data = await get(api, f"/api/anime/{KEY}/poster", api.headers)
    assert resp.status == 200, data
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["X-Poster"] == "thumbnail"
    assert resp.headers["Cache-Control"] == "private, max-age=3600"
    assert jpeg_size(data) == (THUMB_WIDTH, 360) and len(data) < len(source)
    etag = resp.headers["ETag"]
    cached = list((Path(api.ctx.config["data_dir"]) / "posters").glob(f"{KEY}.*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == data
    assert svc.conversions == 1

    # served from the cache: no second ffmpeg run; the browser's copy is revalidated with a 304
    resp, again = await get(api, f"/api/anime/{KEY}/poster", api.headers)
    assert resp.status == 200 and again == data and resp.headers["ETag"] == etag
    resp, empty = await get(api, f"/api/anime/{KEY}/poster", {**api.headers, "If-None-Match": etag})
    assert resp.status == 304 and empty == b"" and resp.headers["ETag"] == etag
    assert svc.conversions == 1

    # a replaced poster (new mtime) gets a new thumbnail; the old one is removed
    make_image(folder / "poster.jpg", size="300x300", color="blue")
    st = (folder / "poster.jpg").stat()
    os.utime(folder / "poster.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    resp, fresh = await get(api, f"/api/anime/{KEY}/poster", {**api.headers, "If-None-Match": etag})
    assert resp.status == 200 and resp.headers["ETag"] != etag
    assert jpeg_size(fresh) == (THUMB_WIDTH, THUMB_WIDTH)
    assert svc.conversions == 2
    cached = list((Path(api.ctx.config["data_dir"]) / "posters").glob(f"{KEY}.*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == fresh


async def test_concurrent_first_requests_convert_once(logged_in: Api) -> None:
    api = logged_in
    make_image(add_series(api) / "poster.jpg")
    answers = await asyncio.gather(*(get(api, f"/api/anime/{KEY}/poster", api.headers) for _ in range(6)))
    assert {resp.status for resp, _ in answers} == {200}
    assert len({data for _, data in answers}) == 1
    assert service(api).conversions == 1


async def test_placeholder_without_a_usable_poster(logged_in: Api) -> None:
    api = logged_in
    folder = add_series(api)  # a folder without poster.jpg
    add_series(api, "no-folder-yet", folder=None)
    add_series(api, "broken-poster", folder="Broken (2021)")
    broken = Path(api.ctx.config["library"]["roots"][0]) / "Broken (2021)" / "poster.jpg"
    broken.write_bytes(b"this is not an image")
    svg = PLACEHOLDER_FILE.read_bytes()
    for key in (KEY, "no-folder-yet", "broken-poster", "broken-poster"):
        resp, data = await get(api, f"/api/anime/{key}/poster", api.headers)
        assert resp.status == 200, (key, data)
        assert resp.headers["Content-Type"] == "image/svg+xml"
        assert resp.headers["X-Poster"] == "placeholder" and data == svg
        assert resp.headers["ETag"] and "max-age" in resp.headers["Cache-Control"]
    assert service(api).conversions == 1  # the broken file was tried once, not on every request
    # a symlink is not followed
    make_image(folder.parent / "elsewhere.jpg")
    (folder / "poster.jpg").symlink_to(folder.parent / "elsewhere.jpg")
    resp, _ = await get(api, f"/api/anime/{KEY}/poster", api.headers)
    assert resp.headers["X-Poster"] == "placeholder"


async def test_unknown_or_malformed_key(logged_in: Api) -> None:
    status, data = await logged_in.call("GET", "/api/anime/no-such-series/poster")
    assert status == 404 and data["error"]["code"] == "not_found"
    assert data["error"]["details"] == {"key": "no-such-series"}
    status, data = await logged_in.call("GET", "/api/anime/Not_A_Key/poster")
    assert status == 400 and data["error"]["code"] == "validation_error"


async def test_credentials_are_required(logged_in: Api) -> None:
    api = logged_in
    make_image(add_series(api) / "poster.jpg")
    url = f"/api/anime/{KEY}/poster"
    jwt = api.token

    # nothing, a wrong token: 401 JSON, before the key is even looked up; the login JWT is no poster token
    for path in (url, url + "?t=123.abc", "/api/anime/no-such-series/poster", f"{url}?t={jwt}"):
        resp, data = await get(api, path)
        assert resp.status == (400 if jwt in path else 401), path  # a JWT is longer than any poster token
        assert resp.headers["Content-Type"].startswith("application/json")
        assert b'"error"' in data

    # a poster token opens posters, and nothing else
    status, issued = await api.call("GET", "/api/library/poster-token")
    assert status == 200 and set(issued) == {"token", "expires_at", "expires_in"}
    assert TOKEN_WINDOW <= issued["expires_in"] <= 2 * TOKEN_WINDOW
    token = issued["token"]
    assert jwt not in token
    resp, _ = await get(api, f"{url}?t={token}")
    assert resp.status == 200 and resp.headers["X-Poster"] == "thumbnail"
    for other in ("/api/anime?all=true", f"/api/anime/{KEY}", "/api/library/poster-token"):
        resp, _ = await get(api, f"{other}{'&' if '?' in other else '?'}t={token}")
        assert resp.status == 401, other
    resp, _ = await get(api, url, {"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    # the same token for everyone in the same window: stable image URLs, browser cache hits
    assert (await api.call("GET", "/api/library/poster-token"))[1]["token"] == token
    resp, _ = await get(api, "/api/library/poster-token")
    assert resp.status == 401

    # API keys: `read` may, `feed` may not
    for scope, expected in (("read", 200), ("feed", 403)):
        status, created = await api.call("POST", "/api/auth/api-keys", json={"name": scope, "scope": scope})
        assert status == 201, created
        resp, _ = await get(api, url, {"X-Api-Key": created["key"]})
        assert resp.status == expected, scope

    # a new master password (aniworldd set-password) ends every poster token at once
    api.ctx.auth.reload_interval = 0
    PasswordFile(api.ctx.config["data_dir"]).set_password("another password 42", rounds=4)
    resp, _ = await get(api, f"{url}?t={token}")
    assert resp.status == 401


async def test_poster_tokens_expire_and_cannot_be_forged(logged_in: Api) -> None:
    tokens = PosterTokens(logged_in.ctx.config["data_dir"], logged_in.ctx.auth)
    now = 1_800_000_000.0
    issued = await tokens.issue(now)
    token = issued["token"]
    assert await tokens.verify(token, now)
    assert await tokens.verify(token, now + TOKEN_WINDOW - 1)
    assert not await tokens.verify(token, now + 2 * TOKEN_WINDOW)  # expired
    expires, _, signature = token.partition(".")
    assert not await tokens.verify(f"{int(expires) + TOKEN_WINDOW}.{signature}", now)  # longer life: forged
    assert not await tokens.verify(f"{expires}.{signature[:-2]}AA", now)
    assert not await tokens.verify(f"{int(now) + 10 * TOKEN_WINDOW}.{signature}", now)  # too far ahead
    for junk in ("", ".", "abc.def", "1.", "-5.x", "9" * 40 + ".x"):
        assert not await tokens.verify(junk, now)
    # after a restart (a new PosterTokens, same data dir) tokens stay valid: the key comes from the JWT secret
    again = PosterTokens(logged_in.ctx.config["data_dir"], logged_in.ctx.auth)
    assert await again.verify(token, now)


async def test_library_summaries_carry_the_card_counts(logged_in: Api) -> None:
    """listed / on disk / missing / queued and the languages on disk, per series, in one list call."""
    api = logged_in

    def seed() -> None:
        e = api.ctx.store.e
        full = e.AnimeSeries(key="all-there", name="All There")
        half = e.AnimeSeries(key="half-there", name="Half There")
        for n in (1, 2, 3):
            e.Episode(series=full, season=1, number=n, on_disk_path=f"/x/{n}.mp4", on_disk_language="ger-dub")
        e.Episode(series=full, season=1, number=4, on_disk_path="/x/4.mp4", on_disk_language="eng-sub")
        e.Episode(series=half, season=1, number=1, on_disk_path="/y/1.mp4")
        e.Episode(series=half, season=1, number=2)
        e.Episode(series=half, season=0, number=1)
        e.Episode(series=half, season=1, number=9, listed=False, on_disk_path="/y/9.mp4")
        e.DownloadQueueItem(series=half, season=1, episode=2, status="pending")
        e.DownloadQueueItem(series=half, season=0, episode=1, status="completed")

    api.ctx.store.run_sync(seed)
    status, listed = await api.call("GET", "/api/anime?all=true")
    assert status == 200
    cards = {
        s["key"]: (
            s["on_disk_count"],
            s["listed_count"],
            s["missing_count"],
            s["queued_count"],
            s["languages"],
        )
        for s in listed
    }
    assert cards == {"all-there": (4, 4, 0, 0, ["eng-sub", "ger-dub"]), "half-there": (1, 3, 2, 1, [])}
    # queueing changes the count the list shows (the cached answer is dropped on queue_status)
    status, _ = await api.call(
        "POST",
        "/api/queue/add",
        json={
            "serie_id": "half-there",
            "serie_name": "Half There",
            "episodes": [{"season": 0, "episode": 1}],
        },
    )
    assert status in (200, 201, 202), _
    for _ in range(50):
        listed = (await api.call("GET", "/api/anime?all=true"))[1]
        if {s["key"]: s["queued_count"] for s in listed}["half-there"] == 2:
            break
        await asyncio.sleep(0.02)
    assert {s["key"]: s["queued_count"] for s in listed} == {"all-there": 0, "half-there": 2}


async def test_without_ffmpeg_the_poster_is_served_unscaled(logged_in: Api) -> None:
    api = logged_in
    source = make_image(add_series(api) / "poster.jpg")
    api.ctx.extras["posters"] = PosterService(api.ctx.store, api.ctx.config["data_dir"], ffmpeg=None)
    resp, data = await get(api, f"/api/anime/{KEY}/poster", api.headers)
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"
    assert data == source and resp.headers["X-Poster"] == "thumbnail"
