"""Luluvdo: a jwplayer page with `sources: [{file:"<master.m3u8>"}]`.

The same player page is served for `/embed/<code>` and `/dl?op=embed&file_code=<code>`.
"""

from __future__ import annotations

from aniworldd.providers.http import HttpClient

from ._common import resolve_jwplayer
from .base import MediaSource

HOSTER = "Luluvdo"


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    return await resolve_jwplayer(client, HOSTER, embed_url, user_agent)
