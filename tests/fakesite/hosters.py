"""Fake video hosters: embed pages shaped like the real ones, plus real media behind them.

Everything lives at one origin (the fake site's); pages come from templates/hosters/ (copies of the
fixture shapes) with `__BASE__` -> request origin and `__PAYLOAD__` built at serve time by encoders.py.

Paths (code = `[A-Za-z0-9_-]{1,64}`):
    VOE         /voe/e/<code>  -- script redirect -->  /voe-edge/e/<code>
    Vidoza      /vidoza/embed-<code>.html
    Vidmoly     /vidmoly/embed-<code>.html                (media needs a Referer from /vidmoly/)
    Doodstream  /doodstream/e/<code>  + /pass_md5/<hash>/<code>  (Referer from /doodstream/ required)
    SpeedFiles  /speedfiles/<code>
    Luluvdo     /luluvdo/embed/<code>  (also /luluvdo/dl?op=embed&file_code=<code>)
    Streamtape  /streamtape/e/<code>  + /streamtape/get_video?id=<code>&...&token=<t>  -> 302 mp4
    Filemoon    /filemoon/e/<code>
    media       /media/<hoster>-<code>.mp4                     progressive mp4
                /media/<hoster>-<code>/master.m3u8             HLS master -> stream.m3u8 -> segNNN.ts
                /media/doodstream-<code>~<10 chars>?token=<code>&expiry=<ms>   (no extension)

How a code maps to media: every code of a hoster serves the same generated test video
(tests/fakesite/media.py, 3 s by default).  mp4 hosters (Vidoza, Doodstream, SpeedFiles, Streamtape)
point at the mp4; HLS hosters (Vidmoly, Luluvdo, Filemoon) at the master playlist.  A code ending in
`-<N>s` (e.g. `big-30s`) gets an N-second video instead (1..600), for tests that need a bigger file.
VOE picks its player-page form by code prefix:
    `legacy...`  old page, `'hls': '<base64>'` (HLS)
    `bare...`    JSON script tag holding a bare string instead of a one-element list (mp4 + HLS)
    `hls...`     JSON list form whose object has only the HLS `source`
    anything else  JSON list form with `source` (HLS) and `direct_access_url` (mp4)

State knobs (attributes of the FakeSiteState passed to add_routes):
    down_hosters: set[str]     lowercase names; SpeedFiles shows its "Web server is down" page (200),
                               the others answer 503 for every path of theirs (media too)
    dead_codes: set[str]       code removed: 404 "File not found" (Vidoza: 200 "File was deleted",
                               Doodstream: 200 "Video not found"), media 404
    media_dir: Path            where make_media caches the generated videos
    request_log: list          one dict per request handled here: {"method", "path", "hoster", "referer"}
    media_rate_bps (optional)  throttle media bodies to this many bytes/s (read on every chunk)
    media_fail_codes (optional) set of codes whose embed page works but whose media answers 404,
                               to test "resolved but download failed -> next candidate"
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from . import encoders
from .media import Media, make_media

TEMPLATES = Path(__file__).parent / "templates" / "hosters"

HOSTERS = ("voe", "vidoza", "vidmoly", "doodstream", "speedfiles", "luluvdo", "streamtape", "filemoon")
CODE = r"[A-Za-z0-9_-]{1,64}"
_CODE_RE = re.compile(rf"^{CODE}$")
_SECONDS_RE = re.compile(r"-(\d{1,3})s$")

#: The example file code written in each template, replaced by the requested code.
_SAMPLE_CODES = {
    "voe": "k7q2m9x4w1zr",
    "vidoza": "t1o9f2x8y0ab",
    "vidmoly": "w3pb8zk2qv1m",
    "doodstream": "xk29fjq7wm3p",
    "speedfiles": "5f0e9a27c4d1b86e3a0f",
    "luluvdo": "m8r2w6k0p4tx",
    "streamtape": "Zq8aXp3LmRt0Kb",
    "filemoon": "r4tq0v8mzs2d",
}
_STREAMTAPE_SAMPLE_TOKEN = "a8Zr1QpX4mT7cV2b"
_MEDIA_IN_TEMPLATE = re.compile(r"__BASE__/media/[^\"'\s<]+")
_MEDIA_NAME_RE = re.compile(
    rf"^(?P<hoster>[a-z]+)-(?P<code>{CODE}?)"
    r"(?:(?P<mp4>\.mp4)|~(?P<rand>[A-Za-z0-9]{10})|/(?P<file>master\.m3u8|stream\.m3u8|seg\d{3,6}\.ts))$"
)
_CONTENT_TYPES = {".mp4": "video/mp4", ".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
#: Hosters whose media host checks the Referer (Vidmoly per the fixtures; Doodstream's CDN does too).
_REFERER_CHECKED = {"vidmoly", "doodstream"}


def embed_path(hoster_name: str, code: str) -> str:
    """Path (on the fake site's origin) of the embed page the provider's redirect points at."""
    hoster = hoster_name.strip().lower()
    if not _CODE_RE.match(code):
        raise ValueError(f"bad fake hoster code {code!r}")
    paths = {
        "voe": f"/voe/e/{code}",
        "vidoza": f"/vidoza/embed-{code}.html",
        "vidmoly": f"/vidmoly/embed-{code}.html",
        "doodstream": f"/doodstream/e/{code}",
        "speedfiles": f"/speedfiles/{code}",
        "luluvdo": f"/luluvdo/embed/{code}",
        "streamtape": f"/streamtape/e/{code}",
        "filemoon": f"/filemoon/e/{code}",
    }
    if hoster not in paths:
        raise ValueError(f"unknown fake hoster {hoster_name!r}")
    return paths[hoster]


def media_seconds(code: str) -> int:
    """Length of the video a code maps to: `-<N>s` suffix, else 3 s."""
    m = _SECONDS_RE.search(code)
    return min(max(int(m.group(1)), 1), 600) if m else 3


def mp4_path(hoster: str, code: str) -> str:
    return f"/media/{hoster}-{code}.mp4"


def hls_path(hoster: str, code: str) -> str:
    return f"/media/{hoster}-{code}/master.m3u8"


def streamtape_token(code: str) -> str:
    """The real (non-decoy) get_video token for a code."""
    return hashlib.sha1(code.encode()).hexdigest()[:16]


@functools.cache
def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _origin(request: web.Request) -> str:
    return str(request.url.origin())


def _render(
    name: str, origin: str, hoster: str, code: str, media: str | None = None, payload: str = ""
) -> str:
    text = _template(name).replace(_SAMPLE_CODES[hoster], code)
    if media is not None:
        text = _MEDIA_IN_TEMPLATE.sub(lambda _m: "__BASE__" + media, text)
    return text.replace("__BASE__", origin).replace("__PAYLOAD__", payload)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _log(state: Any, request: web.Request, hoster: str) -> None:
    state.request_log.append(
        {
            "method": request.method,
            "path": request.path_qs,
            "hoster": hoster,
            "referer": request.headers.get("Referer"),
        }
    )


def _unavailable(state: Any, hoster: str, code: str) -> web.Response | None:
    """The down / dead page for this hoster and code, or None when it should work."""
    if hoster in state.down_hosters:
        if hoster == "speedfiles":
            return _html(_template("speedfiles-down.html"))
        return _html(_template("hoster-down.html"), status=503)
    if code in state.dead_codes:
        if hoster == "vidoza":
            return _html(_template("vidoza-deleted.html"))
        if hoster == "doodstream":
            return _html(_template("doodstream-not-found.html"))
        return _html(_template("not-found.html"), status=404)
    return None


def _embed_handler(state: Any, hoster: str):
    async def handler(request: web.Request) -> web.StreamResponse:
        _log(state, request, hoster)
        code = request.match_info.get("code") or request.query.get("file_code", "")
        if not _CODE_RE.match(code):
            return _html(_template("not-found.html"), status=404)
        gone = _unavailable(state, hoster, code)
        if gone is not None:
            return gone
        return _html(_embed_page(hoster, code, _origin(request)))

    return handler


def _embed_page(hoster: str, code: str, origin: str) -> str:
    mp4 = origin + mp4_path(hoster, code)
    hls = origin + hls_path(hoster, code)
    if hoster == "voe":
        return _render("voe-embed.html", origin, hoster, code)
    if hoster == "vidoza":
        return _render("vidoza-embed.html", origin, hoster, code, media=mp4_path(hoster, code))
    if hoster in ("vidmoly", "luluvdo"):
        return _render(f"{hoster}-embed.html", origin, hoster, code, media=hls_path(hoster, code))
    if hoster == "doodstream":
        return _render("doodstream-embed.html", origin, hoster, code)
    if hoster == "speedfiles":
        return _render(
            "speedfiles-embed.html", origin, hoster, code, payload=encoders.speedfiles_payload(mp4)
        )
    if hoster == "streamtape":
        page = _render("streamtape-embed.html", origin, hoster, code)
        return page.replace(_STREAMTAPE_SAMPLE_TOKEN, streamtape_token(code))
    if hoster == "filemoon":
        return _render(
            "filemoon-embed.html", origin, hoster, code, payload=encoders.filemoon_packed_script(hls)
        )
    raise AssertionError(hoster)


def _voe_player_page(code: str, origin: str) -> str:
    mp4 = origin + mp4_path("voe", code)
    hls = origin + hls_path("voe", code)
    if code.startswith("legacy"):
        return _render(
            "voe-embed-step2-legacy.html", origin, "voe", code, payload=encoders.voe_hls_payload(hls)
        )
    if code.startswith("hls"):
        return _render("voe-embed-step2.html", origin, "voe", code, payload=encoders.voe_json_payload(hls))
    page = _render("voe-embed-step2.html", origin, "voe", code, payload=encoders.voe_json_payload(hls, mp4))
    if code.startswith("bare"):
        payload = encoders.voe_json_payload(hls, mp4)
        page = page.replace(f'["{payload}"]', f'"{payload}"')
    return page


def add_routes(app: web.Application, state: Any) -> None:
    """Register every fake hoster route (embed pages, helper endpoints, media) on `app`."""

    async def voe_edge(request: web.Request) -> web.StreamResponse:
        _log(state, request, "voe")
        code = request.match_info["code"]
        gone = _unavailable(state, "voe", code)
        return gone or _html(_voe_player_page(code, _origin(request)))

    async def pass_md5(request: web.Request) -> web.StreamResponse:
        _log(state, request, "doodstream")
        token = request.match_info["token"]
        gone = _unavailable(state, "doodstream", token)
        if gone is not None:
            return web.Response(text="RELOAD", status=gone.status)
        if "/doodstream/" not in (request.headers.get("Referer") or ""):
            return web.Response(text="RELOAD")  # what the real endpoint says without its Referer
        prefix = f"{_origin(request)}/media/doodstream-{token}~"
        return web.Response(text=encoders.doodstream_pass_md5_body(prefix), content_type="text/plain")

    async def streamtape_get_video(request: web.Request) -> web.StreamResponse:
        _log(state, request, "streamtape")
        code = request.query.get("id", "")
        if not _CODE_RE.match(code):
            return web.Response(status=404, text="Video not found")
        gone = _unavailable(state, "streamtape", code)
        if gone is not None:
            return gone
        if request.query.get("token") != streamtape_token(code):
            return web.Response(status=403, text="Wrong token")  # the decoy divs' token ends here
        raise web.HTTPFound(_origin(request) + mp4_path("streamtape", code))

    async def media(request: web.Request) -> web.StreamResponse:
        m = _MEDIA_NAME_RE.match(request.match_info["name"])
        if not m or m.group("hoster") not in HOSTERS:
            return web.Response(status=404, text="no such media")
        hoster, code = m.group("hoster"), m.group("code")
        _log(state, request, hoster)
        if hoster in state.down_hosters:
            return web.Response(status=503, text="hoster down")
        if code in state.dead_codes or code in getattr(state, "media_fail_codes", ()):
            return web.Response(status=404, text="file not found")
        if hoster in _REFERER_CHECKED:
            referer = request.headers.get("Referer") or ""
            if not referer.startswith(f"{_origin(request)}/{hoster}/"):
                return web.Response(status=403, text="Referer required")
        if m.group("rand") and request.query.get("token") != code:
            return web.Response(status=403, text="bad token")
        made: Media = await asyncio.to_thread(make_media, state.media_dir, media_seconds(code))
        path = made.hls_dir / m.group("file") if m.group("file") else made.mp4
        if not path.is_file():
            return web.Response(status=404, text="no such segment")
        ctype = _CONTENT_TYPES[path.suffix]
        rate = getattr(state, "media_rate_bps", None)
        if rate:
            return await _send_throttled(request, path, ctype, state)
        return web.FileResponse(path, headers={"Content-Type": ctype})

    for hoster, pattern in (
        ("voe", "/voe/e/{code}"),
        ("vidoza", "/vidoza/embed-{code}.html"),
        ("vidmoly", "/vidmoly/embed-{code}.html"),
        ("doodstream", "/doodstream/e/{code}"),
        ("speedfiles", "/speedfiles/{code}"),
        ("luluvdo", "/luluvdo/embed/{code}"),
        ("streamtape", "/streamtape/e/{code}"),
        ("filemoon", "/filemoon/e/{code}"),
    ):
        app.router.add_get(pattern.replace("{code}", "{code:" + CODE + "}"), _embed_handler(state, hoster))
    app.router.add_get("/luluvdo/dl", _embed_handler(state, "luluvdo"))
    app.router.add_get("/voe-edge/e/{code:" + CODE + "}", voe_edge)
    app.router.add_get("/pass_md5/{hash:[A-Za-z0-9_-]+}/{token:" + CODE + "}", pass_md5)
    app.router.add_get("/streamtape/get_video", streamtape_get_video)
    app.router.add_get("/media/{name:.+}", media)


async def _send_throttled(request: web.Request, path: Path, ctype: str, state: Any) -> web.StreamResponse:
    """Serve `path` (honouring a single Range) at `state.media_rate_bps`, re-read on every chunk."""
    size = (await asyncio.to_thread(path.stat)).st_size
    try:
        rng = request.http_range
    except ValueError:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    start = rng.start or 0
    if start < 0:
        start = max(size + start, 0)
    stop = size if rng.stop is None else min(rng.stop, size)
    if start >= size or start >= stop:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    partial = rng.start is not None or rng.stop is not None
    resp = web.StreamResponse(status=206 if partial else 200)
    resp.headers["Content-Type"] = ctype
    resp.headers["Accept-Ranges"] = "bytes"
    resp.content_length = stop - start
    if partial:
        resp.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    fh = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(fh.seek, start)
        remaining = stop - start
        while remaining > 0:
            rate = getattr(state, "media_rate_bps", None)
            step = min(remaining, max(1024, min(65536, (rate or 655360) // 10)))
            chunk = await asyncio.to_thread(fh.read, step)
            if not chunk:
                break
            await resp.write(chunk)
            remaining -= len(chunk)
            if rate:
                await asyncio.sleep(len(chunk) / rate)
    finally:
        fh.close()
    await resp.write_eof()
    return resp
