"""Issue 16 item 1: no takeover with an API key, and no setup over existing state.

The attack: `PUT /api/config` with any `X-Api-Key` moved `data_dir` to an empty folder; after a restart
`/api/auth/setup` was open to anyone and the owner's password stopped working. A corrupt or unreadable
auth.json reopened setup too, with no credential at all. Each test below reproduces one step of that.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from aniworldd.api.app import create_app
from aniworldd.cli import main as cli_main
from aniworldd.services.auth_service import AuthService
from tests.api.conftest import PASSWORD, Api


def _doc(api: Api) -> dict:
    return yaml.safe_load(api.ctx.config_path.read_text())


async def _key(api: Api, scope: str | None) -> dict[str, str]:
    body = {"name": f"{scope} key"} | ({"scope": scope} if scope else {})
    status, created = await api.call("POST", "/api/auth/api-keys", json=body)
    assert status == 201, created
    assert created["scope"] == (scope or "read")
    return {"X-Api-Key": created["key"]}


async def _as_key(api: Api, headers: dict, method: str, path: str, **kwargs) -> tuple[int, object]:
    token, api.token = api.token, None
    try:
        return await api.call(method, path, headers=headers, **kwargs)
    finally:
        api.token = token


# ---- house-moving settings need a login token ------------------------------------------------------------

HOUSE_CHANGES = {
    "data_dir": lambda doc, tmp: doc.__setitem__("data_dir", str(tmp / "empty")),
    "database.url": lambda doc, tmp: doc.setdefault("database", {}).__setitem__(
        "url", f"sqlite:///{tmp / 'other.db'}"
    ),
    "server.port": lambda doc, tmp: doc.setdefault("server", {}).__setitem__("port", 8099),
    "auth.token_ttl": lambda doc, tmp: doc.setdefault("auth", {}).__setitem__("token_ttl", "30d"),
    "library.roots": lambda doc, tmp: doc["library"].__setitem__("roots", [str(tmp / "elsewhere")]),
    "downloads.temp_dir": lambda doc, tmp: doc["downloads"].__setitem__("temp_dir", str(tmp / "tmpdl")),
    # which Redis a cluster's events and login limits go through (here: its key prefix, valid alone)
    "cluster.prefix": lambda doc, tmp: doc.setdefault("cluster", {}).__setitem__("prefix", "elsewhere"),
}


@pytest.mark.parametrize("setting", sorted(HOUSE_CHANGES))
async def test_an_admin_api_key_cannot_move_the_house(logged_in: Api, tmp_path: Path, setting: str) -> None:
    admin = await _key(logged_in, "admin")
    before = logged_in.ctx.config_path.read_text()
    doc = _doc(logged_in)
    HOUSE_CHANGES[setting](doc, tmp_path)
    status, data = await _as_key(logged_in, admin, "PUT", "/api/config", json=doc)
    assert status == 403, data
    assert data["error"]["code"] == "login_required"
    assert setting.split(".")[0] in data["error"]["message"]
    assert logged_in.ctx.config_path.read_text() == before
    # the owner, logged in, may
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200, data


async def test_an_admin_api_key_changes_ordinary_settings(logged_in: Api) -> None:
    admin = await _key(logged_in, "admin")
    status, got = await _as_key(logged_in, admin, "GET", "/api/config")
    assert status == 200
    doc = got["config"]
    doc["downloads"]["max_concurrent"] = 3
    status, data = await _as_key(logged_in, admin, "PUT", "/api/config", json=doc)
    assert status == 200, data
    assert _doc(logged_in)["downloads"]["max_concurrent"] == 3


async def test_an_admin_api_key_cannot_restore_a_backup_that_moves_the_house(
    logged_in: Api, tmp_path
) -> None:
    original = _doc(logged_in)
    moved = {**original, "data_dir": str(tmp_path / "empty")}
    status, _ = await logged_in.call("PUT", "/api/config", json=moved)  # the owner moves it ...
    assert status == 200
    status, _ = await logged_in.call("PUT", "/api/config", json=original)  # ... and back
    assert status == 200
    _, backups = await logged_in.call("GET", "/api/config/backups")
    backup_dir = Path(logged_in.ctx.config["data_dir"]) / "config-backups"
    moving = next(b["name"] for b in backups if "empty" in (backup_dir / b["name"]).read_text())
    admin = await _key(logged_in, "admin")
    before = logged_in.ctx.config_path.read_text()
    status, data = await _as_key(logged_in, admin, "POST", f"/api/config/backups/{moving}/restore")
    assert status == 403 and data["error"]["code"] == "login_required"
    assert logged_in.ctx.config_path.read_text() == before


# ---- scopes -----------------------------------------------------------------------------------------------

SCOPE_CASES = [
    # (method, path, lowest scope that may)
    ("GET", "/api/queue/status", "read"),
    ("GET", "/api/anime", "read"),
    ("POST", "/api/queue/start", "control"),
    ("POST", "/api/anime/rescan", "control"),
    ("GET", "/api/config", "admin"),
    ("GET", "/api/config/backups", "admin"),
]
ORDER = ["feed", "read", "control", "admin"]


@pytest.mark.parametrize("scope", ORDER)
async def test_api_key_scopes(logged_in: Api, scope: str) -> None:
    headers = await _key(logged_in, scope)
    for method, path, lowest in SCOPE_CASES:
        status, data = await _as_key(logged_in, headers, method, path)
        if ORDER.index(scope) >= ORDER.index(lowest):
            assert status in (200, 202), (scope, method, path, data)
        else:
            assert status == 403, (scope, method, path, data)
            assert data["error"]["code"] == "insufficient_scope"
            assert lowest in data["error"]["message"]
    # the WebSocket is reading: a feed key may not listen
    ws_status = (await logged_in.client.get("/ws/connect", headers=headers)).status
    assert (ws_status == 403) == (scope == "feed")


async def test_an_unknown_scope_is_refused(logged_in: Api) -> None:
    status, data = await logged_in.call("POST", "/api/auth/api-keys", json={"name": "x", "scope": "root"})
    assert status == 400 and data["error"]["details"]["errors"][0]["path"] == "scope"
    status, listed = await logged_in.call("GET", "/api/auth/api-keys")
    assert listed == []


async def test_a_key_stored_without_scope_acts_as_control(logged_in: Api) -> None:
    """Keys created before scopes existed (kind "api_key" in the store) are migrated to `control`."""
    auth = logged_in.ctx.auth
    key = "awd_" + "legacy-key-0123456789-abcdefghijklmnopqrstu"

    def insert() -> None:
        logged_in.ctx.store.e.UserSession(jti=auth._api_key_jti(key), kind="api_key", client="old script")

    logged_in.ctx.store.run_sync(insert)
    headers = {"X-Api-Key": key}
    assert (await _as_key(logged_in, headers, "POST", "/api/queue/start"))[0] == 200
    status, data = await _as_key(logged_in, headers, "GET", "/api/config")
    assert status == 403 and data["error"]["code"] == "insufficient_scope"
    _, listed = await logged_in.call("GET", "/api/auth/api-keys")
    assert [(k["name"], k["scope"]) for k in listed] == [("old script", "control")]


async def test_a_feed_key_reads_the_calendar_feed(logged_in: Api) -> None:
    from aniworldd.services.calendar_service import CalendarService

    logged_in.ctx.extras["calendar"] = CalendarService(logged_in.ctx.store)
    headers = await _key(logged_in, "feed")
    resp = await logged_in.client.get(f"/feed/calendar.ics?token={headers['X-Api-Key']}")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/calendar")


# ---- setup over existing state ----------------------------------------------------------------------------


def _break_auth_file(data_dir: Path, how: str) -> None:
    path = data_dir / "auth.json"
    if how == "corrupt":
        path.write_text('{"password_hash": "$2b$12$trunc')
    elif how == "not a mapping":
        path.write_text("[1, 2, 3]")
    elif how == "unreadable":  # root reads any mode, so make it something that cannot be read as a file
        path.unlink()
        path.mkdir()
    elif how == "missing":
        path.unlink()


async def _restarted(api: Api, aiohttp_client) -> Api:
    ctx = api.ctx
    ctx.auth = AuthService.from_config(ctx.store, ctx.config, bcrypt_rounds=4)
    return Api(await aiohttp_client(create_app(ctx)), ctx)


@pytest.mark.parametrize("how", ["corrupt", "not a mapping", "unreadable", "missing"])
async def test_setup_is_refused_when_auth_json_is_lost_but_state_remains(
    logged_in: Api, aiohttp_client, how: str
) -> None:
    data_dir = Path(logged_in.ctx.config["data_dir"])
    _break_auth_file(data_dir, how)
    api = await _restarted(logged_in, aiohttp_client)
    status, data = await api.call("POST", "/api/auth/setup", json={"password": "attacker password"})
    assert status == 409, data
    assert data["error"]["code"] == "recovery_required"
    assert "aniworldd set-password" in data["error"]["message"]
    status, data = await api.call("POST", "/api/auth/login", json={"password": "attacker password"})
    assert status == 409 and "aniworldd set-password" in data["error"]["message"]
    _, data = await api.call("GET", "/api/auth/status")
    assert data["configured"] is False and data["setup_allowed"] is False
    if how != "unreadable":
        assert how == "missing" or (data_dir / "auth.json").exists()


async def test_setup_is_refused_when_only_the_database_knows_a_password_was_set(
    logged_in: Api, aiohttp_client
) -> None:
    """auth.json and jwt.secret gone (restored from an old backup, cleaned by hand): the sessions and API
    keys in the database still show that this house has an owner."""
    data_dir = Path(logged_in.ctx.config["data_dir"])
    (data_dir / "auth.json").unlink()
    (data_dir / "jwt.secret").unlink()
    api = await _restarted(logged_in, aiohttp_client)
    status, data = await api.call("POST", "/api/auth/setup", json={"password": "attacker password"})
    assert status == 409 and data["error"]["code"] == "recovery_required"


async def test_a_fresh_install_still_sets_up_over_http(api: Api) -> None:
    _, data = await api.call("GET", "/api/auth/status")
    assert data["configured"] is False and data["setup_allowed"] is True
    assert not (Path(api.ctx.config["data_dir"]) / "jwt.secret").exists()  # made with the first token
    status, _ = await api.call("POST", "/api/auth/setup", json={"password": PASSWORD})
    assert status == 201


async def test_set_password_recovers_and_old_tokens_stay_dead(
    logged_in: Api, aiohttp_client, monkeypatch
) -> None:
    """Recovery after a lost auth.json must not bring tokens issued under the lost password back to life
    (a restarted version counter would make them match again)."""
    old_token = logged_in.token
    data_dir = Path(logged_in.ctx.config["data_dir"])
    (data_dir / "auth.json").unlink()
    monkeypatch.setattr("sys.stdin", io.StringIO("the recovered password\n"))
    assert cli_main(["set-password", "--config", str(logged_in.ctx.config_path), "--stdin"]) == 0
    api = await _restarted(logged_in, aiohttp_client)
    api.token = old_token
    status, data = await api.call("GET", "/api/queue/status")
    assert status == 401 and data["error"]["code"] == "token_revoked"
    api.token = None
    await api.setup_and_login("the recovered password")
    status, _ = await api.call("GET", "/api/queue/status")
    assert status == 200
