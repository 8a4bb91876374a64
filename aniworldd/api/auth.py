"""/api/auth: master password setup, login (JWT), logout, status and API keys."""

from __future__ import annotations

import json

import voluptuous as vol
from aiohttp import web

from aniworldd.api.common import IDENTITY, body, client_address, json_response, params, service
from aniworldd.api.ws import HUB
from aniworldd.services.auth_service import DEFAULT_SCOPE, SCOPES

#: `scope` of a new key. Checked here on the raw body as well, so it holds whatever the route table's
#: body schema lets through.
SCOPE = vol.Schema(
    {
        vol.Optional("scope", default=DEFAULT_SCOPE): vol.In(
            SCOPES, msg=f"expected one of {', '.join(SCOPES)}"
        )
    },
    extra=vol.REMOVE_EXTRA,
)


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
    return json_response(await auth.describe(request.get(IDENTITY)))


async def setup(request: web.Request) -> web.Response:
    auth = service(request, "auth")
    token = await auth.setup(body(request)["password"], client_address(request))
    return json_response(token, status=201)


async def list_api_keys(request: web.Request) -> web.Response:
    return json_response(await service(request, "auth").list_api_keys())


async def _scope(request: web.Request) -> str:
    sent = body(request) or {}
    if "scope" not in sent:
        try:
            raw = json.loads(await request.read())  # read() is cached: the wrapper parsed it already
        except (ValueError, RecursionError):
            raw = {}
        sent = raw if isinstance(raw, dict) else {}
    return SCOPE({"scope": sent["scope"]} if "scope" in sent else {})["scope"]


async def create_api_key(request: web.Request) -> web.Response:
    scope = await _scope(request)
    created = await service(request, "auth").create_api_key(body(request)["name"], scope)
    return json_response(created, status=201)


async def revoke_api_key(request: web.Request) -> web.Response:
    auth = service(request, "auth")
    key_id = params(request)["key_id"]
    jti = await auth.revoke_api_key(key_id)
    hub = request.app.get(HUB)
    if hub is not None:
        await hub.disconnect_session(jti)
    return json_response({"status": "success", "message": f"API key {key_id} revoked"})
