"""VOE: a first page that redirects by script, then a player page with an obfuscated source.

First page: VOE rotates its domains, so the player page is found as the page's quoted absolute
`https://<host>/e/<code>` link (any statement, optional whitespace inside the quotes, as the maintained
peer scraper matches it), else the target of `window.location.href = '...'`.
Two player-page forms are in use and both are handled:
* current: `<script type="application/json">["<encoded>"]</script>` (or a bare JSON string), decoded by
  ROT13 -> strip junk tokens -> base64 -> shift -3 -> reverse -> base64 -> JSON object;
  the object has the HLS master under `source` and, often, a progressive mp4 under `direct_access_url`.
  The junk tokens are listed in the player's script; the list is read from an inline script or, when
  the payload does not decode with the known list, from the page's loader/player script file.
* legacy: `'hls': '<base64 of the m3u8 URL>'` in a `var sources = {...}` block.
The mp4 is preferred when offered: a single file can be resumed with HTTP ranges, a playlist cannot.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
from urllib.parse import urljoin, urlsplit

from aniworldd.providers.http import HttpClient

from ._common import check_embed_url, fetch_text, media_source, no_source, script_texts, soup_of
from .base import HosterError, MediaSource

HOSTER = "VOE"

JUNK_TOKENS = ("@$", "^^", "~@", "%?", "*~", "!!", "#&")

#: The peer scraper's link pattern, also tolerating whitespace before the closing quote.
_LINK_RE = re.compile(r"""['"]\s*(https?://[^'"<>\s]+/e/[^'"<>\s]+)\s*['"]""")
_REDIRECT_RE = re.compile(r"""window\.location\.href\s*=\s*(?P<q>["'])(?P<url>[^"']+)(?P=q)""")
#: A JS array of at least three short quoted punctuation strings: the player's junk-token list.
_TOKEN_LIST_RE = re.compile(
    r"""\[\s*(?:(?P<q>["'])[^"'\w\s\\]{1,4}(?P=q)\s*,\s*){2,}["'][^"'\w\s\\]{1,4}["']\s*\]"""
)
_TOKEN_ITEM_RE = re.compile(r"""(?P<q>["'])(?P<t>[^"'\w\s\\]{1,4})(?P=q)""")
_SCRIPT_NAME_RE = re.compile(r"(?:loader|player)[^/]*\.js$", re.IGNORECASE)
#: At most this many script files are fetched for the token list.
MAX_SCRIPT_FETCHES = 2
_LEGACY_HLS_RE = re.compile(r"""(?P<q>["'])hls(?P=q)\s*:\s*["'](?P<b64>[A-Za-z0-9+/=]+)["']""")


def decode_json_payload(encoded: str, junk_tokens: tuple[str, ...] = JUNK_TOKENS) -> dict:
    """Undo the current VOE obfuscation (see module docstring); raises ValueError on garbage."""
    text = codecs.decode(encoded, "rot13")
    for token in sorted(junk_tokens, key=len, reverse=True):
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


def junk_tokens_in(script: str) -> tuple[str, ...] | None:
    """The junk-token list written in a player script (`["@$", "^^", ...]`), if there is one."""
    m = _TOKEN_LIST_RE.search(script)
    if m is None:
        return None
    return tuple(item.group("t") for item in _TOKEN_ITEM_RE.finditer(m.group(0)))


def inline_junk_tokens(html: str) -> tuple[str, ...] | None:
    for script in script_texts(html):
        tokens = junk_tokens_in(script)
        if tokens:
            return tokens
    return None


def player_scripts(html: str, page_url: str) -> list[str]:
    """URLs of the page's own loader/player script files (same host only), where the token list lives."""
    host = urlsplit(page_url).netloc
    urls: list[str] = []
    for tag in soup_of(html).find_all("script", src=True):
        url = urljoin(page_url, str(tag["src"]))
        if urlsplit(url).netloc == host and _SCRIPT_NAME_RE.search(urlsplit(url).path) and url not in urls:
            urls.append(url)
    return urls[:MAX_SCRIPT_FETCHES]


def extract(
    html: str, page_url: str, token_lists: tuple[tuple[str, ...], ...] = (JUNK_TOKENS,)
) -> tuple[str, str] | None:
    """(media URL, kind) from a VOE player page, or None when the page has neither form."""
    for encoded in _json_payloads(html):
        for tokens in token_lists:
            try:
                obj = decode_json_payload(encoded, tokens)
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


def find_redirect(html: str, page_url: str = "") -> str | None:
    """The player page a first VOE page leads to: a quoted `https://host/e/<code>` link, else the
    script's `window.location.href` target.  The page's own URL is never taken as its target."""
    here = page_url.strip()
    for m in _LINK_RE.finditer(html):
        url = m.group(1).strip()
        if url != here:
            return url
    for script in script_texts(html):
        m = _REDIRECT_RE.search(script)
        if m and urljoin(here, m.group("url")) != here:
            return m.group("url")
    return None


async def _extract_with_scripts(
    client: HttpClient, html: str, page_url: str, user_agent: str | None
) -> tuple[str, str] | None:
    """extract(), reading the junk tokens from the page (inline, then script files) when it matters."""
    inline = inline_junk_tokens(html)
    lists = ((inline,) if inline else ()) + (JUNK_TOKENS,)
    found = extract(html, page_url, lists)
    if found is not None or not _json_payloads(html):
        return found
    for url in player_scripts(html, page_url):
        try:
            script, _ = await fetch_text(client, HOSTER, url, user_agent=user_agent, referer=page_url)
        except HosterError:
            continue
        tokens = junk_tokens_in(script)
        if tokens and tokens not in lists:
            found = extract(html, page_url, (tokens,))
            if found is not None:
                return found
    return None


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    html, page_url = await fetch_text(client, HOSTER, embed_url, user_agent=user_agent)
    found = await _extract_with_scripts(client, html, page_url, user_agent)
    if found is None:
        target = find_redirect(html, page_url)
        if target is None:
            raise no_source(HOSTER, html, "no redirect and no media source in embed page")
        html, page_url = await fetch_text(
            client, HOSTER, urljoin(page_url, target), user_agent=user_agent, referer=page_url
        )
        found = await _extract_with_scripts(client, html, page_url, user_agent)
        if found is None:
            raise no_source(HOSTER, html, "no decodable media source in player page")
    url, kind = found
    if not url.startswith(("http://", "https://")):
        raise HosterError(HOSTER, "decoded media URL is not http(s)")
    return media_source(HOSTER, url, kind, user_agent=user_agent, referer=page_url)
