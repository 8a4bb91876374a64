"""Hoster resolvers: embed page URL -> MediaSource, one module per hoster.

Everything is resolved here with our own HTTP requests; embed URLs are never handed to yt-dlp's
site extractors (yt-dlp only ever sees the final media URL plus the headers in MediaSource).
Hosters are chosen by the name shown on the episode page (`<h4>VOE</h4>`), case-insensitively; any name
containing "dood" is Doodstream (the sites label its mirrors "DoodStream", "Dood", ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aniworldd.providers.http import HttpClient

from . import doodstream, filemoon, luluvdo, speedfiles, streamtape, vidara, vidmoly, vidoza, voe
from .base import HosterError, MediaSource

Resolver = Callable[[HttpClient, str, "str | None"], Awaitable[MediaSource]]

#: lowercase hoster name -> resolver module; the order is the default preference order.
HOSTERS = {
    "voe": voe,
    "vidoza": vidoza,
    "vidara": vidara,
    "vidmoly": vidmoly,
    "doodstream": doodstream,
    "speedfiles": speedfiles,
    "luluvdo": luluvdo,
    "streamtape": streamtape,
    "filemoon": filemoon,
}

RESOLVERS: dict[str, Resolver] = {name: module.resolve for name, module in HOSTERS.items()}


def normalize(hoster_name: str) -> str:
    name = hoster_name.strip().lower()
    return "doodstream" if "dood" in name else name


def is_supported(hoster_name: str) -> bool:
    return normalize(hoster_name) in RESOLVERS


async def resolve_media(
    client: HttpClient, hoster_name: str, embed_url: str, user_agent: str | None = None
) -> MediaSource:
    """Turn an embed URL of the named hoster into a MediaSource; HosterError on any failure."""
    resolver = RESOLVERS.get(normalize(hoster_name))
    if resolver is None:
        raise HosterError(hoster_name, "unsupported hoster")
    return await resolver(client, embed_url, user_agent)


__all__ = ["HOSTERS", "RESOLVERS", "HosterError", "MediaSource", "is_supported", "normalize", "resolve_media"]
