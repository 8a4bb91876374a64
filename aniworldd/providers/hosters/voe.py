"""VOE: a first page that redirects by script, then a player page with an obfuscated source.

Two player-page forms are in use and both are handled:
* current: `<script type="application/json">["<encoded>"]</script>` (or a bare JSON string), decoded by
  ROT13 -> strip junk tokens -> base64 -> shift -3 -> reverse -> base64 -> JSON object;
  the object has the HLS master under `source` and, often, a progressive mp4 under `direct_access_url`.
* legacy: `'hls': '<base64 of the m3u8 URL>'` in a `var sources = {...}` block.
The mp4 is preferred when offered: a single file can be resumed with HTTP ranges, a playlist cannot.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
from urllib.parse import urljoin

import aiohttp

from ._common import check_embed_url, fetch_text, media_source, no_source, script_texts, soup_of
from .base import HosterError, MediaSource

HOSTER = "VOE"

JUNK_TOKENS = ("@$", "^^", "~@", "%?", "*~", "!!", "#&")

_REDIRECT_RE = re.compile(r"""window\.location\.href\s*=\s*(?P<q>["'])(?P<url>[^"']+)(?P=q)""")
_LEGACY_HLS_RE = re.compile(r"""(?P<q>["'])hls(?P=q)\s*:\s*["'](?P<b64>[A-Za-z0-9+/=]+)["']""")


def decode_json_payload(encoded: str) -> dict:
    """Undo the current VOE obfuscation (see module docstring); raises ValueError on garbage."""
    text = codecs.decode(encoded, "rot13")
    for token in JUNK_TOKENS:
        text = text.replace(token, "_")
    text = text.replace("_", "")
    try:
        shifted = base64.b64decode(text, validate=True).decode("latin-1")
        inner = "".join(chr(ord(c) - 3) for c in shifted)[::-1]
        obj = json.loads(base64.b64decode(inner, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"undecodable VOE payload: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError("VOE payload is not a JSON object")
    return obj


def _json_payloads(html: str) -> list[str]:
    payloads: list[str] = []
    for tag in soup_of(html).find_all("script", attrs={"type": "application/json"}):
        try:
            value = json.loads(tag.string or tag.get_text())
        except ValueError:
            continue
        if isinstance(value, list) and value and isinstance(value[0], str):
            payloads.append(value[0])
        elif isinstance(value, str):
            payloads.append(value)
    return payloads


def extract(html: str, page_url: str) -> tuple[str, str] | None:
    """(media URL, kind) from a VOE player page, or None when the page has neither form."""
    for encoded in _json_payloads(html):
        try:
            obj = decode_json_payload(encoded)
        except ValueError:
            continue
        mp4 = obj.get("direct_access_url")
        if isinstance(mp4, str) and mp4:
            return urljoin(page_url, mp4), "mp4"
        hls = obj.get("source")
        if isinstance(hls, str) and hls:
            return urljoin(page_url, hls), "hls"
    for script in script_texts(html):
        m = _LEGACY_HLS_RE.search(script)
        if not m:
            continue
        try:
            url = base64.b64decode(m.group("b64"), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        return urljoin(page_url, url), "hls"
    return None


def find_redirect(html: str) -> str | None:
    for script in script_texts(html):
        m = _REDIRECT_RE.search(script)
        if m:
            return m.group("url")
    return None


async def resolve(
    session: aiohttp.ClientSession, embed_url: str, user_agent: str | None = None
) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    html, page_url = await fetch_text(session, HOSTER, embed_url, user_agent=user_agent)
    found = extract(html, page_url)
    if found is None:
        target = find_redirect(html)
        if target is None:
            raise no_source(HOSTER, html, "no redirect and no media source in embed page")
        html, page_url = await fetch_text(
            session, HOSTER, urljoin(page_url, target), user_agent=user_agent, referer=page_url
        )
        found = extract(html, page_url)
        if found is None:
            raise no_source(HOSTER, html, "no decodable media source in player page")
    url, kind = found
    if not url.startswith(("http://", "https://")):
        raise HosterError(HOSTER, "decoded media URL is not http(s)")
    return media_source(HOSTER, url, kind, user_agent=user_agent, referer=page_url)
