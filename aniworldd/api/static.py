"""Serves the bundled web UI: `/` is the single-page app, `/static/...` its files (package dir aniworldd/web).

The UI must work on a NAS without internet, so Bootstrap and htmx are vendored under web/vendor/ in
versioned folders: those never change for a given path and are cached for a year ("immutable"). The app's
own files (index.html, CSS, theme.js and the ES modules under js/) change with every upgrade, so they are
always revalidated (ETag / Last-Modified -> 304).
aiohttp serves a pre-compressed `<file>.gz` next to a file to clients that accept gzip; the vendor files
ship one, which cuts the library page weight to a fraction; the app's own small files are compressed on the
fly.
No directory listing and no symlink following: a file that is not in the package cannot be reached.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aiohttp import web

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_PREFIX = "/static/"
VENDOR_PREFIX = "/static/vendor/"
VENDOR_CACHE = "public, max-age=31536000, immutable"
APP_CACHE = "no-cache"

_WEB_DIR_KEY = web.AppKey("static_ui_dir", Path)


#: Requests that may be answered 304/206/412: aiohttp would write a compressed (non-empty) body after a
#: 304 and compress ranges, so those are answered uncompressed (a 304 has no body to compress anyway).
_CONDITIONAL = ("If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "Range", "If-Range")


def _app_file(request: web.Request, name: str) -> web.FileResponse:
    """One of the UI's own files, gzip/deflate-compressed on the fly when the client accepts it.

    These are small and change with each release, so there is no pre-compressed copy that could go
    stale; most requests are revalidations (304) anyway.
    """
    web_dir = request.app[_WEB_DIR_KEY]
    path = web_dir / name
    try:
        # lstat on the file and each folder below web/: a symlink planted in the package dir is not followed
        parts = name.split("/")
        modes = [os.lstat(web_dir.joinpath(*parts[:i])).st_mode for i in range(1, len(parts))]
        st = os.lstat(path)
    except OSError:
        raise web.HTTPNotFound() from None
    if not stat.S_ISREG(st.st_mode) or not all(stat.S_ISDIR(mode) for mode in modes):
        raise web.HTTPNotFound()
    response = web.FileResponse(path, headers={"Cache-Control": APP_CACHE})
    if request.method == "GET" and not any(h in request.headers for h in _CONDITIONAL):
        response.enable_compression()
    return response


async def index(request: web.Request) -> web.StreamResponse:
    response = _app_file(request, "index.html")
    response.content_type = "text/html"
    return response


async def app_file(request: web.Request) -> web.StreamResponse:
    return _app_file(request, request.match_info["name"])


async def _cache_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Cache-Control and Vary for the UI's responses (add_static has no per-route header option)."""
    path = request.path
    if not (path == "/" or path.startswith(STATIC_PREFIX)) or response.status not in (200, 206, 304):
        return
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = VENDOR_CACHE if path.startswith(VENDOR_PREFIX) else APP_CACHE
    # `Vary` so a shared cache never hands a gzip body to a client that did not ask for one.
    vary = response.headers.get("Vary", "")
    if "accept-encoding" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"


def add_routes(app: web.Application, web_dir: Path = WEB_DIR) -> None:
    """Register `/` and `/static/` on `app` (idempotent, so a second call is harmless).

    `web_dir` is the package's web/ folder; tests pass another one.
    """
    if _WEB_DIR_KEY in app:
        return
    app[_WEB_DIR_KEY] = web_dir
    app.router.add_get("/", index, name="ui-index")
    # The app's own files first (top level, and the ES modules under js/; compressed on the fly); everything
    # else, vendor included, via add_static.
    app.router.add_get(
        STATIC_PREFIX + r"{name:(?:js/(?:[A-Za-z0-9_]+/)*)?[A-Za-z0-9_]+\.(?:js|css|html)}",
        app_file,
        name="ui-app-file",
    )
    app.router.add_static(STATIC_PREFIX, web_dir, name="ui-static", show_index=False, follow_symlinks=False)
    app.on_response_prepare.append(_cache_headers)
