"""Vidmoly (vidmoly.to / .net / .biz): a jwplayer page with `sources: [{file:"<master.m3u8>"}]`.

The page only carries its player for a request that looks like it comes from Vidmoly itself: the
maintained peer scraper sends `Referer: https://vidmoly.biz` (no trailing slash) and navigation headers
(`Sec-Fetch-Dest: document`), and the same Referer for the playlist and every segment, so the MediaSource
carries it for yt-dlp.  Two things are not confirmed (see the shared fixtures' notes): whether link forms
other than `/embed-<id>.html` must be rewritten to it, and whether the page wants to be loaded as a frame
(`Sec-Fetch-Dest: iframe`, as a browser does inside the episode page).  So when a page comes back
without a player, the other form and then the frame-style request are tried before giving up.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from ._common import (
    check_embed_url,
    fetch_text,
    jwplayer_sources,
    kind_of,
    media_source,
    no_source,
    script_texts,
)
from .base import HosterError, MediaSource

if TYPE_CHECKING:
    from aniworldd.providers.http import HttpClient

HOSTER = "Vidmoly"
REFERER = "https://vidmoly.biz"

_NAVIGATE = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none"}
_FRAME = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "cross-site"}
_EMBED_RE = re.compile(r"/embed-[A-Za-z0-9]+\.html$")
#: Other link forms: `/w/<id>`, `/v/<id>`, `/e/<id>`, `/embed/<id>`, or a bare `/<id>`.
_OTHER_RE = re.compile(r"/(?:(?:w|v|e|d|embed)/)?(?P<id>[A-Za-z0-9]{6,})/?$")


def embed_form(url: str) -> str | None:
    """The `/embed-<id>.html` form of a Vidmoly link (None when it already is one or has no id)."""
    parts = urlsplit(url)
    if _EMBED_RE.search(parts.path):
        return None
    m = _OTHER_RE.search(parts.path)
    if m is None:
        return None
    path = parts.path[: m.start()] + f"/embed-{m.group('id')}.html"
    return urlunsplit(parts._replace(path=path, query=""))


def player_source(html: str) -> str | None:
    for script in script_texts(html):
        files = jwplayer_sources(script)
        if files:
            return files[0]
    return None


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    forms = [embed_url] + [u for u in (embed_form(embed_url),) if u]
    attempts = [(url, _NAVIGATE) for url in forms] + [(forms[-1], _FRAME)]
    failed: dict[str, HosterError] = {}
    last_html = ""
    for url, headers in attempts:
        if url in failed:
            continue  # an HTTP error for this URL does not change with other request headers
        try:
            html, page_url = await fetch_text(
                client, HOSTER, url, user_agent=user_agent, referer=REFERER, headers=headers
            )
        except HosterError as exc:
            failed[url] = exc
            continue
        src = player_source(html)
        if src:
            media = urljoin(page_url, src)
            return media_source(HOSTER, media, kind_of(media), user_agent=user_agent, referer=REFERER)
        last_html = html
    if not last_html:
        raise failed[forms[0]]
    raise no_source(HOSTER, last_html, f"no player in embed page ({len(forms)} link form(s) tried)")
