"""Vidoza: a progressive mp4 named in the player's `sourcesCode: [{ src: "...", type: "video/mp4" }]`.

Older pages put the same URL in a `<video><source src=...>` element; that is the fallback.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from aniworldd.providers.http import HttpClient

from ._common import check_embed_url, fetch_text, kind_of, media_source, no_source, script_texts, soup_of
from .base import MediaSource

HOSTER = "Vidoza"

_SOURCES_RE = re.compile(r"sourcesCode\s*:\s*\[(?P<body>.*?)\]", re.DOTALL)
_SRC_RE = re.compile(r"""\bsrc\s*:\s*(?P<q>["'])(?P<url>[^"']+)(?P=q)""")


def extract(html: str) -> str | None:
    for script in script_texts(html):
        for block in _SOURCES_RE.finditer(script):
            m = _SRC_RE.search(block.group("body"))
            if m:
                return m.group("url")
    tag = soup_of(html).select_one("video source[src]")
    return str(tag["src"]) if tag else None


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    html, page_url = await fetch_text(client, HOSTER, embed_url, user_agent=user_agent)
    src = extract(html)
    if not src:
        raise no_source(HOSTER, html)
    url = urljoin(page_url, src)
    return media_source(HOSTER, url, kind_of(url), user_agent=user_agent, referer=page_url)
