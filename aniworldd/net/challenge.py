"""Telling an anti-bot wall from a normal page.

Markers that merely *load* Cloudflare (the beacon script under `/cdn-cgi/challenge-platform/`) or name
DDoS-Guard (a footer, `server: ddos-guard` on every response) sit on perfectly normal pages, so they
never decide anything.  What does, in order: the `cf-mitigated: challenge` header; a wall's title
("Just a moment...", "Attention Required! | Cloudflare", "DDoS-Guard", "Stream wird vorbereitet...");
a small 403/503 body from a Cloudflare or DDoS-Guard server; and challenge-only markers
(`window._cf_chl_opt`, `/orchestrate/`, Turnstile widgets, `/.well-known/ddos-guard/`) - the latter
only on an error status or when the caller says the content it asked for is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: Kinds of wall.  Only `cloudflare` (the JS challenge) can be passed without a human (FlareSolverr).
CLOUDFLARE = "cloudflare"
CLOUDFLARE_BLOCK = "cloudflare_block"
TURNSTILE = "turnstile"
DDOS_GUARD = "ddos_guard"
CAPTCHA = "captcha"

_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
#: A wall page is small; a normal page from the same server is not (and has its content).
_SMALL_BODY = 32 * 1024
_SNIFF = 256 * 1024

_TITLES = (
    ("just a moment", CLOUDFLARE, 'Cloudflare challenge ("Just a moment...")'),
    ("attention required! | cloudflare", CLOUDFLARE_BLOCK, "Cloudflare block page"),
    ("ddos-guard", DDOS_GUARD, "DDoS-Guard browser check"),
    ("stream wird vorbereitet", TURNSTILE, 'captcha (Turnstile "Stream wird vorbereitet...")'),
    ("captcha", CAPTCHA, "captcha page"),
)
_MARKERS = (
    ("_cf_chl_opt", CLOUDFLARE, "Cloudflare challenge"),
    ("/orchestrate/", CLOUDFLARE, "Cloudflare challenge"),
    ("player-prepare-turnstile", TURNSTILE, "captcha (Turnstile)"),
    ("cf-turnstile", TURNSTILE, "captcha (Turnstile)"),
    ("/.well-known/ddos-guard/", DDOS_GUARD, "DDoS-Guard browser check"),
    ("g-recaptcha", CAPTCHA, "captcha (reCAPTCHA)"),
    ("h-captcha", CAPTCHA, "captcha (hCaptcha)"),
)


@dataclass(frozen=True, slots=True)
class Challenge:
    kind: str
    reason: str

    @property
    def passable(self) -> bool:
        """A JS challenge a headless browser (FlareSolverr) can pass; the rest needs a human or time."""
        return self.kind == CLOUDFLARE


def page_title(text: str) -> str:
    m = _TITLE_RE.search(text[:_SNIFF])
    return " ".join(m.group(1).split()).lower() if m else ""


def detect(
    status: int,
    headers: Mapping[str, str],
    text: str,
    expected: Callable[[str], bool] | None = None,
) -> Challenge | None:
    """The wall this response is, or None for a normal answer.  `headers` keys are lowercase.

    `expected(text)` - does the body hold what was asked for (the series `h1`, the search JSON)?  A
    success status with that content is normal whatever else it carries.
    """
    if expected is not None and status < 300 and expected(text):
        return None
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return Challenge(CLOUDFLARE, "Cloudflare challenge")
    title = page_title(text)
    for needle, kind, reason in _TITLES:
        if needle in title:
            return Challenge(kind, reason)
    error = status in (403, 429, 503)
    if error or (expected is not None and status < 300):
        head = text[:_SNIFF].lower()
        for needle, kind, reason in _MARKERS:
            if needle in head:
                return Challenge(kind, reason)
    server = headers.get("server", "").lower()
    if status in (403, 503) and len(text) < _SMALL_BODY and "html" in headers.get("content-type", "html"):
        if "cloudflare" in server:
            return Challenge(CLOUDFLARE_BLOCK, f"Cloudflare refused the request (HTTP {status})")
        if "ddos-guard" in server:
            return Challenge(DDOS_GUARD, f"DDoS-Guard refused the request (HTTP {status})")
    return None
