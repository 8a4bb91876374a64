"""/api/auth: master password setup, login (JWT), logout, status and API keys."""

from __future__ import annotations

from aiohttp import web

from aniworldd.api.common import IDENTITY, body, client_address, json_response, params, service
from aniworldd.api.ws import HUB


async def login(request: web.Request) -> web.Response:
    auth = service(request, "auth")
    token = await auth.login(body(request)["password"], client_address(request))
    return json_response(token)


async def logout(request: web.Request) -> web.Response:
    auth = service(request, "auth")
    identity = request[IDENTITY]
    await auth.logout(identity)
    hub = request.app.get(HUB)
    if hub is not None:
        await hub.disconnect_session(identity.jti)
    return json_response({"status": "success", "message": "logged out; the token is revoked"})


async def status(request: web.Request) -> web.Response:
    auth = service(request, "auth")
    return json_response(auth.status(request.get(IDENTITY)))


async def setup(request: web.Request) -> web.Response:
    auth = service(request, "auth")
    token = await auth.setup(body(request)["password"], client_address(request))
    return json_response(token, status=201)


async def list_api_keys(request: web.Request) -> web.Response:
    return json_response(await service(request, "auth").list_api_keys())


async def create_api_key(request: web.Request) -> web.Response:
    created = await service(request, "auth").create_api_key(body(request)["name"])
    return json_response(created, status=201)


async def revoke_api_key(request: web.Request) -> web.Response:
    auth = service(request, "auth")
    key_id = params(request)["key_id"]
    jti = await auth.revoke_api_key(key_id)
    hub = request.app.get(HUB)
    if hub is not None:
        await hub.disconnect_session(jti)
    return json_response({"status": "success", "message": f"API key {key_id} revoked"})
