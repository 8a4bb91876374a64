"""Helpers every handler module shares: the context key, JSON encoding and the one error shape."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from aniworldd.api.context import AppContext
from aniworldd.core import forwarded
from aniworldd.events import to_json
from aniworldd.services.errors import Unavailable

CTX = web.AppKey("ctx", AppContext)

#: request keys filled by app.py's route wrapper and the auth middleware
IDENTITY = web.RequestKey("identity", object)  # services.auth_service.Identity or None
BODY = web.RequestKey("body", object)
QUERY = web.RequestKey("query", dict)
PARAMS = web.RequestKey("params", dict)


def dumps(data: Any) -> str:
    """JSON with datetimes as ISO-8601 UTC (`...Z`); naive datetimes from the DB are UTC."""
    return to_json(data)


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=dumps(data).encode("utf-8"), status=status, content_type="application/json", headers=headers
    )


def error_response(
    status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None
) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return json_response(body, status, headers)


def ctx_of(request: web.Request) -> AppContext:
    return request.app[CTX]


def service(request: web.Request, name: str) -> Any:
    """The named service from the context, or 503 when that component is not running."""
    svc = getattr(request.app[CTX], name, None)
    if svc is None:
        raise Unavailable(f"the {name} component is not available", {"component": name})
    return svc


def body(request: web.Request) -> Any:
    return request.get(BODY)


def query(request: web.Request) -> dict:
    return request.get(QUERY) or {}


def params(request: web.Request) -> dict:
    return request.get(PARAMS) or {}


def client_address(request: web.Request) -> str:
    """The client's address: the peer, or behind a trusted proxy the address it forwarded for."""
    trusted = tuple(request.app[CTX].config["server"].get("trusted_proxies") or ())
    return forwarded.client_address(
        request.remote, request.headers.get("X-Forwarded-For"), _networks(trusted)
    )


@functools.lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> list[forwarded.Network]:
    return forwarded.parse_networks(values)
