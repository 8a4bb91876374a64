"""Streamtape: the `get_video` URL is assembled by a script; the hidden divs hold decoys.

The page writes e.g. `document.getElementById('robotlink').innerHTML = '<prefix>/get_vid' +
('xcdeo?id=..&token=..').substring(3);`.  The hidden `#robotlink`/`#ideoolink` elements already contain
URLs, but with a wrong token, so they are never read: the script expression is evaluated instead
(string literals, `+` and `.substring()`, which is all the obfuscation uses).  The result is
protocol-relative on the real site and is resolved against the embed URL; it answers 302 to the mp4,
which the downloader follows.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from aniworldd.providers.http import HttpClient

from ._common import check_embed_url, fetch_text, media_source, no_source, script_texts
from .base import HosterError, MediaSource

HOSTER = "Streamtape"

_ASSIGN_RE = re.compile(
    r"""getElementById\(\s*(?P<q>["'])(?P<id>[\w-]+)(?P=q)\s*\)\.innerHTML\s*=\s*(?P<expr>[^;\n]+)"""
)
_TERM_RE = re.compile(
    r"""^\(?\s*(?P<q>["'])(?P<s>.*?)(?P=q)\s*\)?(?P<ops>(?:\s*\.substring\(\s*\d+\s*(?:,\s*\d+\s*)?\))*)$""",
    re.DOTALL,
)
_SUBSTRING_RE = re.compile(r"\.substring\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")
#: Elements the real page fills with the working link, best first (yt-dlp reads `robotlink` too).
_TARGETS = ("robotlink", "ideoolink", "botlink", "norobotlink")


def _split_plus(expr: str) -> list[str]:
    """Split a JS expression on `+` outside string literals."""
    parts, buf, quote = [], [], None
    for ch in expr:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == "+":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise ValueError("unterminated string literal")
    parts.append("".join(buf))
    return parts


def _js_substring(s: str, start: int, end: int | None) -> str:
    end = len(s) if end is None else end
    start, end = min(max(start, 0), len(s)), min(max(end, 0), len(s))
    if start > end:
        start, end = end, start
    return s[start:end]


def evaluate(expr: str) -> str:
    """Evaluate `'a' + ('bcd').substring(1) + ...`; raises ValueError on anything else."""
    out = []
    for part in _split_plus(expr.strip()):
        m = _TERM_RE.match(part.strip())
        if not m:
            raise ValueError(f"unsupported expression term {part.strip()[:40]!r}")
        value = m.group("s")
        for op in _SUBSTRING_RE.finditer(m.group("ops")):
            value = _js_substring(value, int(op.group(1)), int(op.group(2)) if op.group(2) else None)
        out.append(value)
    return "".join(out)


def extract(html: str) -> str | None:
    built: dict[str, str] = {}
    for script in script_texts(html):
        for m in _ASSIGN_RE.finditer(script):
            try:
                value = evaluate(m.group("expr"))
            except ValueError:
                continue
            if "get_video" in value:
                built.setdefault(m.group("id"), value)
    for target in _TARGETS:
        if target in built:
            return built[target]
    return next(iter(built.values()), None)


async def resolve(client: HttpClient, embed_url: str, user_agent: str | None = None) -> MediaSource:
    check_embed_url(HOSTER, embed_url)
    html, page_url = await fetch_text(client, HOSTER, embed_url, user_agent=user_agent)
    link = extract(html)
    if not link:
        raise no_source(HOSTER, html, "no get_video link in embed page script")
    url = urljoin(page_url, link.strip())
    if not url.startswith(("http://", "https://")):
        raise HosterError(HOSTER, "get_video link is not http(s)")
    return media_source(HOSTER, url, "mp4", user_agent=user_agent, referer=page_url)
