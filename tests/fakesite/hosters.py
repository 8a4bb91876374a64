"""Fake video hosters: embed pages shaped like the real ones, plus real media behind them.

Everything lives at one origin (the fake site's); pages come from templates/hosters/ (copies of the
fixture shapes) with `__BASE__` -> request origin and `__PAYLOAD__` built at serve time by encoders.py.

Paths (code = `[A-Za-z0-9_-]{1,64}`):
    VOE         /voe/e/<code>  -- script redirect -->  /voe-edge/e/<code>
                (player script /voe-edge/js/loader.<x>.js names the junk tokens of the payload)
    Vidoza      /vidoza/embed-<code>.html
    Vidmoly     /vidmoly/embed-<code>.html    player only with a vidmoly Referer (vidmoly.biz/.to/.net
                or this site's /vidmoly/ pages), else a page without player; media needs the same Referer
                /vidmoly/w/<code>             the "watch" link form: never a player (-> embed form)
    Doodstream  /doodstream/e/<code>  + /pass_md5/<hash>/<code>  (Referer from a Doodstream page required)
                /playmogo/e/<code>    a mirror: `$.get("...")` in double quotes, expiry in seconds, and a
                                      pass_md5 hash bound to the mirror's host name
    SpeedFiles  /speedfiles/<code>
    Luluvdo     /luluvdo/embed/<code>  (also /luluvdo/dl?op=embed&file_code=<code>)
    Streamtape  /streamtape/e/<code>  + /streamtape/get_video?id=<code>&...&token=<t>  -> 302 mp4
    Filemoon    /filemoon/e/<code>    classic packed-script page (its /api/videos/<code> answers 404)
                /byse/e/<code>, /byse/d/<code>  the Byse single-page player (codes starting `byse`)
                + GET /api/videos/<code>  {"playback": <AES-256-GCM>}: sources 360p (a dead link) + 1080p
    Vidara      /vidara/e/<code>  + POST /api/stream {"filecode", "device"}  (403 unless Origin is this
                site and Referer a /vidara/ page) -> {"streaming_url"}; media needs a Referer of this site
    media       /media/<hoster>-<code>.mp4                     progressive mp4
                /media/<hoster>-<code>/master.m3u8             HLS master -> stream.m3u8 -> segNNN.ts
                /media/doodstream-<code>~<10 chars>?token=<code>&expiry=<ms>   (no extension)

How a code maps to media: every code of a hoster serves the same generated test video
(tests/fakesite/media.py, 3 s by default).  mp4 hosters (Vidoza, Doodstream, SpeedFiles, Streamtape)
point at the mp4; HLS hosters (Vidmoly, Luluvdo, Filemoon) at the master playlist.  A code ending in
`-<N>s` (e.g. `big-30s`) gets an N-second video instead (1..600), for tests that need a bigger file.
Vidara and Filemoon/Byse point at the master playlist.

Two host names: the server answers for 127.0.0.1 and for `localhost` alike, and some hoster forms send
the client to "the other" name (mirrors and rotating domains live on other hosts in reality):
    `/doodstream/e/mirror<...>`  302 -> `http://<other host>/playmogo/e/<code>` (relative pass_md5 there,
                                 so it must be resolved against the page's final URL)
    `/voe/e/link<...>`           the first page without `window.location.href`: only a quoted
                                 `http://<other host>/voe-edge/e/<code>` link (voe-embed-link.html)
    `/voe-edge/e/junk<...>`      payload written with other junk tokens, named by the page's loader script

Doodstream media links are bound to the client: the media answers 403 unless the User-Agent is the one
that fetched pass_md5 for that code and `expiry` is now, in seconds or in milliseconds.
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
    media_delay (optional)     seconds added before answering each media request (round trip)
    media_link (optional)      link.SharedLink: one aggregate rate for all media responses together
    media_fail_codes (optional) set of codes whose embed page works but whose media answers 404,
                               to test "resolved but download failed -> next candidate"
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from . import encoders
from .media import Media, make_media

TEMPLATES = Path(__file__).parent / "templates" / "hosters"

HOSTERS = (
    "voe",
    "vidoza",
    "vidmoly",
    "doodstream",
    "speedfiles",
    "luluvdo",
    "streamtape",
    "filemoon",
    "vidara",
)
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
    "vidara": "q7m2x9k4w1zt",
}
_STREAMTAPE_SAMPLE_TOKEN = "a8Zr1QpX4mT7cV2b"
_MEDIA_IN_TEMPLATE = re.compile(r"__BASE__/media/[^\"'\s<]+")
_MEDIA_NAME_RE = re.compile(
    rf"^(?P<hoster>[a-z]+)-(?P<code>{CODE}?)"
    r"(?:(?P<mp4>\.mp4)|~(?P<rand>[A-Za-z0-9]{10})|/(?P<file>master\.m3u8|stream\.m3u8|seg\d{3,6}\.ts))$"
)
_CONTENT_TYPES = {".mp4": "video/mp4", ".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
#: Hosters whose media host checks the Referer (Vidmoly per the fixtures; Doodstream's CDN does too).
_REFERER_CHECKED = {"vidmoly", "doodstream", "vidara"}
#: Referer hosts the real Vidmoly is reached with (the peer scraper sends `https://vidmoly.biz`).
_VIDMOLY_HOSTS = ("vidmoly.biz", "vidmoly.to", "vidmoly.net")
#: Junk tokens the `junk...` VOE pages use instead of the usual ones (named by their loader script).
VOE_OTHER_JUNK = ("&&", "<>", "|~", "@@", ";;")


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
        "filemoon": f"/byse/e/{code}" if code.startswith("byse") else f"/filemoon/e/{code}",
        "vidara": f"/vidara/e/{code}",
    }
    if "dood" in hoster:  # "DoodStream", "Dood" ... as the site writes it
        hoster = "doodstream"
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


def other_origin(origin: str) -> str:
    """The same server under its other name (127.0.0.1 <-> localhost): "another host" for mirrors."""
    if "://127.0.0.1" in origin:
        return origin.replace("://127.0.0.1", "://localhost", 1)
    return origin.replace("://localhost", "://127.0.0.1", 1)


def host_tag(origin: str) -> str:
    """The pass_md5 hash a mirror page issues: bound to the host name the page was served from."""
    return "h" + hashlib.sha1(urlsplit(origin).hostname.encode()).hexdigest()[:10]


def _referer_ok(hoster: str, referer: str, origin: str) -> bool:
    """Whether a media request of `hoster` carries a Referer its (real) media host would accept."""
    path = urlsplit(referer).path
    if hoster == "vidmoly":
        host = urlsplit(referer).hostname or ""
        return host in _VIDMOLY_HOSTS or referer.startswith(f"{origin}/vidmoly/")
    if hoster == "doodstream":
        return path.startswith(("/doodstream/", "/playmogo/"))
    if hoster == "vidara":
        return referer == f"{origin}/" or referer.startswith(f"{origin}/vidara/")
    return True


def _expiry_ok(value: str) -> bool:
    """Doodstream's `expiry`: the current time in seconds or in milliseconds (clients differ)."""
    if not value.isdigit():
        return False
    now = time.time()
    n = int(value)
    return abs(n - now) < 86400 or abs(n / 1000 - now) < 86400


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
        if hoster == "doodstream" and code.startswith("mirror"):
            raise web.HTTPFound(f"{other_origin(_origin(request))}/playmogo/e/{code}")
        if hoster == "vidmoly" and not _vidmoly_page_referer_ok(request):
            return _html(_template("vidmoly-noplayer.html"))  # a page, but no player in it
        return _html(_embed_page(hoster, code, _origin(request)))

    return handler


def _vidmoly_page_referer_ok(request: web.Request) -> bool:
    """Vidmoly's embed page shows its player only to a Referer of vidmoly or of the embedding site."""
    referer = request.headers.get("Referer") or ""
    host = urlsplit(referer).hostname or ""
    return host in _VIDMOLY_HOSTS or referer.startswith(_origin(request) + "/")


def _embed_page(hoster: str, code: str, origin: str) -> str:
    mp4 = origin + mp4_path(hoster, code)
    hls = origin + hls_path(hoster, code)
    if hoster == "voe":
        if code.startswith("link"):
            return _render("voe-embed-link.html", other_origin(origin), hoster, code)
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
    if hoster == "vidara":
        return _render("vidara-embed.html", origin, hoster, code)
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
    if code.startswith("junk"):
        payload = encoders.voe_json_payload(hls, mp4, junk_tokens=VOE_OTHER_JUNK)
        page = _render("voe-embed-step2.html", origin, "voe", code, payload=payload)
        page = page.replace("loader.3b1c0e.js", f"loader.3b1c0e.js?c={code}")
    return page


def voe_loader_script(code: str) -> str:
    """The VOE loader script; the array in it lists the junk tokens the player strips."""
    tokens = VOE_OTHER_JUNK if code.startswith("junk") else encoders.VOE_JUNK_TOKENS
    return _template("voe-loader.js").replace("__JUNK__", ", ".join(json.dumps(t) for t in tokens))


def _byse_plaintext(code: str, origin: str) -> dict:
    """What the Byse API encrypts: a low rendition that does not exist and the real one, best last."""
    return {
        "sources": [
            {"url": f"{origin}/media/byse-low-{code}/master.m3u8", "height": 360, "label": "360p"},
            {"url": origin + hls_path("filemoon", code), "height": 1080, "label": "1080p"},
        ],
        "poster": f"{origin}/byse/thumbs/{code}.jpg",
    }


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def add_routes(app: web.Application, state: Any) -> None:
    """Register every fake hoster route (embed pages, helper endpoints, media) on `app`."""

    async def voe_edge(request: web.Request) -> web.StreamResponse:
        _log(state, request, "voe")
        code = request.match_info["code"]
        gone = _unavailable(state, "voe", code)
        return gone or _html(_voe_player_page(code, _origin(request)))

    #: Doodstream code -> User-Agent that fetched its pass_md5 (the CDN binds the link to it).
    dood_agents: dict[str, str] = {}

    async def pass_md5(request: web.Request) -> web.StreamResponse:
        _log(state, request, "doodstream")
        token = request.match_info["token"]
        gone = _unavailable(state, "doodstream", token)
        if gone is not None:
            return web.Response(text="RELOAD", status=gone.status)
        if not urlsplit(request.headers.get("Referer") or "").path.startswith(("/doodstream/", "/playmogo/")):
            return web.Response(text="RELOAD")  # what the real endpoint says without its Referer
        tag = request.match_info["hash"]
        if tag.startswith("h") and tag != host_tag(_origin(request)):
            return web.Response(text="RELOAD")  # a mirror's hash asked at another host
        dood_agents[token] = request.headers.get("User-Agent", "")
        prefix = f"{_origin(request)}/media/doodstream-{token}~"
        return web.Response(text=encoders.doodstream_pass_md5_body(prefix), content_type="text/plain")

    async def playmogo(request: web.Request) -> web.StreamResponse:
        _log(state, request, "doodstream")
        code = request.match_info["code"]
        gone = _unavailable(state, "doodstream", code)
        if gone is not None:
            return gone
        origin = _origin(request)
        page = _render("doodstream-mirror-embed.html", origin, "doodstream", code)
        return _html(page.replace("__PASS_MD5__", f"/pass_md5/{host_tag(origin)}/{code}"))

    async def vidmoly_watch(request: web.Request) -> web.StreamResponse:
        _log(state, request, "vidmoly")
        gone = _unavailable(state, "vidmoly", request.match_info["code"])
        return gone or _html(_template("vidmoly-noplayer.html"))

    async def voe_loader(request: web.Request) -> web.StreamResponse:
        _log(state, request, "voe")
        script = voe_loader_script(request.query.get("c", ""))
        return web.Response(text=script, content_type="application/javascript")

    async def byse_page(request: web.Request) -> web.StreamResponse:
        _log(state, request, "filemoon")
        code = request.match_info["code"]
        gone = _unavailable(state, "filemoon", code)
        return gone or _html(_render("filemoon-byse-embed.html", _origin(request), "filemoon", code))

    async def byse_api(request: web.Request) -> web.StreamResponse:
        _log(state, request, "filemoon")
        code = request.match_info["code"]
        if "filemoon" in state.down_hosters:
            return _json({"error": "Service unavailable"}, status=503)
        if code in state.dead_codes or not code.startswith("byse"):
            return _json({"error": "Video not found"}, status=404)  # classic Filemoon files too
        playback = encoders.byse_playback(_byse_plaintext(code, _origin(request)))
        body = _template("filemoon-byse-api.json").replace("__PAYLOAD__", playback)
        return web.Response(text=body, content_type="application/json")

    async def vidara_api(request: web.Request) -> web.StreamResponse:
        _log(state, request, "vidara")
        origin = _origin(request)
        if "vidara" in state.down_hosters:
            return _json({"error": "Service unavailable"}, status=503)
        referer = request.headers.get("Referer") or ""
        if request.headers.get("Origin") != origin or not referer.startswith(f"{origin}/vidara/"):
            return _json({"error": "Forbidden"}, status=403)
        try:
            body = await request.json()
        except ValueError:
            return _json({"error": "Bad request"}, status=400)
        code = body.get("filecode") if isinstance(body, dict) else None
        if not isinstance(code, str) or not _CODE_RE.match(code) or body.get("device") != "web":
            return _json({"error": "Bad request"}, status=400)
        if code in state.dead_codes:
            return _json({"error": "File not found"}, status=404)
        text = _render("vidara-api.json", origin, "vidara", code, media=hls_path("vidara", code))
        return web.Response(text=text, content_type="application/json")

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
            if not _referer_ok(hoster, request.headers.get("Referer") or "", _origin(request)):
                return web.Response(status=403, text="Referer required")
        if m.group("rand"):
            if request.query.get("token") != code or not _expiry_ok(request.query.get("expiry", "")):
                return web.Response(status=403, text="bad token")
            if request.headers.get("User-Agent", "") != dood_agents.get(code):
                return web.Response(status=403, text="link bound to another client")
        if getattr(state, "media_delay", 0.0):
            await asyncio.sleep(state.media_delay)
        made: Media = await asyncio.to_thread(make_media, state.media_dir, media_seconds(code))
        path = made.hls_dir / m.group("file") if m.group("file") else made.mp4
        if not path.is_file():
            return web.Response(status=404, text="no such segment")
        ctype = _CONTENT_TYPES[path.suffix]
        rate = getattr(state, "media_rate_bps", None)
        if rate or getattr(state, "media_link", None) is not None:
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
        ("vidara", "/vidara/e/{code}"),
    ):
        app.router.add_get(pattern.replace("{code}", "{code:" + CODE + "}"), _embed_handler(state, hoster))
    app.router.add_get("/luluvdo/dl", _embed_handler(state, "luluvdo"))
    app.router.add_get("/voe-edge/e/{code:" + CODE + "}", voe_edge)
    app.router.add_get("/voe-edge/js/{name:loader[.A-Za-z0-9]*\\.js}", voe_loader)
    app.router.add_get("/playmogo/e/{code:" + CODE + "}", playmogo)
    app.router.add_get("/vidmoly/w/{code:" + CODE + "}", vidmoly_watch)
    app.router.add_get("/byse/{form:[ed]}/{code:" + CODE + "}", byse_page)
    app.router.add_get("/api/videos/{code:" + CODE + "}", byse_api)
    app.router.add_post("/api/stream", vidara_api)
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
            if getattr(state, "media_link", None) is not None:
                await state.media_link.take(len(chunk))  # aggregate limit shared by all responses
            if rate:
                await asyncio.sleep(len(chunk) / rate)
    finally:
        fh.close()
    await resp.write_eof()
    return resp
