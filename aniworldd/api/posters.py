"""Poster thumbnails for the library grid: GET /api/anime/{key}/poster and GET /api/library/poster-token.

An `<img>` cannot send `Authorization: Bearer`, and the login JWT must not go into URLs (it would end up in
access logs, the browser history and the HTTP cache for its whole life). So the poster route accepts, besides
the usual Bearer token or X-Api-Key (scripts), a *poster token* in `?t=`:

- issued by GET /api/library/poster-token to anyone logged in (or an API key with scope `read`);
- it opens nothing but poster images: it is an HMAC over its expiry and the password version, with a key
  derived from the JWT signing secret (so it survives restarts) and never accepted anywhere else;
- its expiry is the end of the next 6-hour window (6 to 12 hours from issue), so every token issued in a
  window is the same string: image URLs stay stable and the browser's HTTP cache keeps working across page
  loads; a password change (`aniworldd set-password`) invalidates it at once, a logout does not (it expires
  within 12 hours, and it can only show posters).

The route is therefore registered as not auth-protected by the middleware (`auth=False`) and checks the
credentials itself, before it looks at the key (401 first: no probing which keys exist).
Answers: the JPEG thumbnail (PosterService), the placeholder SVG (web/poster-placeholder.svg) when the series
has no usable poster, 404 JSON for an unknown key; ETag + `Cache-Control: private, max-age=3600`, 304 on a
matching If-None-Match.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import voluptuous as vol
from aiohttp import web

from aniworldd.api.common import IDENTITY, ctx_of, json_response, params
from aniworldd.api.schemas import Key, Route
from aniworldd.events import iso_timestamp
from aniworldd.services.auth_service import API_KEY, Forbidden, Unauthorized, load_secret, scope_allows
from aniworldd.services.errors import Unavailable
from aniworldd.services.poster_service import PosterService, Thumbnail

#: Poster tokens expire at the end of the next window of this many seconds (6 to 12 hours from issue).
TOKEN_WINDOW = 6 * 3600
#: How long the browser may use a poster without asking again (then If-None-Match -> 304).
POSTER_CACHE = "private, max-age=3600"
PLACEHOLDER_FILE = Path(__file__).resolve().parent.parent / "web" / "poster-placeholder.svg"
_TOKEN_LABEL = b"aniworldd poster token v1"


class PosterTokens:
    """Issues and checks poster tokens (see the module docstring)."""

    def __init__(self, data_dir: str | Path, auth: Any) -> None:
        self.data_dir = Path(data_dir)
        self.auth = auth
        self._key: bytes | None = None

    async def _signing_key(self) -> bytes:
        if self._key is None:
            secret = await asyncio.to_thread(load_secret, self.data_dir)
            # No JWT secret yet (nobody ever logged in): a per-process key; its tokens die with the process.
            base = secret if secret is not None else secrets.token_bytes(32)
            self._key = hmac.new(base, _TOKEN_LABEL, hashlib.sha256).digest()
        return self._key

    def _sign(self, key: bytes, expires: int) -> str:
        message = f"{expires}.{self.auth.password_version}".encode()
        digest = hmac.new(key, message, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode("ascii")

    async def issue(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        expires = (int(now) // TOKEN_WINDOW + 2) * TOKEN_WINDOW
        token = f"{expires}.{self._sign(await self._signing_key(), expires)}"
        moment = datetime.fromtimestamp(expires, UTC)
        return {"token": token, "expires_at": iso_timestamp(moment), "expires_in": int(expires - now)}

    async def verify(self, token: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        expires_text, _, signature = token.partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12 or not signature:
            return False
        expires = int(expires_text)
        if not now < expires <= now + 2 * TOKEN_WINDOW + 60:
            return False
        expected = self._sign(await self._signing_key(), expires)
        return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


def tokens_of(request: web.Request) -> PosterTokens:
    """The PosterTokens the daemon wired next to its AuthService (503 without auth, like every protected
    route)."""
    ctx = ctx_of(request)
    tokens = ctx.extras.get("poster_tokens")
    if ctx.auth is None or tokens is None:
        raise Unavailable("authentication is not available", {"component": "auth"})
    return tokens


def posters_of(request: web.Request) -> PosterService:
    """The daemon's PosterService."""
    svc = ctx_of(request).extras.get("posters")
    if svc is None:
        raise Unavailable("poster thumbnails are not available", {"component": "posters"})
    return svc


@functools.cache
def placeholder() -> Thumbnail:
    """The placeholder SVG, read once (a file of the package: it does not change while the daemon runs)."""
    data = PLACEHOLDER_FILE.read_bytes()
    etag = f'"placeholder-{hashlib.sha256(data).hexdigest()[:16]}"'
    return Thumbnail(data, etag, "image/svg+xml")


async def _authorize(request: web.Request) -> None:
    """A Bearer token / API key (checked by the middleware) or a valid poster token in `?t=`."""
    tokens = tokens_of(request)  # 503 without auth, like every protected route
    identity = request.get(IDENTITY)
    if identity is not None:
        if identity.kind == API_KEY and not scope_allows(identity.scope, "read"):
            raise Forbidden(
                f"this API key has scope {identity.scope!r}; posters need 'read'",
                {"scope": identity.scope, "needed": "read"},
                code="insufficient_scope",
            )
        return
    token = request.query.get("t")
    if token and await tokens.verify(token):
        return
    raise Unauthorized(
        "authentication required: a poster token (?t=, from GET /api/library/poster-token), "
        "Authorization: Bearer <token> or X-Api-Key",
        code="invalid_token" if token else "unauthorized",
    )


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in candidates or etag in candidates


async def poster(request: web.Request) -> web.StreamResponse:
    await _authorize(request)
    thumb = await posters_of(request).thumbnail(params(request)["key"])
    kind = "thumbnail"
    if thumb is None:
        thumb, kind = placeholder(), "placeholder"
    headers = {"ETag": thumb.etag, "Cache-Control": POSTER_CACHE, "X-Poster": kind}
    if _etag_matches(request.headers.get("If-None-Match", ""), thumb.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=thumb.data, content_type=thumb.content_type, headers=headers)


async def poster_token(request: web.Request) -> web.Response:
    return json_response(await tokens_of(request).issue())


TOKEN_SCHEMA = {
    "type": "object",
    "properties": {
        "token": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time"},
        "expires_in": {"type": "integer"},
    },
    "required": ["token", "expires_at", "expires_in"],
}
POSTER_QUERY = vol.Schema(
    {
        vol.Optional("t", description="a poster token from GET /api/library/poster-token"): vol.All(
            str, vol.Length(max=200)
        )
    },
    extra=vol.REMOVE_EXTRA,
)

ROUTES: list[Route] = [
    Route(
        "GET",
        "/api/anime/{key}/poster",
        poster,
        "The series' poster as a small JPEG thumbnail (an SVG placeholder when it has none)",
        "anime",
        auth=False,  # checked by the handler: Bearer, X-Api-Key (scope read) or a poster token in ?t=
        params={"key": Key},
        query=POSTER_QUERY,
        description=(
            "Needs a credential like every API route: Authorization: Bearer, X-Api-Key (scope read), or, "
            "for <img> tags, a poster token in ?t= (GET /api/library/poster-token). The thumbnail is made "
            "once from the series folder's poster.jpg and cached; ETag and If-None-Match are supported."
        ),
        responses={
            200: ("image/jpeg thumbnail, or image/svg+xml placeholder (header X-Poster says which)", None),
            304: ("not modified (If-None-Match)", None),
            401: ("no valid credential", None),
            403: ("an API key without scope read", None),
            404: ("unknown series", None),
            503: ("authentication is not available", None),
        },
    ),
    Route(
        "GET",
        "/api/library/poster-token",
        poster_token,
        "A short-lived token for poster image URLs (?t=), which only opens GET /api/anime/{key}/poster",
        "anime",
        responses={200: ("the token and when it expires (6 to 12 hours)", TOKEN_SCHEMA)},
    ),
]
