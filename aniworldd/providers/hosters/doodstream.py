"""Doodstream: the page asks `/pass_md5/<hash>/<token>` for a CDN prefix and appends a random tail.

The pass_md5 path is relative to the hoster host (resolved against the embed URL) and is only answered
with a Referer from the embed page.  The media URL is what the page's `makePlay()` builds:
prefix + 10 random [A-Za-z0-9] + `?token=<token>&expiry=<now in ms>`; it has no file extension.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from urllib.parse import urljoin

import aiohttp

from ._common import check_embed_url, fetch_text, media_source, no_source, script_texts
from .base import HosterError, MediaSource

HOSTER = "Doodstream"

_PASS_MD5_RE = re.compile(r"""(?P<q>["'])(?P<path>/pass_md5/[^"']+)(?P=q)""")
_TOKEN_RE = re.compile(r"""[?&]token=(?P<token>[A-Za-z0-9_-]+)""")
_ALPHABET = string.ascii_letters + string.digits


def extract(html: str) -> tuple[str, str] | None:
    """(pass_md5 path, token) from the embed page."""
    for script in script_texts(html):
        m = _PASS_MD5_RE.search(script)
        if not m:
            continue
        path = m.group("path")
        t = _TOKEN_RE.search(script)
        token = t.group("token") if t else path.rstrip("/").rsplit("/", 1)[-1]
        return path, token
    return None


def final_url(prefix: str, token: str) -> str:
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{prefix}{tail}?token={token}&expiry={int(time.time() * 1000)}"


async def resolve(
    session: aiohttp.ClientSession, embed_url: str, user_agent: str | None = None
) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    html, page_url = await fetch_text(session, HOSTER, embed_url, user_agent=user_agent)
    found = extract(html)
    if found is None:
        raise no_source(HOSTER, html)
    path, token = found
    body, _ = await fetch_text(
        session, HOSTER, urljoin(page_url, path), user_agent=user_agent, referer=page_url
    )
    prefix = body.strip()
    if not prefix.startswith(("http://", "https://")):
        # The real site answers "RELOAD" when the hash expired or the Referer was refused.
        raise HosterError(HOSTER, f"pass_md5 gave no media prefix ({prefix[:40]!r})")
    return media_source(HOSTER, final_url(prefix, token), "mp4", user_agent=user_agent, referer=page_url)
