"""Issue 16 item 2: a web page on the LAN cannot claim a fresh install (or change anything) by CSRF.

The attack: a hostile page POSTs `{"password": ...}` to /api/auth/setup as `text/plain` (a "simple" request
a browser sends cross-site without a preflight); the daemon parsed the body whatever its type and never
looked at Origin. JSON routes now take only `application/json` bodies (415) and a request whose Origin (or
Sec-Fetch-Site: cross-site) is not the daemon's own origin, `server.public_url` or `server.cors_origins`
is refused (403) before anything happens.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.api.conftest import PASSWORD, Api

BODY = '{"password": "attacker password"}'


def _own_origin(api: Api) -> str:
    return f"http://{api.client.host}:{api.client.port}"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
async def test_setup_with_a_non_json_body_is_415_and_changes_nothing(api: Api, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await api.client.post("/api/auth/setup", data=BODY.encode(), headers=headers)
    assert resp.status == 415
    assert (await resp.json())["error"]["code"] == "unsupported_media_type"
    assert not api.ctx.auth.is_configured()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://192.168.1.66:8080"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_setup_from_another_origin_is_403_and_changes_nothing(api: Api, headers: dict) -> None:
    resp = await api.client.post("/api/auth/setup", json={"password": PASSWORD}, headers=headers)
    assert resp.status == 403
    data = await resp.json()
    assert data["error"]["code"] == "cross_origin"
    assert not api.ctx.auth.is_configured()


async def test_the_own_origin_and_configured_origins_pass(api_factory) -> None:
    api = await api_factory(
        "server:\n  public_url: https://anime.example.lan\n  cors_origins: [http://dashboard.lan:3000]\n"
    )
    # what the bundled UI sends: its own origin, same-origin fetch metadata, a JSON body
    own = {"Origin": _own_origin(api), "Sec-Fetch-Site": "same-origin"}
    resp = await api.client.post("/api/auth/setup", json={"password": PASSWORD}, headers=own)
    assert resp.status == 201, await resp.text()
    for origin in ("https://anime.example.lan", "http://dashboard.lan:3000"):
        resp = await api.client.post(
            "/api/auth/login", json={"password": PASSWORD}, headers={"Origin": origin}
        )
        assert resp.status == 200, (origin, await resp.text())
    # a browser sends Origin on a same-origin POST: Host and Origin agree, also with an uppercase spelling
    resp = await api.client.post(
        "/api/auth/login", json={"password": PASSWORD}, headers={"Origin": _own_origin(api).upper()}
    )
    assert resp.status == 200


async def test_authenticated_routes_are_guarded_too(logged_in: Api) -> None:
    before = logged_in.ctx.config_path.read_text()
    resp = await logged_in.client.put(
        "/api/config", data=b"{}", headers={**logged_in.headers, "Content-Type": "text/plain"}
    )
    assert resp.status == 415
    resp = await logged_in.client.put(
        "/api/config", json={}, headers={**logged_in.headers, "Origin": "http://evil.example"}
    )
    assert resp.status == 403
    assert logged_in.ctx.config_path.read_text() == before
    # bodiless actions and JSON with a charset stay fine
    status, _ = await logged_in.call("POST", "/api/queue/start")
    assert status == 200
    resp = await logged_in.client.post(
        "/api/anime/search",
        data=b'{"query": "kaguya"}',
        headers={**logged_in.headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status == 200, await resp.text()


async def test_a_cross_site_websocket_is_refused(logged_in: Api) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await logged_in.client.ws_connect(
            "/ws/connect", params={"token": logged_in.token}, headers={"Origin": "http://evil.example"}
        )
    assert exc.value.status == 403
    ws = await logged_in.client.ws_connect(
        "/ws/connect", params={"token": logged_in.token}, headers={"Origin": _own_origin(logged_in)}
    )
    await ws.send_json({"action": "ping"})
    assert (await ws.receive_json(timeout=5))["type"] in ("pong", "queue_status")
    await ws.close()
