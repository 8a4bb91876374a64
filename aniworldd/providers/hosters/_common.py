"""Helpers shared by the hoster resolvers: fetching embed pages and turning failures into HosterError.

Every resolver talks to the hoster the same way (one GET with a browser User-Agent, optional Referer),
and every failure must come out as a HosterError with a reason a user can read in the queue, so that
logic lives here once instead of eight slightly different times.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup

from aniworldd.providers.base import ProviderError
from aniworldd.providers.http import Page, challenge_reason

from .base import HosterError, MediaSource

if TYPE_CHECKING:
    from aniworldd.providers.http import HttpClient

#: Embed pages are a few KB; refuse to buffer anything absurd a broken hoster might send.
MAX_PAGE_BYTES = 5 * 1024 * 1024

#: Phrases hosters put on pages of removed files. Only consulted once extraction failed, so a
#: phrase that happens to sit in a working page's JavaScript cannot turn it into a failure.
_DEAD_RE = re.compile(
    r"file\s+(?:was\s+|has\s+been\s+)?(?:not\s+found|deleted|removed)"
    r"|video\s+(?:was\s+|has\s+been\s+)?(?:not\s+found|deleted|removed)"
    r"|(?:has|have)\s+been\s+(?:deleted|removed)"
    r"|no\s+longer\s+available",
    re.IGNORECASE,
)

_JW_SOURCES_RE = re.compile(r"sources\s*:\s*\[(?P<body>.*?)\]", re.DOTALL)
_JW_FILE_RE = re.compile(r"""\bfile\s*:\s*(?P<q>["'])(?P<url>[^"']+)(?P=q)""")


def check_embed_url(hoster: str, embed_url: str) -> None:
    parts = urlsplit(embed_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HosterError(hoster, f"invalid embed URL {embed_url!r}")


def request_headers(user_agent: str | None, referer: str | None = None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if user_agent:
        headers["User-Agent"] = user_agent
    if referer:
        headers["Referer"] = referer
    return headers


def _headers(
    user_agent: str | None, referer: str | None, headers: Mapping[str, str] | None
) -> dict[str, str]:
    merged = request_headers(user_agent, referer)
    merged.update(headers or {})
    return merged


async def _send(
    client: HttpClient,
    hoster: str,
    method: str,
    url: str,
    headers: dict[str, str],
    json_body: Any = None,
) -> Page:
    """One request through the provider's client (browser TLS, DoH, proxy); failures as HosterError."""
    try:
        page = await client.fetch(method, url, headers=headers, json_body=json_body, max_bytes=MAX_PAGE_BYTES)
    except ProviderError as exc:
        raise HosterError(hoster, f"request failed: {exc}") from None
    if page.status in (404, 410):
        raise HosterError(hoster, f"file not found (HTTP {page.status})")
    if page.status >= 400:
        wall = challenge_reason(page.status, page.headers, page.text)
        if wall:
            raise HosterError(hoster, f"{wall} on {urlsplit(url).netloc} (HTTP {page.status})")
        raise HosterError(hoster, f"hoster answered HTTP {page.status} for {urlsplit(url).path}")
    return page


async def fetch_text(
    client: HttpClient,
    hoster: str,
    url: str,
    *,
    user_agent: str | None = None,
    referer: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """GET `url` and return (body, final URL after redirects); any failure becomes a HosterError."""
    page = await _send(client, hoster, "GET", url, _headers(user_agent, referer, headers))
    return page.text, page.url


#: What a player's XHR to its hoster's API sends (fetch() from the embed page).
_XHR_HEADERS = {
    "Accept": "application/json, text/plain, */*",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
}


def _decode_json(hoster: str, page: Page) -> Any:
    try:
        return json.loads(page.text)
    except ValueError:
        raise HosterError(
            hoster, f"expected JSON from {urlsplit(page.url).path}, got {page.text[:60]!r}"
        ) from None


async def fetch_json(
    client: HttpClient,
    hoster: str,
    url: str,
    *,
    user_agent: str | None = None,
    referer: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """GET a hoster API answer as JSON (an XHR from the player page)."""
    sent = {**_XHR_HEADERS, **_headers(user_agent, referer, headers)}
    return _decode_json(hoster, await _send(client, hoster, "GET", url, sent))


async def post_json(
    client: HttpClient,
    hoster: str,
    url: str,
    payload: Any,
    *,
    user_agent: str | None = None,
    referer: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """POST JSON to a hoster API (as its player does) and decode the JSON answer."""
    sent = {**_XHR_HEADERS, "Content-Type": "application/json", **_headers(user_agent, referer, headers)}
    return _decode_json(hoster, await _send(client, hoster, "POST", url, sent, json_body=payload))


def soup_of(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def script_texts(html: str) -> list[str]:
    """Text of every <script> element (inline ones only carry text)."""
    return [s.string or s.get_text() for s in soup_of(html).find_all("script")]


def no_source(hoster: str, html: str, what: str = "no media source in embed page") -> HosterError:
    """The error for a page we could not read a source from: 'file deleted' when the page says so."""
    text = soup_of(html).get_text(" ", strip=True)
    if _DEAD_RE.search(text):
        return HosterError(hoster, "file not found or deleted")
    return HosterError(hoster, what)


def jwplayer_sources(js: str) -> list[str]:
    """`file:` URLs inside a jwplayer `sources: [...]` array (not tracks, images or thumbnails)."""
    urls: list[str] = []
    for block in _JW_SOURCES_RE.finditer(js):
        urls.extend(m.group("url") for m in _JW_FILE_RE.finditer(block.group("body")))
    return urls


def kind_of(url: str) -> str:
    """`hls` for playlists, `mp4` for progressive files (also extension-less CDN URLs)."""
    return "hls" if urlsplit(url).path.lower().endswith(".m3u8") else "mp4"


def media_source(
    hoster: str, url: str, kind: str, *, user_agent: str | None, referer: str | None
) -> MediaSource:
    return MediaSource(url=url, kind=kind, hoster=hoster, headers=request_headers(user_agent, referer))


async def resolve_jwplayer(
    client: HttpClient, hoster: str, embed_url: str, user_agent: str | None
) -> MediaSource:
    """The whole job for hosters whose page has a plain jwplayer `sources: [{file: ...}]` setup."""
    check_embed_url(hoster, embed_url)
    html, page_url = await fetch_text(client, hoster, embed_url, user_agent=user_agent)
    for script in script_texts(html):
        files = jwplayer_sources(script)
        if files:
            url = urljoin(page_url, files[0])
            return media_source(hoster, url, kind_of(url), user_agent=user_agent, referer=page_url)
    raise no_source(hoster, html)


# -- pure URL helpers for the resolvers (no network; kept apart from the fetching code above) ----------


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL: hoster APIs live at the embed page's origin, not under its path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
