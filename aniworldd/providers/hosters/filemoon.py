"""Filemoon (legacy page): the jwplayer setup is hidden in a Dean Edwards `eval(function(p,a,c,k,e,d)...)`.

Unpacking uses yt-dlp's `decode_packed_codes` (a plain string function, no network); only the
JavaScript string escapes it leaves in place are undone here.  The unpacked code holds
`sources:[{file:"<master.m3u8>"}]`.  (The newer iframe / AES-encrypted `/api/videos` pages are not
supported and end as "no packed player script".)
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import aiohttp
from yt_dlp.utils import decode_packed_codes

from ._common import (
    check_embed_url,
    fetch_text,
    jwplayer_sources,
    kind_of,
    media_source,
    no_source,
    script_texts,
)
from .base import MediaSource

HOSTER = "Filemoon"

_PACKED_MARK = re.compile(r"eval\(\s*function\(p,a,c,k,e,[dr]\)")
_JS_ESCAPE_RE = re.compile(r"\\(['\"\\])")


def unpack(script: str) -> str:
    """Unpack a p,a,c,k,e,d script; raises ValueError when it is not one."""
    if not _PACKED_MARK.search(script):
        raise ValueError("not a packed script")
    try:
        code = decode_packed_codes(script)
    except (AttributeError, IndexError, ValueError) as exc:  # regex did not match / broken word table
        raise ValueError(f"cannot unpack: {exc}") from exc
    return _JS_ESCAPE_RE.sub(r"\1", code)


async def resolve(
    session: aiohttp.ClientSession, embed_url: str, user_agent: str | None = None
) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    html, page_url = await fetch_text(session, HOSTER, embed_url, user_agent=user_agent)
    saw_packed = False
    for script in script_texts(html):
        if not _PACKED_MARK.search(script):
            continue
        saw_packed = True
        try:
            code = unpack(script)
        except ValueError:
            continue
        files = jwplayer_sources(code)
        if files:
            url = urljoin(page_url, files[0])
            return media_source(HOSTER, url, kind_of(url), user_agent=user_agent, referer=page_url)
    raise no_source(
        HOSTER, html, "packed player script has no source" if saw_packed else "no packed player script"
    )
