"""Doodstream and its mirrors: the page asks `pass_md5` for a CDN prefix and appends a random tail.

Doodstream rotates its host names (dood.li, dood.to, doodstream.com, dood.watch, doodsearch.site,
playmogo.com, ...), so nothing here depends on the host: the hoster is chosen by the name on the episode
page, and the embed URL is fetched wherever it leads.  The page calls `$.get('<...>/pass_md5/<hash>/<token>')`
- usually a path on its own host, which is resolved against the page's *final* URL (after redirects to
the current mirror), sometimes an absolute URL on another host; both quote styles occur.  The answer is a
URL prefix; the media URL is what the page's `makePlay()` builds: prefix + 10 random [A-Za-z0-9] +
`?token=<token>&expiry=<now>`, with `now` in milliseconds (`Date.now()`) or seconds when the page divides
by 1000.  The CDN ties that link to the client that fetched pass_md5, so the MediaSource carries the very
User-Agent and Referer used for it, and the downloader hands both to yt-dlp.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from ._common import check_embed_url, fetch_text, is_http_url, media_source, no_source
from .base import HosterError, MediaSource

if TYPE_CHECKING:
    from aniworldd.providers.http import HttpClient

HOSTER = "Doodstream"

#: The jQuery call (either quotes; a path or an absolute URL), then any quoted pass_md5 URL as fallback.
_GET_RE = re.compile(r"""\$\.get\(\s*(?P<q>["'])(?P<url>[^"'\s]*/pass_md5/[^"'\s]+)(?P=q)""")
_ANY_RE = re.compile(r"""(?P<q>["'])(?P<url>(?:https?:)?(?://[^"'/\s]+)?/pass_md5/[^"'\s]+)(?P=q)""")
_TOKEN_RE = re.compile(r"""[?&"']token=(?P<token>[A-Za-z0-9]+)""")
#: What follows `expiry=` in makePlay(), up to the end of the statement.
_EXPIRY_RE = re.compile(r"expiry=(?P<expr>[^;}\n]{0,120})")
_SECONDS_RE = re.compile(r"/\s*1(?:000|e3)\b")
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class PassMd5:
    url: str  # as written in the page (path or absolute URL)
    token: str
    seconds: bool  # expiry in seconds (page divides Date.now() by 1000) instead of milliseconds


def extract(html: str) -> PassMd5 | None:
    """The pass_md5 call, the makePlay token and the expiry unit from an embed page."""
    m = _GET_RE.search(html) or _ANY_RE.search(html)
    if m is None:
        return None
    url = m.group("url")
    t = _TOKEN_RE.search(html)  # the first token= in the page, as the maintained peer scraper takes it
    token = t.group("token") if t else urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    e = _EXPIRY_RE.search(html)
    seconds = bool(e and _SECONDS_RE.search(e.group("expr")))
    return PassMd5(url=url, token=token, seconds=seconds)


def final_url(prefix: str, token: str, *, seconds: bool = False, now: float | None = None) -> str:
    now = time.time() if now is None else now
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    expiry = int(now) if seconds else int(now * 1000)
    return f"{prefix}{tail}?token={token}&expiry={expiry}"


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    # The link is bound to this exact User-Agent: pin it (the client's default when none is given).
    agent = user_agent or getattr(client, "user_agent", None)
    html, page_url = await fetch_text(client, HOSTER, embed_url, user_agent=agent)
    found = extract(html)
    if found is None:
        raise no_source(HOSTER, html, "no pass_md5 URL in embed page")
    md5_url = urljoin(page_url, found.url)
    if not is_http_url(md5_url):
        raise HosterError(HOSTER, "pass_md5 URL is not http(s)")
    body, _ = await fetch_text(client, HOSTER, md5_url, user_agent=agent, referer=page_url)
    prefix = body.strip()
    if not is_http_url(prefix):
        # The real site answers "RELOAD" when the hash expired or the Referer was refused.
        raise HosterError(HOSTER, f"pass_md5 gave no media prefix ({prefix[:40]!r})")
    url = final_url(prefix, found.token, seconds=found.seconds)
    return media_source(HOSTER, url, "mp4", user_agent=agent, referer=page_url)
