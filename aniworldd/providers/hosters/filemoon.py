"""Filemoon: the "Byse" player API first, the classic packed-script page as fallback.

Today's Filemoon links (`filemoon.sx/e/<code>`, `filemoon.to/e/<code>`, the `/d/<code>` download form and
Byse front-end domains such as `bysezejataos.com/d/<code>`) mostly open a single-page player whose HTML
holds no media.  The player reads `GET {origin}/api/videos/<code>` (origin of the embed URL, code = the
segment after `/e/` or `/d/`); its `playback` member is AES-256-GCM encrypted (see `decrypt_playback`),
and the plaintext lists `sources` with a `height` each - the tallest is taken.  That API is asked first,
as the maintained peer scraper does; when it has nothing (older files, other page forms) the embed page is
read the classic way: the jwplayer setup hidden in a Dean Edwards `eval(function(p,a,c,k,e,d)...)`,
unpacked with yt-dlp's `decode_packed_codes` (a plain string function, no network).  A page without
that script may have redirected to a Byse domain or framed the player from a second domain; the API is
then asked at that origin too (at most two more requests).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from yt_dlp.utils import decode_packed_codes

from ._common import (
    check_embed_url,
    fetch_json,
    fetch_text,
    is_http_url,
    jwplayer_sources,
    kind_of,
    media_source,
    no_source,
    origin_of,
    script_texts,
    soup_of,
)
from .base import HosterError, MediaSource

if TYPE_CHECKING:
    from aniworldd.providers.http import HttpClient

HOSTER = "Filemoon"

_PACKED_MARK = re.compile(r"eval\(\s*function\(p,a,c,k,e,[dr]\)")
_JS_ESCAPE_RE = re.compile(r"\\(['\"\\])")
_CODE_RE = re.compile(r"/[de]/([a-zA-Z0-9]+)")
#: At most this many other origins (redirect target, iframes) are asked for the Byse API.
MAX_OTHER_ORIGINS = 2


# -- Byse API ---------------------------------------------------------------------------------------


def file_code(embed_url: str) -> str | None:
    """The code after `/e/` or `/d/` in the embed URL's path."""
    m = _CODE_RE.search(urlsplit(embed_url).path)
    return m.group(1) if m else None


def _b64url(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"bad base64url: {exc}") from exc


def decrypt_playback(playback: Any) -> Any:
    """Decrypt the API's `playback` object and return its JSON plaintext; ValueError when impossible.

    key = the concatenated 16-byte base64url `key_parts`; nonce = `iv`; `payload` = ciphertext followed by
    the 16-byte GCM tag (exactly what AESGCM.decrypt takes); no associated data.  `iv2`/`payload2` are a
    second encryption under the same key, used when the first pair is missing or does not verify.
    """
    if not isinstance(playback, dict):
        raise ValueError("playback is not a JSON object")
    parts = playback.get("key_parts")
    if not isinstance(parts, list):
        raise ValueError("playback has no key_parts")
    key = b"".join(p for p in (_b64url(x) for x in parts) if len(p) == 16)
    if len(key) not in (16, 24, 32):
        raise ValueError(f"playback key has {len(key)} bytes")
    cipher = AESGCM(key)
    pairs = [(playback.get(iv), playback.get(data)) for iv, data in (("iv", "payload"), ("iv2", "payload2"))]
    pairs = [(iv, data) for iv, data in pairs if iv and data]
    if not pairs:
        raise ValueError("playback has no iv/payload")
    last = "no payload"
    for iv, data in pairs:
        try:
            plain = cipher.decrypt(_b64url(iv), _b64url(data), None)
            return json.loads(plain.decode("utf-8"))
        except InvalidTag:
            last = "payload does not decrypt (GCM tag mismatch)"
        except (UnicodeDecodeError, ValueError) as exc:
            last = f"payload is not JSON ({exc.__class__.__name__})"
    raise ValueError(last)


def _height(source: dict) -> int:
    try:
        return int(str(source.get("height") or 0).rstrip("p"))
    except ValueError:
        return 0


def best_source(data: Any) -> str | None:
    """The tallest of `sources: [{url, height}]`, else a `source` or `file` string."""
    if not isinstance(data, dict):
        return None
    sources = [
        s
        for s in data.get("sources") or []
        if isinstance(s, dict) and isinstance(s.get("url") or s.get("file"), str)
    ]
    if sources:
        best = max(sources, key=_height)  # max() keeps the first of equal heights
        return best.get("url") or best.get("file")
    for name in ("source", "file"):
        if isinstance(data.get(name), str) and data[name]:
            return data[name]
    return None


def source_from_api(answer: Any) -> str:
    """Media URL from a `/api/videos/<code>` answer; ValueError with the reason otherwise."""
    if not isinstance(answer, dict) or "playback" not in answer:
        raise ValueError("API answer has no playback")
    url = best_source(decrypt_playback(answer["playback"]))
    if not url:
        raise ValueError("playback lists no source")
    return url


# -- classic packed page ----------------------------------------------------------------------------


def unpack(script: str) -> str:
    """Unpack a p,a,c,k,e,d script; raises ValueError when it is not one."""
    if not _PACKED_MARK.search(script):
        raise ValueError("not a packed script")
    try:
        code = decode_packed_codes(script)
    except (AttributeError, IndexError, ValueError) as exc:  # regex did not match / broken word table
        raise ValueError(f"cannot unpack: {exc}") from exc
    return _JS_ESCAPE_RE.sub(r"\1", code)


def player_page_url(embed_url: str) -> str:
    """The `/d/<code>` download form shows no player; its `/e/<code>` twin is the page to read."""
    parts = urlsplit(embed_url)
    path = re.sub(r"/d/([a-zA-Z0-9]+)", r"/e/\1", parts.path, count=1)
    return urlunsplit(parts._replace(path=path))


def _from_packed_page(html: str, page_url: str, user_agent: str | None) -> MediaSource | None:
    """The source from a classic page; None when there is none (the reason is `_packed_page_reason`)."""
    for script in script_texts(html):
        if not _PACKED_MARK.search(script):
            continue
        try:
            code = unpack(script)
        except ValueError:
            continue
        files = jwplayer_sources(code)
        if files:
            url = urljoin(page_url, files[0])
            return media_source(HOSTER, url, kind_of(url), user_agent=user_agent, referer=page_url)
    return None


def _packed_page_reason(html: str) -> str:
    saw_packed = any(_PACKED_MARK.search(script) for script in script_texts(html))
    what = "packed player script has no source" if saw_packed else "no packed player script"
    return no_source(HOSTER, html, what).reason


def other_player_urls(html: str, page_url: str, embed_url: str) -> list[str]:
    """Player URLs on other hosts than the embed's: where the page redirected to, and iframes with a code.

    A Filemoon link may land on a Byse front-end domain or wrap the player in an iframe from a second
    domain; the API then lives at that origin.
    """
    seen = {origin_of(embed_url)}
    urls: list[str] = []
    candidates = [page_url] + [
        urljoin(page_url, str(tag["src"])) for tag in soup_of(html).find_all("iframe", src=True)
    ]
    for url in candidates:
        if is_http_url(url) and file_code(url) and origin_of(url) not in seen:
            seen.add(origin_of(url))
            urls.append(url)
    return urls[:MAX_OTHER_ORIGINS]


async def _from_api(client: HttpClient, player_url: str, user_agent: str | None) -> MediaSource:
    """Ask `{origin}/api/videos/<code>` of a player URL; HosterError (with the reason) otherwise."""
    code = file_code(player_url)
    if code is None:
        raise HosterError(HOSTER, "no file code in the embed URL")
    api_url = f"{origin_of(player_url)}/api/videos/{code}"
    answer = await fetch_json(client, HOSTER, api_url, user_agent=user_agent, referer=player_url)
    try:
        url = urljoin(player_url, source_from_api(answer))
    except ValueError as exc:
        raise HosterError(HOSTER, str(exc)) from exc
    if not is_http_url(url):
        raise HosterError(HOSTER, "decrypted source is not http(s)")
    return media_source(HOSTER, url, kind_of(url), user_agent=user_agent, referer=player_url)


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    try:
        return await _from_api(client, embed_url, user_agent)
    except HosterError as exc:
        api_reason = exc.reason
    # An HTTP failure of the page itself (file gone, hoster down) is the reason as it is.
    html, page_url = await fetch_text(client, HOSTER, player_page_url(embed_url), user_agent=user_agent)
    found = _from_packed_page(html, page_url, user_agent)
    if found is not None:
        return found
    for player_url in other_player_urls(html, page_url, embed_url):
        try:
            return await _from_api(client, player_url, user_agent)
        except HosterError as exc:
            api_reason = f"{api_reason}; {origin_of(player_url)}: {exc.reason}"
    raise HosterError(HOSTER, f"{_packed_page_reason(html)} (Byse API: {api_reason})")
