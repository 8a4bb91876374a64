"""Issue 16 item 8: a WebSocket does not outlive the credential it was opened with.

The attack: after `aniworldd set-password` (the owner locking out a stolen token) REST refused the old
token, but a WebSocket opened with it stayed open for the token's 24 hours and kept streaming. Real aiohttp
WebSocket clients against the app over TCP; the password is changed the way an owner does it, by the CLI in
another "process" (it only writes auth.json), so nothing tells the daemon but the file.
"""

from __future__ import annotations

import asyncio
import io

import aiohttp

from aniworldd.api.ws import CLOSE_REVOKED
from aniworldd.cli import main as cli_main
from tests.api.conftest import Api

#: Generous bound for a loaded CI machine; the daemon checks twice a second.
WAIT = 5.0


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The next non-text message (the close), skipping the events sent before it."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return msg


async def _open(api: Api, **kwargs) -> aiohttp.ClientWebSocketResponse:
    ws = await api.client.ws_connect("/ws/connect", **kwargs)
    await ws.send_json({"action": "join", "room": "downloads"})
    return ws


async def _still_open(ws: aiohttp.ClientWebSocketResponse) -> bool:
    await ws.send_json({"action": "ping"})
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return False
        if msg.json()["type"] == "pong":
            return True


def test_the_close_code_says_unauthorized() -> None:
    assert CLOSE_REVOKED == 4401  # 4000 + HTTP 401: the client should log in again, not just reconnect


async def test_a_password_change_closes_the_sockets_of_old_tokens(logged_in: Api, monkeypatch) -> None:
    _, key = await logged_in.call("POST", "/api/auth/api-keys", json={"name": "ha", "scope": "read"})
    old = await _open(logged_in, params={"token": logged_in.token})
    by_key = await _open(logged_in, headers={"X-Api-Key": key["key"]})
    assert await _still_open(old)

    monkeypatch.setattr("sys.stdin", io.StringIO("a brand new password\n"))
    assert cli_main(["set-password", "--config", str(logged_in.ctx.config_path), "--stdin"]) == 0

    msg = await _closed(old)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_REVOKED
    # REST agrees, and a new socket with the old token is refused at the door
    status, _ = await logged_in.call("GET", "/api/queue/status")
    assert status == 401
    resp = await logged_in.client.get("/ws/connect", params={"token": logged_in.token})
    assert resp.status == 401
    # API keys are not tied to the password (documented): that socket stays
    assert await _still_open(by_key)
    await by_key.close()


async def test_logout_closes_only_that_sessions_sockets(logged_in: Api) -> None:
    first = logged_in.token
    second = await logged_in.setup_and_login()
    ws_first = await _open(logged_in, params={"token": first})
    ws_second = await _open(logged_in, params={"token": second})
    logged_in.token = first
    status, _ = await logged_in.call("POST", "/api/auth/logout")
    assert status == 200
    msg = await _closed(ws_first)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_REVOKED
    assert await _still_open(ws_second)
    await ws_second.close()


async def test_a_revoked_api_key_closes_its_sockets(logged_in: Api) -> None:
    _, key = await logged_in.call("POST", "/api/auth/api-keys", json={"name": "ha", "scope": "read"})
    ws = await _open(logged_in, headers={"X-Api-Key": key["key"]})
    status, _ = await logged_in.call("DELETE", f"/api/auth/api-keys/{key['id']}")
    assert status == 200
    msg = await _closed(ws)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_REVOKED


async def test_a_session_revoked_behind_the_api_closes_its_socket(logged_in: Api) -> None:
    """Revocation that does not pass the logout route (another code path, a restart's cache) still reaches
    open sockets: the daemon re-checks every socket's credential, not only the ones it was told about."""
    ws = await _open(logged_in, params={"token": logged_in.token})
    identity = await logged_in.ctx.auth.verify_token(logged_in.token)
    assert await logged_in.ctx.auth._revoke(identity.jti)
    msg = await _closed(ws)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_REVOKED
