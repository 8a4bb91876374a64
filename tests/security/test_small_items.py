"""Issue 16 item 12: the smaller faults. Deeply nested JSON, hostile names, config values that point the
daemon at system folders or break topics/templates, markers that are symlinks."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aniworldd.config import ConfigError, load_text
from aniworldd.core.markers import MarkerError, read_marker
from aniworldd.core.nfo import build_tvshow_nfo
from aniworldd.core.validators import sanitize_filename
from tests.api.conftest import Api
from tests.conftest import free_port

NESTED = "[" * 50_000


# ---- deeply nested JSON ---------------------------------------------------------------------------------


async def test_nested_json_is_a_400_on_every_json_route(logged_in: Api) -> None:
    from aniworldd.api.schemas import ROUTES

    checked = 0
    for route in ROUTES:
        if route.body is None:
            continue
        path = route.path
        for name in route.params or {}:
            path = path.replace("{" + name + "}", {"key": "one-piece", "id": "1"}.get(name, "1"))
        resp = await logged_in.client.request(
            route.method,
            path,
            data=NESTED,
            headers={**logged_in.headers, "Content-Type": "application/json"},
        )
        text = await resp.text()
        assert resp.status != 500, (route.method, route.path, text)
        assert "Traceback" not in text and "RecursionError" not in text
        if resp.status == 400:
            assert (await resp.json())["error"]["code"] == "invalid_json", (route.path, text)
            checked += 1
    assert checked >= 10  # most JSON routes reach the body parser with these parameters


async def test_nested_json_on_a_public_route(api: Api) -> None:
    resp = await api.client.post("/api/auth/login", data=NESTED, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "invalid_json"
    assert "nested too deeply" in body["error"]["message"]


async def test_nested_json_over_the_websocket_keeps_the_connection(logged_in: Api) -> None:
    ws = await logged_in.client.ws_connect(f"/ws/connect?token={logged_in.token}")
    try:
        await ws.send_str(NESTED)
        reply = await ws.receive_json(timeout=5)
        while reply.get("type") != "error":
            reply = await ws.receive_json(timeout=5)
        assert "JSON" in reply["data"]["message"]
        await ws.send_str('{"action": "ping"}')
        reply = await ws.receive_json(timeout=5)
        while reply.get("type") != "pong":
            reply = await ws.receive_json(timeout=5)
        assert not ws.closed
    finally:
        await ws.close()


# ---- names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u200d", "\u2060", "\ufeff", "\u2066", "\x00", "\x85"])
def test_invisible_and_control_characters_are_stripped_from_names(char: str) -> None:
    name = sanitize_filename(f"Evil{char}Title{char}.mkv")
    assert char not in name
    assert name == "EvilTitle.mkv" or name == "Evil Title .mkv".replace(" .", ".") or "Evil" in name


def test_bidi_override_cannot_fake_an_extension() -> None:
    name = sanitize_filename("Episode \u202evkm.exe")
    assert "\u202e" not in name and name.endswith(".exe")


def test_a_nul_in_a_title_still_gives_valid_nfo_xml() -> None:
    text = build_tvshow_nfo(
        {
            "name": "Bad\x00Name\u202e\x07",
            "description": "plot\x1bwith escape\ufffe",
            "key": "bad",
            "genres": ["A\x00"],
        }
    )
    root = ET.fromstring(text.split("\n", 1)[1])  # the body parses as XML
    assert root.findtext("title") == "BadName"
    assert "\x00" not in text and "\x1b" not in text and "\u202e" not in text


# ---- markers --------------------------------------------------------------------------------------------


def test_a_symlinked_legacy_key_marker_does_not_disclose_its_target(tmp_path: Path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    folder = tmp_path / "Show"
    folder.mkdir()
    os.symlink(secret, folder / "key")
    try:
        marker = read_marker(folder)
    except MarkerError as exc:
        assert "root:x" not in str(exc)
        assert "symlink" in str(exc) or "regular file" in str(exc)
    else:
        assert marker is None


def test_a_symlinked_json_marker_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"key": "one-piece"}')
    folder = tmp_path / "Show"
    folder.mkdir()
    os.symlink(target, folder / ".aniworld.json")
    with pytest.raises(MarkerError, match="regular file"):
        read_marker(folder)


# ---- config values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("library: {roots: [/]}", "library.roots[0]"),
        ("library: {roots: [/etc]}", "library.roots[0]"),
        ("library: {roots: ['/etc/']}", "library.roots[0]"),
        ("library: {roots: ['/srv/../etc/ssl']}", "library.roots[0]"),
        ("library: {roots: [/proc]}", "library.roots[0]"),
        ("data_dir: /", "data_dir"),
        ("data_dir: /usr", "data_dir"),
        ('provider: {user_agent: "Mozilla\\r\\nX-Evil: 1"}', "provider.user_agent"),
        ('provider: {user_agent: "Mozilla\\n"}', "provider.user_agent"),
        ("mqtt: {discovery_prefix: '#'}", "mqtt.discovery_prefix"),
        ("mqtt: {discovery_prefix: 'home/+/x'}", "mqtt.discovery_prefix"),
        ('mqtt: {base_topic: "aniworld\\n"}', "mqtt.base_topic"),
        ("library: {naming: '..\\..\\{name}.{ext}'}", "library.naming"),
        ("library: {naming: '{folder}\\{name}.{ext}'}", "library.naming"),
        ("library: {naming: '{folder}/{season:200000000d}/{name}.{ext}'}", "library.naming"),
        ("library: {movie_naming: '{folder}/{episode:>99}/{name}.{ext}'}", "library.movie_naming"),
        ("library: {naming: '{folder}/{name.__class__}.{ext}'}", "library.naming"),
        ("library: {naming: '{folder}/{season:{episode}}/{name}.{ext}'}", "library.naming"),
    ],
)
def test_config_refuses_dangerous_values(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(text, "config.yaml", env={})
    assert path in {i.path for i in info.value.issues}, info.value


def test_config_still_accepts_ordinary_values(tmp_path: Path) -> None:
    cfg = load_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"library:\n  roots: [{tmp_path / 'lib'}, /srv/anime, /mnt/nas/anime]\n"
        "  naming: '{folder}/Season {season:02d}/{name} - S{season:02d}E{episode:03d}.{ext}'\n"
        "provider: {user_agent: 'Mozilla/5.0 (X11; Linux x86_64)'}\n"
        "mqtt: {discovery_prefix: homeassistant, base_topic: aniworld}\n",
        "config.yaml",
        env={},
    )
    assert cfg["library"]["roots"][1] == "/srv/anime"


# ---- the database ----------------------------------------------------------------------------------------

_UNWRITABLE_SCRIPT = r"""
import asyncio, json, resource, signal, sys
from pathlib import Path
from aiohttp.test_utils import TestClient, TestServer
from aniworldd.api.app import create_app
from aniworldd.api.context import AppContext
from aniworldd.config import load_text
from aniworldd.db import Store
from aniworldd.events import EventBus

async def main(tmp: Path) -> None:
    cfg = load_text(f"data_dir: {tmp / 'data'}\nlibrary: {{roots: [{tmp / 'lib'}]}}\n", env={}, base_dir=tmp)
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    store.write_probe_interval = 0.0
    ctx = AppContext(config=cfg, store=store, bus=EventBus())
    async with TestClient(TestServer(create_app(ctx))) as client:
        before = await client.get("/health")
        # No file may grow any more from here on: what a full disk or a read-only remount looks like.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        after = await client.get("/health")
        print(json.dumps({"before": before.status, "after": after.status, "body": await after.json()}))
    store.close()

asyncio.run(main(Path(sys.argv[1])))
"""


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    root = Path(__file__).parents[2]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=root)


def test_health_is_503_when_the_database_cannot_be_written(tmp_path: Path) -> None:
    res = _run([sys.executable, "-c", _UNWRITABLE_SCRIPT, str(tmp_path)])
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["before"] == 200
    assert result["after"] == 503, result
    assert result["body"]["database"] == "error" and result["body"]["status"] == "degraded"


def _daemon_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"server: {{host: 127.0.0.1, port: {free_port()}}}\n"
        f"library: {{roots: [{tmp_path / 'lib'}], watch: false, scan_on_start: false}}\n"
        "downloads: {autostart: false}\n"
    )
    (tmp_path / "lib").mkdir(exist_ok=True)
    return cfg


def _make_database(tmp_path: Path) -> Path:
    """A real daemon database with some data in it (a few hundred pages)."""
    from aniworldd.db import Store

    store = Store(None, tmp_path / "data")
    path = store.sqlite_path
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB)")
        db.executemany("INSERT INTO filler (data) VALUES (?)", [(os.urandom(900),) for _ in range(600)])
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_a_database_corrupt_in_the_middle_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    cfg = _daemon_config(tmp_path)
    path = _make_database(tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # garbage over a few whole pages in the middle, headers included
        fh.seek((size // 2) // 4096 * 4096)
        fh.write(b"\xa5" * 4096 * 4)
    before = path.read_bytes()
    res = _run([sys.executable, "-m", "aniworldd", "run", "--config", str(cfg)], timeout=30)
    assert res.returncode == 65, (res.returncode, res.stderr[-2000:])
    assert "corrupt" in res.stderr and str(path) in res.stderr
    assert "Traceback" not in res.stderr
    assert path.read_bytes() == before  # nothing "repaired" behind the owner's back


def test_a_zero_length_database_is_not_silently_replaced(tmp_path: Path) -> None:
    cfg = _daemon_config(tmp_path)
    path = tmp_path / "data" / "aniworldd.db"
    path.parent.mkdir(parents=True)
    path.touch()
    res = _run([sys.executable, "-m", "aniworldd", "run", "--config", str(cfg)], timeout=30)
    assert res.returncode == 65, (res.returncode, res.stderr[-2000:])
    assert "empty (0 bytes)" in res.stderr and "Traceback" not in res.stderr
    assert path.stat().st_size == 0


# ---- absurd numbers from a provider page ----------------------------------------------------------------


async def test_a_season_number_of_3000000000_is_not_a_500(logged_in: Api, fakesite_state) -> None:
    from tests.fakesite.catalog import ANIWORLD, make_series

    fakesite_state.catalog.add(make_series(ANIWORLD, "huge-season", "Huge Season", {1: 2, 3_000_000_000: 1}))
    origin = logged_in.ctx.config["provider"]["aniworld_url"][0]
    status, data = await logged_in.call(
        "POST", "/api/anime/add", json={"link": f"{origin}/anime/stream/huge-season/staffel-3000000000"}
    )
    assert status != 500, data
    assert status in (200, 400, 404, 422, 502), data
    if status == 200:  # added without the impossible season
        status, detail = await logged_in.call("GET", "/api/anime/huge-season")
        assert status == 200, detail
        assert "3000000000" not in str(detail)
    status, data = await logged_in.call("GET", "/api/anime/huge-season/staffel-3000000000")
    assert status in (400, 404), data


async def test_invisible_characters_in_a_provider_title_are_stripped(logged_in: Api, fakesite_state) -> None:
    from tests.fakesite.catalog import ANIWORLD, make_series

    title = "\ufeffEvil\u202e Name\u200b"
    fakesite_state.catalog.add(make_series(ANIWORLD, "evil-name", title, {1: 1}))
    origin = logged_in.ctx.config["provider"]["aniworld_url"][0]
    status, data = await logged_in.call(
        "POST", "/api/anime/add", json={"link": f"{origin}/anime/stream/evil-name"}
    )
    assert status == 200, data
    status, detail = await logged_in.call("GET", "/api/anime/evil-name")
    assert status == 200, detail
    assert detail["name"] == "Evil Name"
    assert detail["folder"].startswith("Evil Name")
