"""One HTTP hop to a site or hoster through curl_cffi: a browser's TLS and HTTP/2 fingerprint, browser
headers, the chosen DNS (system or DoH, as pinned addresses), a proxy and an extra CA bundle.

Why curl_cffi: aniworld.to answers 403 to clients that do not look like a browser, and Cloudflare in
front of VOE and others checks the TLS ClientHello itself (GREASE values, extension order) - Python's
ssl cannot produce Chrome's.  Redirects are never followed here: the caller follows them hop by hop so
that every hop gets the same DNS, pinning and (later) address checks.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from curl_cffi import CurlError, CurlOpt
from curl_cffi.const import CurlECode
from curl_cffi.requests import AsyncSession
from curl_cffi.requests.exceptions import RequestException
from curl_cffi.requests.impersonate import DEFAULT_CHROME

from .dns import DohResolver, DohServer, SystemResolver, is_address
from .policy import AddressPolicy
from .proxy import proxy_for, redact, resolves_remotely, scrub_credentials

log = logging.getLogger(__name__)

IMPERSONATE_CHOICES = ("chrome", "off")
#: The Chrome release curl_cffi imitates for `impersonate: chrome`; the User-Agent must name the same one.
CHROME_TARGET = DEFAULT_CHROME
CHROME_MAJOR = "".join(ch for ch in CHROME_TARGET if ch.isdigit()) or "152"
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/{CHROME_MAJOR}.0.0.0 Safari/537.36"
)
#: What Chrome sends on a top-level navigation; callers override per request (API calls, iframes).
BROWSER_HEADERS = {
    "Accept": (
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"
    ),
    "Accept-Language": "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-User": "?1",
    "Upgrade-Insecure-Requests": "1",
    "Priority": "u=0, i",
}
#: Largest body read into memory (a hoster embed page is a few KB, a season page some hundred KB).
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
#: No response of any kind is buffered past this (posters are capped at 10 MB).
MAX_BODY_BYTES = 16 * 1024 * 1024

# Transport error kinds; the first four mean "this address does not answer" (try the next one).
DNS, CONNECT, TLS, TIMEOUT, PROXY, PROTOCOL, TOO_LARGE, FORBIDDEN = (
    "dns",
    "connect",
    "tls",
    "timeout",
    "proxy",
    "protocol",
    "too_large",
    "forbidden",
)
#: How long a system resolver answer is pinned when addresses are checked (it gives no TTL).
SYSTEM_DNS_TTL = 300.0
UNREACHABLE_KINDS = frozenset({DNS, CONNECT, TLS, TIMEOUT})

_CURL_KINDS = {
    CurlECode.COULDNT_RESOLVE_HOST: DNS,
    CurlECode.COULDNT_CONNECT: CONNECT,
    CurlECode.OPERATION_TIMEDOUT: TIMEOUT,
    CurlECode.SSL_CONNECT_ERROR: TLS,
    CurlECode.PEER_FAILED_VERIFICATION: TLS,
    CurlECode.SSL_CERTPROBLEM: TLS,
    CurlECode.COULDNT_RESOLVE_PROXY: PROXY,
    CurlECode.PROXY: PROXY,
    CurlECode.FILESIZE_EXCEEDED: TOO_LARGE,
}


class TransportError(Exception):
    """A request that got no HTTP answer; `kind` is one of the constants above."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def unreachable(self) -> bool:
        return self.kind in UNREACHABLE_KINDS


@dataclass(slots=True)
class RawResponse:
    status: int
    url: str
    headers: dict[str, str]
    body: bytes
    #: Cookies the server set on this response (name -> value), for FlareSolverr-style reuse.
    cookies: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        charset = "utf-8"
        ctype = self.headers.get("content-type", "")
        if "charset=" in ctype:
            charset = ctype.split("charset=", 1)[1].split(";")[0].strip().strip('"') or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class NetSettings:
    """The `provider` config keys this layer reads (plain values, so tests can build one directly)."""

    impersonate: str = "chrome"
    proxy: str | None = None
    ca_file: str | None = None
    dns: str = "system"
    doh_urls: tuple[Any, ...] = ()
    resolve: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 20.0
    user_agent: str = BROWSER_USER_AGENT

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> NetSettings:
        from .dns import DEFAULT_DOH_URLS

        return cls(
            impersonate=cfg.get("impersonate") or "chrome",
            proxy=cfg.get("proxy") or None,
            ca_file=cfg.get("ca_file") or None,
            dns=cfg.get("dns") or "system",
            doh_urls=tuple(cfg.get("doh_urls") or DEFAULT_DOH_URLS),
            resolve=dict(cfg.get("resolve") or {}),
            timeout=float(cfg.get("timeout") or 20.0),
            user_agent=cfg.get("user_agent") or BROWSER_USER_AGENT,
        )

    @property
    def impersonate_target(self) -> str | None:
        return CHROME_TARGET if self.impersonate == "chrome" else None


def ca_bundle(extra: str) -> str:
    """A CA bundle file with the usual public CAs plus `extra` (a PEM file): "adds", not "replaces"."""
    import certifi

    pem = Path(certifi.where()).read_bytes() + b"\n" + Path(extra).read_bytes()
    path = Path(tempfile.gettempdir()) / f"aniworldd-ca-{hashlib.sha256(pem).hexdigest()[:16]}.pem"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.replace(path)
    return str(path)


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    """`base` overridden by `extra`, names compared case-insensitively (a caller's "referer" replaces
    "Referer" instead of sending both); a None value removes the header."""
    headers = dict(base)
    for name, value in (extra or {}).items():
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        if value is not None:
            headers[name] = value
    return headers


def _resolve_entry(host: str, port: int, address: str) -> str:
    """curl's --resolve syntax; several addresses comma-separated (curl tries them in order)."""
    parts = [f"[{a}]" if ":" in a and not a.startswith("[") else a for a in address.split(",")]
    return f"{host}:{port}:{','.join(parts)}"


class CurlTransport:
    """Requests through curl_cffi sessions; one session per pinned-address set, created lazily."""

    def __init__(self, settings: NetSettings, policy: AddressPolicy | None = None) -> None:
        self.settings = settings
        #: Address checks (no private addresses from strangers' URLs); None = no checks (tests, tools).
        self.policy = policy
        self._system_cache: dict[str, tuple[float, list[str]]] = {}
        self.system_resolver = SystemResolver()
        self.doh: DohResolver | None = None
        if settings.dns == "doh":
            self.doh = DohResolver([DohServer.parse(u) for u in settings.doh_urls], self._raw_fetch)
        self._cainfo = ca_bundle(settings.ca_file) if settings.ca_file else None
        self._sessions: dict[str, AsyncSession] = {}
        #: (host, port) -> addresses (a user pin, or a checked DNS/DoH answer): the --resolve list.
        self._pins: dict[tuple[str, int], str] = {}

    # -- sessions --------------------------------------------------------------------------------

    def _session(self, route_pin: str | None = None) -> AsyncSession:
        """The shared session, or one of its own for a route pinned to an address (rare: last resort).

        The shared session's --resolve list holds the user's pins and every DoH answer; it is updated
        in place (curl reads it when a request starts), so cookies survive new names being resolved.
        """
        key = route_pin or ""
        session = self._sessions.get(key)
        if session is None:
            options: dict[Any, Any] = {CurlOpt.RESOLVE: [route_pin.encode()] if route_pin else []}
            if self._cainfo:
                options[CurlOpt.CAINFO] = self._cainfo.encode()
            # curl aborts a body past this while it streams in; each request checks its own, lower cap.
            options[CurlOpt.MAXFILESIZE_LARGE] = MAX_BODY_BYTES
            session = AsyncSession(
                impersonate=self.settings.impersonate_target,
                trust_env=False,
                curl_options=options,
                max_clients=16,
            )
            self._sessions[key] = session
            if not route_pin:
                self._update_shared_pins()
        return session

    def _update_shared_pins(self) -> None:
        session = self._sessions.get("")
        if session is None:
            return
        entries = [_resolve_entry(h, p, a) for (h, p), a in sorted(self._pins.items())]
        session.curl_options[CurlOpt.RESOLVE] = [e.encode() for e in entries]

    async def _discard(self, session: AsyncSession) -> None:
        """Forget a broken session: the next request builds a new one (the cookies start over)."""
        for key, known in list(self._sessions.items()):
            if known is session:
                del self._sessions[key]
        try:
            await session.close()
        except Exception as exc:  # it is broken already: closing may fail too
            log.debug("closing a broken curl session: %s", exc)

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            try:
                await session.close()
            except Exception as exc:  # closing must never stop a shutdown
                log.debug("closing a curl session: %s", exc)

    # -- name resolution -------------------------------------------------------------------------

    async def _route_pin(self, url: str, pin: str | None, proxy: str | None) -> str | None:
        """Make sure the request reaches the right address: a route pin (returned: it gets a session
        of its own), or a user pin / resolved address (added to the shared session's --resolve list).
        With a policy, the addresses are checked before they are pinned."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not host:
            return None
        if is_address(host):
            self._check(host, [host])
            return None
        if pin:
            return _resolve_entry(host, port, pin)
        address = self.settings.resolve.get(host)
        if address is None:
            if resolves_remotely(proxy):
                return None  # the proxy resolves (and connects): nothing of ours to check or pin
            if self.doh is not None:
                from .dns import DnsError

                try:
                    addresses = await self.doh.resolve(host)
                except DnsError as exc:
                    raise TransportError(DNS, str(exc)) from None
            elif self.policy is not None:
                addresses = await self._system_resolve(host)
            else:
                return None  # curl resolves by itself
            self._check(host, addresses)
            address = ",".join(addresses)
        if self._pins.get((host, port)) != address:
            self._pins[(host, port)] = address
            self._update_shared_pins()
        return None

    def _check(self, host: str, addresses: list[str]) -> None:
        if self.policy is None:
            return
        if self.policy.trusts_host(host):
            self.policy.trust_addresses(addresses)
            return
        reason = self.policy.refusal(host, addresses)
        if reason is not None:
            raise TransportError(FORBIDDEN, reason)

    async def _system_resolve(self, host: str) -> list[str]:
        import time

        from .dns import DnsError

        hit = self._system_cache.get(host)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            addresses = await self.system_resolver.resolve(host)
        except DnsError as exc:
            raise TransportError(DNS, f"{host}: name not resolved ({exc.reason})") from None
        # IPv4 first: a home network without IPv6 must not wait for a v6 connect to fail.
        addresses.sort(key=lambda a: ":" in a)
        self._system_cache[host] = (time.monotonic() + SYSTEM_DNS_TTL, addresses)
        return addresses

    async def check(self, url: str) -> None:
        """Resolve and check an address without fetching it (a media URL handed on to yt-dlp)."""
        await self._route_pin(url, None, proxy_for(url, self.settings.proxy))

    async def _raw_fetch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        """For the DoH resolver: its servers are addressed by IP, so no DNS and no pins."""
        resp = await self._send(self._session(), method, url, headers, body, None, proxy=None)
        return resp.status, resp.body

    # -- requests --------------------------------------------------------------------------------

    def headers_for(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return merge_headers({"User-Agent": self.settings.user_agent, **BROWSER_HEADERS}, extra)

    async def prepare(self, url: str, pin: str | None = None) -> None:
        """Resolve the name and create the session ahead, outside the caller's politeness gate, so the
        gate's spacing is the spacing the server sees (the first request would otherwise leave late)."""
        self._session(await self._route_pin(url, pin, proxy_for(url, self.settings.proxy)))

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        pin: str | None = None,
        cookies: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> RawResponse:
        """One hop (no redirects followed); TransportError when no HTTP answer came back."""
        proxy = proxy_for(url, self.settings.proxy)
        session = self._session(await self._route_pin(url, pin, proxy))
        body: Any = None
        send_headers = self.headers_for(headers)
        if json_body is not None:
            import json as jsonlib

            body = jsonlib.dumps(json_body).encode()
            send_headers.setdefault("Content-Type", "application/json")
        elif data is not None:
            from urllib.parse import urlencode

            body = urlencode(dict(data)).encode()
            send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return await self._send(
            session,
            method,
            url,
            send_headers,
            body,
            cookies,
            proxy=proxy,
            max_bytes=max_bytes,
        )

    async def _send(
        self,
        session: AsyncSession,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        cookies: Mapping[str, str] | None,
        *,
        proxy: str | None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> RawResponse:
        try:
            resp = await session.request(
                method,
                url,
                headers=dict(headers),
                data=body,
                cookies=dict(cookies) if cookies else None,
                allow_redirects=False,
                proxy=proxy,
                timeout=self.settings.timeout,
            )
        except RequestException as exc:
            raise self._error(exc, url, proxy) from None
        except CurlError as exc:
            # curl failed outside any transfer: its multi handle is unusable (it could not make its wake-up
            # socket when the process was out of descriptors) and would fail every later request too.
            await self._discard(session)
            detail = scrub_credentials(str(exc).split(". See ", 1)[0])
            raise TransportError(PROTOCOL, f"{_host(url)}: {detail}") from exc
        if len(resp.content) > max_bytes:
            raise TransportError(TOO_LARGE, f"{_host(url)}: response larger than {max_bytes} bytes")
        response_headers = {k.lower(): v for k, v in resp.headers.items()}
        set_cookies = {c.name: c.value or "" for c in resp.cookies.jar} if resp.cookies else {}
        return RawResponse(
            status=resp.status_code,
            url=str(resp.url or url),
            headers=response_headers,
            body=resp.content,
            cookies=set_cookies,
        )

    def _error(self, exc: RequestException, url: str, proxy: str | None) -> TransportError:
        code = getattr(exc, "code", None)
        kind = _CURL_KINDS.get(code, PROTOCOL) if code is not None else PROTOCOL
        text = str(exc)
        # curl's message names the URL and sometimes the proxy with its password: say it our way.
        detail = scrub_credentials(text.split(". See ", 1)[0])
        messages = {
            DNS: f"{_host(url)}: name not resolved",
            CONNECT: f"{_host(url)}: connection refused or unreachable",
            TLS: f"{_host(url)}: TLS handshake failed",
            TIMEOUT: f"{_host(url)}: timeout after {self.settings.timeout:g}s",
            PROXY: f"proxy {redact(proxy) or ''} failed",
        }
        message = messages.get(kind, f"{_host(url)}: {detail}")
        if kind in messages:
            message += f" ({detail})"
        return TransportError(kind, message)


def _host(url: str) -> str:
    return urlsplit(url).netloc or url
