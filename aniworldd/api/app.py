"""Builds the aiohttp application from an AppContext and the route table.

Each entry of schemas.ROUTES is registered through one wrapper that checks the component is running (503),
validates path parameters, query and JSON body with the entry's voluptuous schemas (400 with every problem),
and only then calls the handler; the same entries generate /api/openapi.json.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Awaitable, Callable

import voluptuous as vol
from aiohttp import web

from aniworldd.api import library_extras, notifications, posters, static, system
from aniworldd.api.cache import CACHE, ResponseCache
from aniworldd.api.common import BODY, CTX, IDENTITY, PARAMS, QUERY, error_response
from aniworldd.api.context import AppContext
from aniworldd.api.middlewares import (
    auth_middleware,
    cors_middleware,
    error_middleware,
    security_headers,
    size_limit_middleware,
    validation_error,
)
from aniworldd.api.openapi import DOCS_HTML_KEY, OPENAPI_KEY, build_openapi, render_docs
from aniworldd.api.schemas import ROUTES, Route
from aniworldd.api.ws import HUB, Hub
from aniworldd.services.auth_service import LOGIN, Forbidden
from aniworldd.services.errors import Unavailable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = ["CTX", "create_app"]


def _resolve(route: Route) -> Handler:
    if callable(route.handler):
        return route.handler
    module_name, _, func = route.handler.rpartition(".")
    module = importlib.import_module(f"aniworldd.api.{module_name}")
    return getattr(module, func)


async def _read_json(request: web.Request, required: bool) -> tuple[object, web.Response | None]:
    raw = await request.read()  # raises 413 past client_max_size
    if not raw.strip():
        if required:
            return None, error_response(400, "validation_error", "a JSON request body is required")
        return {}, None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, error_response(400, "invalid_json", f"request body is not valid JSON: {exc}")
    except RecursionError:  # `[[[[...` 50,000 deep: the C parser gives up; that is the client's fault
        data = None
    if data is None and raw.strip() != b"null" or _depth_over(data, JSON_MAX_DEPTH):
        message = f"request body is nested too deeply (limit {JSON_MAX_DEPTH} levels)"
        return None, error_response(400, "invalid_json", message)
    return data, None


#: No API document nests deeper than a handful of levels; deeper input would only reach recursive code
#: (validation, YAML dumping of a config) and fail there.
JSON_MAX_DEPTH = 32


def _depth_over(data: object, limit: int) -> bool:
    """Whether a parsed JSON value nests deeper than `limit` (iterative: deep input cannot recurse)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


def _wrap(route: Route, fn: Handler) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if route.login_only:
            identity = request.get(IDENTITY)
            if identity is None or identity.kind != LOGIN:
                raise Forbidden(
                    "this needs a login token (Authorization: Bearer), not an API key", code="login_required"
                )
        if route.needs and not any(
            getattr(request.app[CTX], n, None) is not None for n in route.needs.split("|")
        ):
            component = route.needs.split("|")[0]
            raise Unavailable(f"the {component} component is not available", {"component": component})
        if route.params:
            values = {}
            for name, check in route.params.items():
                try:
                    values[name] = check(request.match_info[name])
                except vol.Invalid as exc:
                    return validation_error(vol.Invalid(exc.msg, path=[name]), "path")
            request[PARAMS] = values
        if route.query is not None:
            try:
                request[QUERY] = route.query(dict(request.query))
            except vol.Invalid as exc:
                return validation_error(exc, "query")
        if route.body is not None:
            data, problem = await _read_json(request, route.body_required)
            if problem is not None:
                return problem
            try:
                request[BODY] = route.body(data)
            except vol.Invalid as exc:
                return validation_error(exc)
        return await fn(request)

    handler.__name__ = route.name.replace(".", "_")
    return handler


#: Route modules beside the seed's table: a `ROUTES` list in the table format (registered through the same
#: wrapper, so auth, validation and OpenAPI cover them) and an `add_routes(app)` hook for what is not JSON
#: API (/metrics, the calendar feed).
EXTRA_ROUTE_MODULES = (system, library_extras, notifications, posters)


def _extra_routes(app: web.Application) -> list[Route]:
    routes: list[Route] = []
    for module in EXTRA_ROUTE_MODULES:
        routes += list(getattr(module, "ROUTES", []))
        add_routes = getattr(module, "add_routes", None)
        if callable(add_routes):
            add_routes(app)
    return routes


def create_app(ctx: AppContext) -> web.Application:
    server = ctx.config["server"]
    max_body = server["max_body_bytes"]
    app = web.Application(client_max_size=max_body)
    app[CTX] = ctx
    app[CACHE] = ResponseCache(ctx.bus)
    hub = Hub(ctx.bus)
    app[HUB] = hub

    routes = list(ROUTES) + _extra_routes(app)
    public = {r.path for r in routes if not r.auth} | {r.path + "/" for r in routes if not r.auth}
    if server.get("cors_origins"):
        app.middlewares.append(cors_middleware(list(server["cors_origins"])))
    app.middlewares.extend([error_middleware, size_limit_middleware(max_body), auth_middleware(public)])

    async def start_hub(_app: web.Application) -> None:
        await hub.start()

    async def stop_hub(_app: web.Application) -> None:
        await hub.close()

    app.on_startup.append(start_hub)
    app.on_shutdown.append(stop_hub)
    app.on_response_prepare.append(security_headers)

    for route in routes:
        handler = _wrap(route, _resolve(route))
        app.router.add_route(route.method, route.path, handler, name=route.name.replace(".", "_"))
        if not route.path.endswith("/"):
            # Seed clients call collection roots with a trailing slash (/api/anime/); both spellings work.
            app.router.add_route(route.method, route.path + "/", handler)
    spec = build_openapi(routes)
    app[OPENAPI_KEY] = spec
    app[DOCS_HTML_KEY] = render_docs(spec)
    static.add_routes(app)  # the bundled UI: / and /static/
    return app
