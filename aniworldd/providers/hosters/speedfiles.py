"""SpeedFiles: the mp4 URL sits in a layered-encoded `var _0x... = "<blob>";` (see `decode_payload`).

When the hoster is down it serves a 200 page with `<span class="inline-block">Web server is down</span>`;
that is reported as such rather than as "no source".
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urljoin

from aniworldd.providers.http import HttpClient

from ._common import check_embed_url, fetch_text, kind_of, media_source, no_source, script_texts, soup_of
from .base import HosterError, MediaSource

HOSTER = "SpeedFiles"

#: The variable name is obfuscator output and may change; any long base64 string assignment is tried.
_VAR_RE = re.compile(r"""var\s+_0x\w+\s*=\s*(?P<q>["'])(?P<blob>[A-Za-z0-9+/=]{16,})(?P=q)""")


def decode_payload(encoded: str) -> str:
    """base64 -> swapcase+reverse -> base64 -> reverse -> hex -> shift -3 -> swapcase+reverse -> base64."""
    try:
        s = base64.b64decode(encoded, validate=True).decode("ascii")
        s = s.swapcase()[::-1]
        s = base64.b64decode(s, validate=True).decode("ascii")[::-1]
        s = bytes.fromhex(s).decode("latin-1")
        s = "".join(chr(ord(c) - 3) for c in s)
        return base64.b64decode(s.swapcase()[::-1], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"undecodable SpeedFiles payload: {exc}") from exc


def is_down(html: str) -> bool:
    return any(
        "web server is down" in span.get_text(" ", strip=True).lower()
        for span in soup_of(html).find_all("span")
    )


def extract(html: str) -> str | None:
    for script in script_texts(html):
        for m in _VAR_RE.finditer(script):
            try:
                url = decode_payload(m.group("blob"))
            except ValueError:
                continue
            if url.startswith(("http://", "https://", "/")):
                return url
    return None


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    html, page_url = await fetch_text(client, HOSTER, embed_url, user_agent=user_agent)
    if is_down(html):
        raise HosterError(HOSTER, "web server is down")
    src = extract(html)
    if not src:
        raise no_source(HOSTER, html)
    url = urljoin(page_url, src)
    return media_source(HOSTER, url, kind_of(url), user_agent=user_agent, referer=page_url)
