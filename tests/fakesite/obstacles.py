"""Today's obstacles between a client and aniworld.to / s.to, composed into one look-alike to test against.

    async with obstacle_site(tmp_path, tls_gate=True, js_challenge=True) as o:
        ...  # o.aniworld_url, o.sto_urls, o.ca_file, o.doh_url_json, o.http_proxy, o.state, ...

What each obstacle models and how (module with the details in brackets):

* **Retired name** - s.to is retired; clients must move on to serienstream.to / .cx.  The retired test
  name `s.test` resolves (via the DoH table) to 127.0.0.2, where nothing listens (every listener
  here binds 127.0.0.1 only), so a connection to it is refused.  Switch: `retired`.
* **DNS block** - German ISPs' resolvers do not answer these names.  The test names end in `.test`
  (RFC 6761: never resolvable by the system resolver); only the DoH endpoint `/dns-query` on the
  look-alike knows them, JSON and RFC 8484 wire form, reached by IP address like Cloudflare's
  `https://1.1.1.1/dns-query` [doh.py].  Switch: `doh` (off = the DoH server answers 503).
* **Browser-grade TLS** - Cloudflare refuses ClientHellos that do not look like Chrome's.  The sites
  are served over HTTPS (certificate from a CA the test generates: `o.ca_file`) behind a gate that
  answers a `handshake_failure` alert to hellos without GREASE values [tlsgate.py, certs.py].
  Switch: `tls_gate` (off = plain HTTPS on the same port).
* **Browser headers** - aniworld.to answers 403 to clients without a browser's request headers
  [challenges.py].  Switch: `browser_headers`.
* **JS-cookie challenge** - Cloudflare's "Just a moment..." page (403, `cf-mitigated: challenge`) on
  every site page until the client sends the `cf_clearance` cookie with the User-Agent that earned it
  [challenges.py]; a FlareSolverr stand-in solves it over FlareSolverr's v1 API [flaresolverr.py].
  Switches: `js_challenge`, `flaresolverr`.
* **Turnstile** - s.to's `/r?t=` answers 200 with the "Stream wird vorbereitet..." Turnstile page instead
  of the 302 to the hoster after N uses [challenges.py].  Switch: `turnstile_after=N`.
* **Beacon / DDoS-Guard** - normal pages carrying Cloudflare's beacon script and a DDoS-Guard footer,
  `server: ddos-guard` on every response; still 200 and normal [challenges.py].  Switch: `beacon`.
  DDoS-Guard's browser check page instead (403): `ddos_guard_check`.
* **Proxy** - an HTTP proxy (CONNECT + absolute-URI forwarding) and a SOCKS5 proxy, each open and with
  credentials, resolving the test names through the same table [proxies.py].  Switch: `proxies`.

Pages answer under whatever Host name they are asked for (all test names, 127.0.0.1).  The absolute
links they carry name the *real* hosts, as the real pages do (`https://aniworld.to/...`,
`https://s.to/...`: canonical/og:url, year, genre and person links), never the test names; every link a
crawler follows (seasons, episodes, `/redirect/`, `/r?t=`) is relative.  So a client has to map the
known real names onto the address in use, which is what issue 14 asks of the daemon.

Hosters and media stay on plain `http://127.0.0.1:PORT` (`o.plain_origin`): the sites' redirects point
there (`state.hoster_origin`), as the real hosters are not DNS-blocked.  All knobs are plain
attributes of `o.state` (FakeSiteState) and can be changed while the site runs.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .app import make_app
from .certs import CertFiles, make_certs
from .flaresolverr import FakeFlareSolverr
from .proxies import HttpProxy, Socks5Proxy
from .state import FakeSiteState
from .tlsgate import TlsGate

#: Test names: the aniworld name, the live s.to names (serienstream.to, then .cx) and the retired one.
NAMES = {
    "aniworld": "aniworld.test",
    "sto": "serienstream.test",
    "sto_alt": "serienstream-cx.test",
    "retired": "s.test",
}
#: Where the retired name points: on loopback, but nothing listens there (connection refused).
RETIRED_ADDRESS = "127.0.0.2"
LOOPBACK = "127.0.0.1"
PROXY_USER = "proxyuser"
PROXY_PASSWORD = "pr0xy-secret"


@dataclass
class ObstacleSite:
    """Everything a test needs to reach (or fail to reach) the composed look-alike."""

    state: FakeSiteState
    certs: CertFiles
    #: http://127.0.0.1:PORT - hosters and media (the site routes answer here too, without TLS).
    plain_origin: str
    #: The TLS gate's port: every `https://NAME:gate_port` URL below.
    gate_port: int
    #: HTTPS without the gate (same app): the DoH URLs use it, like a DoH server reached by IP.
    tls_port: int
    names: dict[str, str] = field(default_factory=lambda: dict(NAMES))
    http_proxy_server: HttpProxy | None = None
    http_proxy_auth_server: HttpProxy | None = None
    socks_proxy_server: Socks5Proxy | None = None
    socks_proxy_auth_server: Socks5Proxy | None = None
    flaresolverr: FakeFlareSolverr | None = None

    @property
    def ca_file(self) -> str:
        """PEM file of the test CA (for `provider.ca_file`, curl's CAINFO, `ssl.create_default_context`)."""
        return str(self.certs.ca)

    def url(self, name: str) -> str:
        return f"https://{name}:{self.gate_port}"

    @property
    def aniworld_url(self) -> str:
        return self.url(self.names["aniworld"])

    @property
    def sto_urls(self) -> list[str]:
        """The live s.to names, in the order to try them (serienstream.to, serienstream.cx)."""
        return [self.url(self.names["sto"]), self.url(self.names["sto_alt"])]

    @property
    def retired_url(self) -> str:
        """The retired s.to name (connection refused when the site was started with `retired=True`)."""
        return self.url(self.names["retired"])

    @property
    def resolve(self) -> dict[str, str]:
        """Name -> address pins (like curl's --resolve) for every test name, as the DoH table says."""
        return {
            name: self.state.dns_names[name] for name in self.names.values() if name in self.state.dns_names
        }

    @property
    def doh_url(self) -> str:
        """`https://127.0.0.1:PORT/dns-query` (by IP; both forms are served at the same URL)."""
        return f"https://{LOOPBACK}:{self.tls_port}/dns-query"

    @property
    def doh_url_json(self) -> str:
        return self.doh_url

    @property
    def doh_url_wire(self) -> str:
        return self.doh_url

    @property
    def http_proxy(self) -> str | None:
        return self.http_proxy_server.url if self.http_proxy_server else None

    @property
    def http_proxy_auth(self) -> str | None:
        """`http://proxyuser:pr0xy-secret@127.0.0.1:PORT` (407 without these credentials)."""
        return self.http_proxy_auth_server.url if self.http_proxy_auth_server else None

    @property
    def socks_proxy(self) -> str | None:
        """`socks5://127.0.0.1:PORT` (client resolves names); `socks_proxy_h` sends names."""
        return self.socks_proxy_server.url if self.socks_proxy_server else None

    @property
    def socks_proxy_h(self) -> str | None:
        return self.socks_proxy_server.url_h if self.socks_proxy_server else None

    @property
    def socks_proxy_auth(self) -> str | None:
        return self.socks_proxy_auth_server.url if self.socks_proxy_auth_server else None

    @property
    def socks_proxy_auth_h(self) -> str | None:
        return self.socks_proxy_auth_server.url_h if self.socks_proxy_auth_server else None

    @property
    def flaresolverr_url(self) -> str | None:
        """Base URL of the FlareSolverr stand-in (the API is `POST <url>/v1`)."""
        return self.flaresolverr.url if self.flaresolverr else None

    def sample_config(self, proxy: str | None = None) -> dict[str, Any]:
        """A `provider` config section for the daemon, with the keys issue 14 names."""
        cfg: dict[str, Any] = {
            "aniworld_url": self.aniworld_url,
            "sto_url": [self.retired_url, *self.sto_urls],
            "dns": "doh",
            "doh_urls": [self.doh_url],
            "ca_file": self.ca_file,
            "impersonate": "chrome",
        }
        if proxy:
            cfg["proxy"] = proxy
        if self.flaresolverr_url:
            cfg["flaresolverr_url"] = self.flaresolverr_url
        return cfg


def _server_context(certs: CertFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs.cert, certs.key)
    ctx.set_alpn_protocols(["http/1.1"])  # aiohttp speaks HTTP/1.1 only
    return ctx


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # noqa: SLF001 - the bound port when port=0
    return server.sockets[0].getsockname()[1] if server and server.sockets else 0


@contextlib.asynccontextmanager
async def obstacle_site(
    tmp_path: Path,
    *,
    state: FakeSiteState | None = None,
    tls_gate: bool = True,
    doh: bool = True,
    retired: bool = True,
    browser_headers: bool = False,
    js_challenge: bool = False,
    turnstile_after: int | None = None,
    beacon: bool = False,
    ddos_guard_check: bool = False,
    proxies: bool = True,
    flaresolverr: bool = False,
) -> AsyncIterator[ObstacleSite]:
    """Start the composed look-alike on 127.0.0.1 free ports; everything stops on exit.

    The switches set the matching FakeSiteState knobs (see the module docstring); `proxies` and
    `flaresolverr` decide whether those servers run at all.  Certificates go to `tmp_path/certs`.
    """
    state = state or FakeSiteState()
    names = dict(NAMES)
    for name in names.values():
        state.dns_names.setdefault(name, LOOPBACK)
    state.dns_names[names["retired"]] = RETIRED_ADDRESS if retired else LOOPBACK
    state.doh_enabled = doh
    state.tls_browser_only = tls_gate
    state.browser_headers = browser_headers
    state.js_challenge = js_challenge
    state.turnstile_after = turnstile_after
    state.beacon = beacon
    state.ddos_guard_check = ddos_guard_check

    certs = make_certs(tmp_path / "certs", [*names.values(), "localhost"])
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    stack = contextlib.AsyncExitStack()
    stack.push_async_callback(runner.cleanup)
    async with stack:
        plain = web.TCPSite(runner, LOOPBACK, 0)
        await plain.start()
        tls = web.TCPSite(runner, LOOPBACK, 0, ssl_context=_server_context(certs))
        await tls.start()
        plain_origin = f"http://{LOOPBACK}:{_bound_port(plain)}"
        state.hoster_origin = plain_origin
        gate = await TlsGate(state, _bound_port(tls)).start()
        stack.push_async_callback(gate.stop)
        site = ObstacleSite(
            state=state,
            certs=certs,
            plain_origin=plain_origin,
            gate_port=gate.port,
            tls_port=_bound_port(tls),
            names=names,
        )
        if proxies:
            auth = (PROXY_USER, PROXY_PASSWORD)
            site.http_proxy_server = await HttpProxy(state).start()
            stack.push_async_callback(site.http_proxy_server.stop)
            site.http_proxy_auth_server = await HttpProxy(state, auth=auth).start()
            stack.push_async_callback(site.http_proxy_auth_server.stop)
            site.socks_proxy_server = await Socks5Proxy(state).start()
            stack.push_async_callback(site.socks_proxy_server.stop)
            site.socks_proxy_auth_server = await Socks5Proxy(state, auth=auth).start()
            stack.push_async_callback(site.socks_proxy_auth_server.stop)
        if flaresolverr:
            site.flaresolverr = await FakeFlareSolverr(state, ca_file=certs.ca).start()
            stack.push_async_callback(site.flaresolverr.stop)
        yield site
