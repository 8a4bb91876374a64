"""Vidara: an embed page without media; the player asks `POST {origin}/api/stream` for the HLS URL.

The page (`https://vidara.to/e/<code>`, also `vidara.so`) is a script shell.  Its player sends
`{"filecode": "<code>", "device": "web"}` to `/api/stream` at the embed page's origin with `Origin:` that
origin and `Referer:` the embed URL, and gets `{"streaming_url": "<HLS master>"}`; requests without both
headers (or naming another site) are refused with 403, so they are always sent.  The page itself is
loaded first, as the player and the maintained peer scraper do (it may redirect to another Vidara domain
and sets cookies).  The media host is given the embed origin as Referer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ._common import check_embed_url, fetch_text, is_http_url, media_source, origin_of, post_json
from .base import HosterError, MediaSource

if TYPE_CHECKING:
    from aniworldd.providers.http import HttpClient

HOSTER = "Vidara"

#: The file code is the last path segment, letters and digits only (an `.html` suffix is tolerated).
_CODE_RE = re.compile(r"^(?P<code>[A-Za-z0-9]+)(?:\.html?)?$")


def file_code(url: str) -> str | None:
    segments = [s for s in urlsplit(url).path.split("/") if s]
    m = _CODE_RE.match(segments[-1]) if segments else None
    return m.group("code") if m else None


def streaming_url(answer: Any) -> str:
    """The HLS URL from the API answer; ValueError with the API's own message when there is none."""
    if not isinstance(answer, dict):
        raise ValueError("stream API answer is not a JSON object")
    url = answer.get("streaming_url")
    if isinstance(url, str) and url.strip():
        return url.strip()
    message = answer.get("error") or answer.get("message")
    raise ValueError(f"no streaming_url in stream API answer{f' ({message})' if message else ''}")


def kind_of_stream(url: str) -> str:
    """The API names an HLS playlist; only an explicit `.mp4` path is treated as a progressive file."""
    return "mp4" if urlsplit(url).path.lower().endswith(".mp4") else "hls"


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    _html, page_url = await fetch_text(client, HOSTER, embed_url, user_agent=user_agent)
    code = file_code(embed_url) or file_code(page_url)
    if code is None:
        raise HosterError(HOSTER, "no file code in embed URL")
    origin = origin_of(page_url)
    answer = await post_json(
        client,
        HOSTER,
        f"{origin}/api/stream",
        {"filecode": code, "device": "web"},
        user_agent=user_agent,
        referer=page_url,
        headers={"Origin": origin},
    )
    try:
        url = urljoin(page_url, streaming_url(answer))
    except ValueError as exc:
        raise HosterError(HOSTER, str(exc)) from exc
    if not is_http_url(url):
        raise HosterError(HOSTER, "streaming_url is not http(s)")
    return media_source(HOSTER, url, kind_of_stream(url), user_agent=user_agent, referer=f"{origin}/")
