"""Vidmoly: a jwplayer page with `sources: [{file:"<master.m3u8>"}]`.

The media host refuses requests without a Referer from vidmoly, so the source carries the embed URL
as Referer and the downloader must send it for the playlist and every segment.
"""

from __future__ import annotations

import aiohttp

from ._common import resolve_jwplayer
from .base import MediaSource

HOSTER = "Vidmoly"


async def resolve(
    session: aiohttp.ClientSession, embed_url: str, user_agent: str | None = None
) -> MediaSource:
    return await resolve_jwplayer(session, HOSTER, embed_url, user_agent)
