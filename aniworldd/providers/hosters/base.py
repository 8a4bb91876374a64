"""The hoster contract: an embed page in, a downloadable media source out."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class MediaSource:
    url: str
    kind: str  # "mp4" | "hls"
    hoster: str
    #: Headers the media host insists on (Referer, User-Agent); passed on to yt-dlp.
    headers: dict[str, str] = field(default_factory=dict)
    #: The media host checks the TLS handshake (Cloudflare): yt-dlp gets `--impersonate chrome`.
    impersonate: bool = False


class HosterError(Exception):
    """A hoster could not give a source (dead link, 4xx, no source in page, server down).

    The message is the human reason that ends up in the queue item's `error` field.
    """

    def __init__(self, hoster: str, reason: str) -> None:
        super().__init__(f"{hoster}: {reason}")
        self.hoster = hoster
        self.reason = reason
