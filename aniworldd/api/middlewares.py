"""Cross-cutting HTTP behaviour: one JSON error shape, authentication, security headers, size limit, CORS.

CSRF: the API authenticates with headers a foreign page cannot set, but setup and login take no credential,
so they (and every other JSON route, as a second line) refuse what a hostile web page can send without a
CORS preflight: a body that is not `application/json` (415) and a request from another origin (403,
checked on Origin, and on Sec-Fetch-Site when a browser sends no Origin). The own origin is the Host the
browser addressed (reverse proxies pass it on), `server.public_url` or one of `server.cors_origins`.

Every failure, also the router's own 404/405 and aiohttp's 413, leaves as `{"error": {"code", "message",
"details"}}`; an unexpected exception is logged with its traceback and answered 500 without it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import voluptuous as vol
from aiohttp import web

from aniworldd.api.common import CTX, IDENTITY, error_response
from aniworldd.config import ConfigError
from aniworldd.providers.base import ProviderError
from aniworldd.services.auth_service import API_KEY, Forbidden, Unauthorized, scope_allows
from aniworldd.services.errors import ServiceError, Unavailable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "rate_limited",
}

#: Self only: the UI is bundled (no CDN) and the docs page is rendered on the server without scripts.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def _validation_details(exc: vol.Invalid) -> dict:
    errors = exc.errors if isinstance(exc, vol.MultipleInvalid) else [exc]
    items = []
    for err in errors:
        path = ""
        for part in err.path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        items.append({"path": path, "message": err.msg})
    return {"errors": items}


def validation_error(exc: vol.Invalid, where: str = "body") -> web.Response:
    details = _validation_details(exc)
    first = details["errors"][0]
    message = f"{first['path']}: {first['message']}" if first["path"] else first["message"]
    return error_response(400, "validation_error", f"invalid request {where}: {message}", details)


def config_error(exc: ConfigError) -> web.Response:
    errors = [{"path": i.path, "line": i.line, "message": i.message} for i in exc.issues]
    first = exc.issues[0] if exc.issues else None
    message = f"invalid config: {first.path or '(document)'}: {first.message}" if first else "invalid config"
    return error_response(422, "invalid_config", message, {"errors": errors})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {
            name: exc.headers[name]
            for name in ("Allow", "Retry-After", "WWW-Authenticate")
            if name in exc.headers
        }
        message = exc.reason
        if exc.status == 413:
            max_size = request.app[CTX].config["server"]["max_body_bytes"]
            message = f"request body too large (limit {max_size} bytes)"
        elif exc.status == 405:
            message = f"method {request.method} not allowed for {request.path}"
        elif exc.status == 404:
            message = f"no route for {request.path}"
        elif exc.text and not exc.text.startswith(f"{exc.status}:"):
            message = exc.text
        return error_response(
            exc.status, HTTP_CODES.get(exc.status, f"http_{exc.status}"), message, headers=headers
        )
    except ServiceError as exc:
        headers = {}
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="aniworldd"'
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)
    except ProviderError as exc:
        return error_response(exc.status, exc.kind, str(exc) or exc.kind, {"provider": True})
    except ConfigError as exc:
        return config_error(exc)
    except vol.Invalid as exc:
        return validation_error(exc)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        incident = secrets.token_hex(4)
        log.exception("unexpected error on %s %s (incident %s)", request.method, request.path, incident)
        return error_response(
            500, "internal_error", "internal server error; see the daemon log", {"incident": incident}
        )


def size_limit_middleware(max_bytes: int) -> Callable:
    """Refuse a declared oversized body before reading it (aiohttp still enforces the limit while reading)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > max_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=length)
        return await handler(request)

    return middleware


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class CrossOrigin(ServiceError):
    status = 403
    code = "cross_origin"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _origin(value: str) -> str | None:
    """`scheme://host[:port]` lowercased, default port dropped; None for anything else ("null", junk)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS[parts.scheme]:
        host += f":{port}"
    return f"{parts.scheme}://{host}"


def _host_of(origin: str) -> str:
    return origin.partition("://")[2]


def _strip_default_port(host: str) -> str:
    for port in (":80", ":443"):
        if host.endswith(port):
            return host[: -len(port)]
    return host


def _allowed_origin(request: web.Request, origin: str) -> bool:
    server = request.app[CTX].config["server"]
    cors = server.get("cors_origins") or []
    if "*" in cors:
        return True
    seen = _origin(origin)
    if seen is None:
        return False
    own = _strip_default_port((request.headers.get("Host") or "").strip().lower())
    if own and _host_of(seen) == own:
        return True
    listed = [server.get("public_url") or "", *cors]
    return any(_origin(other) == seen for other in listed if other)


def check_same_origin(request: web.Request) -> None:
    """403 for a browser request made by another site's page (see the module docstring)."""
    if request.method == "OPTIONS":  # preflights: the CORS middleware answers those
        return
    origin = request.headers.get("Origin")
    if origin is not None:
        if not _allowed_origin(request, origin):
            raise CrossOrigin(
                f"cross-origin request from {origin[:200]} refused: not this server's own origin, "
                "server.public_url or server.cors_origins",
                {"origin": origin[:200]},
            )
    elif request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise CrossOrigin("cross-site request refused (Sec-Fetch-Site: cross-site without an Origin)")


def check_json_body(request: web.Request) -> None:
    """415 for a body that is not JSON: no route takes anything else, and forms are what CSRF sends."""
    if request.method not in BODY_METHODS or not request.body_exists:
        return
    ctype = request.content_type.lower()
    if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
        raise UnsupportedMediaType(
            f"request body must be Content-Type: application/json, not {ctype}", {"content_type": ctype}
        )


def required_scope(method: str, path: str) -> str:
    """The API key scope a route needs: config is `admin`, reading `read`, everything else `control`.

    `feed` opens nothing under /api or /ws (only the calendar feed). Login-only routes (API key management)
    and settings that move the house (api/config.py) refuse API keys whatever their scope.
    """
    if path == "/api/config" or path.startswith("/api/config/"):
        return "admin"
    if method in ("GET", "HEAD") and not path.startswith("/api/system/doctor"):
        return "read"
    return "control"


def auth_middleware(public_paths: set[str]) -> Callable:
    """Every /api and /ws path needs a valid, unrevoked token or API key unless it is public.

    A guard on path prefixes rather than per route, so routes added later (system, metrics helpers) are
    protected without having to remember it. The CSRF checks run first, for public routes too (setup).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        api = path.startswith("/api/") or path == "/api" or path.startswith("/ws/")
        if api:
            check_same_origin(request)
            check_json_body(request)
        # Public: the exact path, or the route template of a parameterised public route (posters).
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else path
        protected = api and path not in public_paths and template not in public_paths
        ctx = request.app[CTX]
        auth = ctx.auth
        if auth is not None:
            request[IDENTITY] = None
            token = _bearer(request)
            api_key = request.headers.get("X-Api-Key")
            if token is None and path.startswith("/ws/"):
                token = request.query.get("token") or None
            try:
                if token is not None:
                    request[IDENTITY] = await auth.verify_token(token)
                elif api_key:
                    request[IDENTITY] = await auth.verify_api_key(api_key)
            except (Unauthorized, Forbidden):
                if protected:
                    raise
        if not protected:
            return await handler(request)
        if auth is None:
            raise Unavailable("authentication is not available", {"component": "auth"})
        identity = request[IDENTITY]
        if identity is None:
            raise Unauthorized(
                "authentication required: send Authorization: Bearer <token> or X-Api-Key",
                code="unauthorized",
            )
        if identity.kind == API_KEY and not path.startswith("/api/auth/"):  # those refuse keys themselves
            needed = required_scope(request.method, path.rstrip("/") or path)
            if not scope_allows(identity.scope, needed):
                raise Forbidden(
                    f"this API key has scope {identity.scope!r}; {request.method} {path} needs {needed!r}",
                    {"scope": identity.scope, "needed": needed},
                    code="insufficient_scope",
                )
        return await handler(request)

    return middleware


def cors_middleware(origins: list[str]) -> Callable:
    """Only when server.cors_origins lists origins ("*" for any); otherwise no CORS headers at all."""
    allow_any = "*" in origins
    allowed = set(origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        ok = origin is not None and (allow_any or origin in allowed)
        if ok and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Api-Key"
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if ok:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    return middleware


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, including errors, static files and the WebSocket upgrade."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/") or request.path.startswith("/ws/"):
        response.headers.setdefault("Cache-Control", "no-store")
