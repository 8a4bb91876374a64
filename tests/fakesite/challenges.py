"""The walls in front of the look-alike site's pages: Cloudflare's JS challenge, DDoS-Guard's check,
s.to's Turnstile step, and the beacon script that normal pages carry.

Every site route (aniworld + s.to pages, search, redirects; not hosters, media or `/dns-query`) goes
through `serve_site_page` (called from sites.py's route wrapper).  Pages come from
templates/challenges/ (copies of the shared fixtures).  Each wall is one switch on FakeSiteState:

* `js_challenge` models Cloudflare's managed challenge: 403 with `cf-mitigated: challenge`,
  `server: cloudflare`, `cf-ray: <id>-FRA` and the "Just a moment..." page.  A browser passes by running
  the page's JavaScript, which (here) sets the `cf_clearance` cookie after a short pause and reloads.
  Like the real cookie, ours is bound to the User-Agent that ran the script: its value is
  `clearance_for(state, user_agent)`, so reusing it with another User-Agent is refused again.  A
  client passes only by sending the cookie *and* that User-Agent (what FlareSolverr's `solution`
  hands over).  Changing `state.clearance_value` expires every clearance ("until they stop working").
* `browser_headers` models aniworld.to's answer to clients that do not look like a browser: 403 from
  `server: cloudflare` with an "Attention Required! | Cloudflare" block page (a sketch: the real
  markup is not known) unless the request has a `Mozilla/5.0` User-Agent, Accept, Accept-Language
  and Sec-Fetch-Mode, as a browser (and curl_cffi impersonating Chrome) sends.  aniworld routes only.
* `ddos_guard_check` models DDoS-Guard's browser check: 403, `server: ddos-guard`, the check page.
* `turnstile_after = N` models s.to's "Stream wird vorbereitet..." step: after N uses of `/r?t=`,
  the redirect answers 200 on the site's own host with the Turnstile page instead of the 302 to the
  hoster, until the knob is cleared (None) or raised.  Uses are counted in `sto_redirect_uses`.
* `beacon` models a normal page under bot detection: Cloudflare's beacon script and a footer naming
  DDoS-Guard go in before `</body>` of every HTML page, and every site response says
  `server: ddos-guard`, while the status (200) and the content stay normal.  A client must not call
  these pages blocked.
"""

from __future__ import annotations

import functools
import hashlib
import html
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from .catalog import ANIWORLD, STO
from .state import FakeSiteState

CHALLENGE_TEMPLATES = Path(__file__).parent / "templates" / "challenges"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@functools.cache
def challenge_page(name: str) -> str:
    """A page from templates/challenges/ (e.g. "cloudflare-interstitial.html")."""
    return (CHALLENGE_TEMPLATES / name).read_text(encoding="utf-8")


def clearance_for(state: FakeSiteState, user_agent: str) -> str:
    """The `cf_clearance` value the challenge hands to (and accepts from) this User-Agent."""
    digest = hashlib.sha256(f"{state.clearance_value}\n{user_agent}".encode()).hexdigest()[:24]
    return f"{state.clearance_value}.{digest}"


def has_clearance(state: FakeSiteState, request: web.Request) -> bool:
    cookie = request.cookies.get("cf_clearance")
    return cookie is not None and cookie == clearance_for(state, request.headers.get("User-Agent", ""))


def _html(text: str, status: int, headers: dict[str, str]) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=headers)


def interstitial(state: FakeSiteState, request: web.Request) -> web.Response:
    """Cloudflare's "Just a moment..." answer, carrying the script a browser would run to get cleared."""
    value = clearance_for(state, request.headers.get("User-Agent", ""))
    # Runs before Cloudflare's own script rewrites the address bar, so it can go back to the page asked for.
    script = (
        "<script>(function(){var u=location.href;setTimeout(function(){"
        f'document.cookie="cf_clearance={value}; path=/; max-age=1800; SameSite=Lax";'
        "location.replace(u);},1500);})();</script>\n"
    )
    page = challenge_page("cloudflare-interstitial.html").replace("aniworld.to", request.url.host or "")
    page = page.replace('<body class="no-js">\n', '<body class="no-js">\n' + script, 1)
    ray = secrets.token_hex(8)
    state.challenges_served += 1
    return _html(
        page,
        403,
        {
            "cf-mitigated": "challenge",
            "Server": "cloudflare",
            "cf-ray": f"{ray}-FRA",
            "Cache-Control": "private, max-age=0, no-store, no-cache, must-revalidate",
        },
    )


BLOCK_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head><title>Attention Required! | Cloudflare</title><meta charset="UTF-8">
<meta name="robots" content="noindex, nofollow"></head>
<body>
<div id="cf-wrapper"><div id="cf-error-details" class="cf-error-details-wrapper">
<div class="cf-error-overview"><h1 data-translate="block_headline">Sorry, you have been blocked</h1>
<h2 class="cf-subheadline">You are unable to access ${host}</h2></div>
<div class="cf-error-footer">
<span>Cloudflare Ray ID: <strong class="font-semibold">${ray}</strong></span></div>
</div></div>
</body>
</html>
"""


def looks_like_browser(request: web.Request) -> bool:
    """The headers every browser navigation (and curl_cffi's Chrome impersonation) carries."""
    h = request.headers
    return "Mozilla/5.0" in h.get("User-Agent", "") and all(
        h.get(name) for name in ("Accept", "Accept-Language", "Sec-Fetch-Mode")
    )


def _with_beacon(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Server"] = "ddos-guard"
    if isinstance(response, web.Response) and response.content_type == "text/html" and response.body:
        text = response.text or ""
        at = text.rfind("</body>")
        if at >= 0:
            response.text = text[:at] + challenge_page("cf-beacon-snippet.html") + text[at:]
    return response


async def serve_site_page(
    state: FakeSiteState, site: str, request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Answer a site request through whichever walls are switched on (see the module docstring)."""
    if state.browser_headers and site == ANIWORLD and not looks_like_browser(request):
        state.header_refusals += 1
        ray = secrets.token_hex(8)
        page = BLOCK_PAGE.replace("${host}", html.escape(request.url.host or "")).replace("${ray}", ray)
        return _html(page, 403, {"Server": "cloudflare", "cf-ray": f"{ray}-FRA"})
    if state.js_challenge:
        if not has_clearance(state, request):
            return interstitial(state, request)
        state.clearance_passes += 1
    if state.ddos_guard_check:
        return _html(challenge_page("ddos-guard-check.html"), 403, {"Server": "ddos-guard"})
    if site == STO and request.path == "/r":
        state.sto_redirect_uses += 1
        if state.turnstile_after is not None and state.sto_redirect_uses > state.turnstile_after:
            state.turnstile_served += 1
            headers = {"Server": "ddos-guard"} if state.beacon else {}
            return _html(challenge_page("sto-turnstile-modal.html"), 200, headers)
    if not state.beacon:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and errors raised by the handlers
        exc.headers["Server"] = "ddos-guard"
        raise
    return _with_beacon(response)
