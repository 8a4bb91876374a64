"""Cross-cutting HTTP behaviour: one JSON error shape, authentication, security headers, size limit, CORS.

Every failure, also the router's own 404/405 and aiohttp's 413, leaves as `{"error": {"code", "message",
"details"}}`; an unexpected exception is logged with its traceback and answered 500 without it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

import voluptuous as vol
from aiohttp import web

from aniworldd.api.common import CTX, IDENTITY, error_response
from aniworldd.config import ConfigError
from aniworldd.providers.base import ProviderError
from aniworldd.services.auth_service import Forbidden, Unauthorized
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


def auth_middleware(public_paths: set[str]) -> Callable:
    """Every /api and /ws path needs a valid, unrevoked token or API key unless it is public.

    A guard on path prefixes rather than per route, so routes added later (system, metrics helpers) are
    protected without having to remember it.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        protected = (path.startswith("/api/") or path == "/api" or path.startswith("/ws/")) and (
            path not in public_paths
        )
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
        if request[IDENTITY] is None:
            raise Unauthorized(
                "authentication required: send Authorization: Bearer <token> or X-Api-Key",
                code="unauthorized",
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
