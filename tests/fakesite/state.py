"""Mutable knobs of a running fake site, shared by the site routes (sites.py) and the hosters (hosters.py).

Tests change these while the site runs: block it, make it fail N times, slow it down or hold requests,
take hosters down, kill file codes, or edit the catalog (new episodes for refresh tests).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import Catalog, default_catalog


def _default_media_dir() -> Path:
    try:
        from .media import default_cache_dir
    except ImportError:  # hoster helper's module not there yet
        import tempfile

        return Path(tempfile.gettempdir()) / "aniworldd-fakesite-media"
    return default_cache_dir()


@dataclass
class FakeSiteState:
    catalog: Catalog = field(default_factory=default_catalog)
    #: Serve a Cloudflare "Just a moment..." page with 403 for every site page.
    blocked: bool = False
    #: Answer 503 to this many site requests (then serve normally again).
    fail_next: int = 0
    #: Seconds to wait before answering a site request (for timeout tests).
    delay: float = 0.0
    #: When set, site requests wait for this event before answering (deterministic concurrency tests).
    hold: asyncio.Event | None = None
    #: Add noise entries (episode / movie / support links, duplicates) to search answers.
    search_noise: bool = True
    #: One dict per request handled: {"time", "method", "path", ...}; site requests carry "site" and
    #: "host", hoster requests carry "hoster" and "referer" (see hosters.py).
    request_log: list[dict[str, Any]] = field(default_factory=list)
    #: Lowercase hoster names whose routes answer as "down" (hosters.py).
    down_hosters: set[str] = field(default_factory=set)
    #: Hoster file codes that are gone (hosters.py).
    dead_codes: set[str] = field(default_factory=set)
    #: Codes whose embed page works but whose media answers 404 (hosters.py).
    media_fail_codes: set[str] = field(default_factory=set)
    #: Where generated test videos are cached (hosters.py / media.py).
    media_dir: Path = field(default_factory=_default_media_dir)
    #: Throttle media bodies to this many bytes/s (hosters.py), None = full speed.
    media_rate_bps: int | None = None
    #: Seconds added before answering each media request (a link's round trip; bench/hls.py).
    media_delay: float = 0.0
    #: One link all media responses share (link.SharedLink: an aggregate rate), None = no such limit.
    media_link: Any = None
    #: Site requests currently being answered, per Host header, and the maximum seen.
    inflight: dict[str, int] = field(default_factory=dict)
    max_inflight: dict[str, int] = field(default_factory=dict)

    # -- today's obstacles (obstacles.py composes them; every one is off by default) ------------------
    #: Where the site redirects (`/redirect/<id>`, `/r?t=`) send clients for the hoster embed pages;
    #: None = the request's own origin.  Lets the sites sit behind the TLS gate under test names while
    #: hosters and media stay on plain http://127.0.0.1:PORT.
    hoster_origin: str | None = None
    #: Name -> IPv4 answered by the DoH endpoint `/dns-query` (doh.py); the fake proxies resolve
    #: through it too (proxies.py).  Names are lowercase, without the trailing dot.
    dns_names: dict[str, str] = field(default_factory=dict)
    #: TTL (seconds) of every DoH answer (and the answer's `Cache-Control: max-age`).
    dns_ttl: int = 300
    #: False: `/dns-query` answers 503 (the DoH server is down).
    doh_enabled: bool = True
    #: DoH queries answered, per queried name (lowercase, no trailing dot): lets tests assert caching.
    dns_queries: dict[str, int] = field(default_factory=dict)
    #: One dict per DoH query: {"name", "type", "form": "json" | "wire", "method", "rcode"}.
    dns_log: list[dict[str, Any]] = field(default_factory=list)
    #: TLS gate (tlsgate.py): refuse ClientHellos without Chrome's GREASE values; False = plain HTTPS.
    tls_browser_only: bool = True
    #: One dict per TLS connection the gate saw: {"sni", "accepted", "reason", "grease"}.
    tls_log: list[dict[str, Any]] = field(default_factory=list)
    #: ClientHellos the gate refused / let through.
    tls_refused: int = 0
    tls_accepted: int = 0
    #: aniworld answers 403 ("Attention Required! | Cloudflare") to requests without a browser's headers:
    #: a `Mozilla/5.0` User-Agent, Accept, Accept-Language and Sec-Fetch-Mode (challenges.py).
    browser_headers: bool = False
    header_refusals: int = 0
    #: Cloudflare JS-cookie challenge on every site page (challenges.py) unless the request carries the
    #: `cf_clearance` cookie issued to its User-Agent (see `challenges.clearance_for`).
    js_challenge: bool = False
    #: Secret the clearance cookies derive from; change it to expire every clearance handed out.
    clearance_value: str = "fake-clearance-3f9c2a"
    #: Challenge pages served, and site requests let through by a valid clearance.
    challenges_served: int = 0
    clearance_passes: int = 0
    #: After this many uses of s.to's `/r?t=`, the redirect answers 200 with the Turnstile page
    #: instead of 302 (None = never).  Uses are counted in `sto_redirect_uses`.
    turnstile_after: int | None = None
    sto_redirect_uses: int = 0
    turnstile_served: int = 0
    #: Normal pages carry Cloudflare's beacon script + a DDoS-Guard footer, and every site response
    #: says `server: ddos-guard` (pages stay 200 and normal).
    beacon: bool = False
    #: DDoS-Guard's browser check (403, `server: ddos-guard`) on every site page.
    ddos_guard_check: bool = False
    #: One dict per proxied connection (proxies.py): {"proxy", "host", "port", "user", "ok"}.
    proxy_log: list[dict[str, Any]] = field(default_factory=list)

    def site_requests(self, site: str | None = None) -> list[dict[str, Any]]:
        """The logged requests of the aniworld/s.to routes (optionally one site only)."""
        return [r for r in self.request_log if r.get("site") and (site is None or r["site"] == site)]

    def code_info(self, code: str) -> dict[str, Any] | None:
        """Which (site, key, season, episode, language, hoster) a hoster file code belongs to."""
        offer = self.catalog.by_code(code)
        return offer.info() if offer else None
