"""Which proxy a request goes through, and how a proxy URL is shown without its password.

`provider.proxy` wins; without it the usual environment variables are honoured (HTTPS_PROXY /
ALL_PROXY for https targets, http_proxy / ALL_PROXY for http, NO_PROXY exceptions), the same rules
curl and yt-dlp follow, so a proxy set for the whole container just works.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def validate_proxy(value: str) -> str:
    """The proxy URL if it is usable; ValueError with the reason otherwise."""
    parts = urlsplit(value.strip())
    if parts.scheme not in PROXY_SCHEMES:
        raise ValueError(f"expected a proxy URL starting with {', '.join(s + '://' for s in PROXY_SCHEMES)}")
    if not parts.hostname:
        raise ValueError("proxy URL has no host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"bad proxy port: {exc}") from None
    if any(c in value for c in "\r\n\t "):
        raise ValueError("proxy URL must not contain whitespace")
    return value.strip()


_CREDENTIALS_RE = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)


def scrub_credentials(text: str) -> str:
    """`scheme://user:password@` anywhere in a text (an error message naming a proxy) -> `user:***@`."""
    return _CREDENTIALS_RE.sub(r"\1***@", text)


def redact(url: str | None) -> str | None:
    """The URL with any password replaced by `***` (user names stay: they help the user check)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def _no_proxy(host: str, environ: Mapping[str, str]) -> bool:
    rule = _env(environ, "NO_PROXY", "no_proxy")
    if not rule:
        return False
    host = host.lower().strip("[]")
    for entry in (e.strip().lower() for e in rule.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
            continue
        except ValueError:
            pass
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def proxy_for(url: str, configured: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy to use for `url`, or None for a direct connection."""
    if configured:
        return configured
    environ = os.environ if environ is None else environ
    parts = urlsplit(url)
    if _no_proxy(parts.hostname or "", environ):
        return None
    if parts.scheme == "https":
        return _env(environ, "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
    # Upper-case HTTP_PROXY is ignored on purpose (httpoxy: a CGI header can set it).
    return _env(environ, "http_proxy", "ALL_PROXY", "all_proxy")


def resolves_remotely(proxy: str | None) -> bool:
    """True when the proxy, not we, resolves target names (HTTP CONNECT and socks5h)."""
    return bool(proxy) and urlsplit(proxy).scheme in ("http", "https", "socks5h")
