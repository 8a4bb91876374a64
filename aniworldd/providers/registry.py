"""Both sites behind one object: pick a provider by site or by link, search both at once."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aniworldd.net.policy import AddressPolicy
from aniworldd.net.routes import SiteRoutes
from aniworldd.providers.aniworld import AniworldProvider
from aniworldd.providers.base import SITE_ANIWORLD, SITE_STO, SITES, ProviderError, SearchResult
from aniworldd.providers.common import SiteProvider, is_valid_key
from aniworldd.providers.http import HttpClient
from aniworldd.providers.sto import StoProvider

log = logging.getLogger(__name__)

_ANIWORLD_LINK_RE = re.compile(r"^/anime/stream/([^/?#]+)(?:/.*)?$")
_STO_LINK_RE = re.compile(r"^/serie/(?:stream/)?([^/?#]+)(?:/.*)?$")


class LinkError(ValueError):
    """A link that is not an aniworld.to / s.to series link (the API turns it into a 400)."""


class ProviderSet:
    """The configured providers plus the HTTP client they share."""

    def __init__(self, aniworld: SiteProvider, sto: SiteProvider, client: HttpClient | None = None) -> None:
        self.aniworld = aniworld
        self.sto = sto
        self.client = client or aniworld.client
        self._by_site: dict[str, SiteProvider] = {SITE_ANIWORLD: aniworld, SITE_STO: sto}

    @property
    def providers(self) -> list[SiteProvider]:
        return [self.aniworld, self.sto]

    def for_site(self, site: str) -> SiteProvider:
        try:
            return self._by_site[site]
        except KeyError:
            raise ValueError(f"unknown site {site!r}: expected one of {', '.join(SITES)}") from None

    def for_link(self, url: str) -> tuple[SiteProvider, str]:
        """(provider, key) for a series/season/episode link on either site (real host or configured base).

        Accepts `https://aniworld.to/anime/stream/<key>[/...]`, `https://s.to/serie/<key>[/...]`,
        the old `https://s.to/serie/stream/<key>`, the same paths on the configured base URLs,
        links without a scheme (`aniworld.to/anime/stream/x`) and bare paths (`/serie/x`).
        """
        text = (url or "").strip()
        if not text:
            raise LinkError("empty link")
        if not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I) and not text.startswith("/"):
            text = "https://" + text
        try:
            parts = urlsplit(text)
        except ValueError as exc:  # e.g. "Invalid IPv6 URL": still the user's bad input
            raise LinkError(f"invalid link {url!r}: {exc}") from None
        if parts.scheme and parts.scheme.lower() not in ("http", "https"):
            raise LinkError(f"not an http(s) link: {url!r}")
        host = parts.netloc.lower()
        known_host = False
        for provider, pattern in ((self.aniworld, _ANIWORLD_LINK_RE), (self.sto, _STO_LINK_RE)):
            local = provider.urls.site_path(text) if host else (parts.path or "/")
            if local is None:
                continue
            known_host = True
            m = pattern.match(local)
            if not m:
                continue
            key = m.group(1).lower()
            if key == "stream" or not is_valid_key(key):
                raise LinkError(f"invalid series key {m.group(1)!r} in link {url!r}")
            return provider, key
        if not known_host:
            raise LinkError(f"not an aniworld.to or s.to link: {url!r}")
        raise LinkError(f"not a series link: {url!r} (expected /anime/stream/<key> or /serie/<key>)")

    async def search(self, query: str, site: str | None = None) -> list[SearchResult]:
        """Search one site, or both at once (aniworld results first). Fails only if every site failed."""
        providers = [self.for_site(site)] if site else self.providers
        outcomes = await asyncio.gather(*(p.search(query) for p in providers), return_exceptions=True)
        results: list[SearchResult] = []
        errors: list[BaseException] = []
        for provider, outcome in zip(providers, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, ProviderError):
                    raise outcome
                log.warning("search on %s failed: %s", provider.site, outcome)
                errors.append(outcome)
            else:
                results.extend(outcome)
        if errors and len(errors) == len(providers):
            raise errors[0]
        return results

    async def close(self) -> None:
        await self.client.close()


#: s.to is retired: a config that still names it gets today's names (the key paths are the same).
RETIRED = {"https://s.to": ["https://serienstream.to", "https://serienstream.cx"]}
DEFAULT_URLS = {
    SITE_ANIWORLD: ["https://aniworld.to"],
    SITE_STO: ["https://serienstream.to", "https://serienstream.cx"],
}


def site_urls(provider_cfg: Mapping[str, Any], site: str) -> list[str]:
    """The configured addresses of a site in order (one URL or a list), retired names replaced."""
    value = provider_cfg.get("aniworld_url" if site == SITE_ANIWORLD else "sto_url") or DEFAULT_URLS[site]
    urls: list[str] = []
    for url in [value] if isinstance(value, str) else list(value):
        url = url.rstrip("/")
        replacement = RETIRED.get(url.lower().replace("://www.", "://"))
        if replacement:
            log.warning("%s is retired; using %s instead", url, ", ".join(replacement))
        urls.extend(replacement or [url])
    return list(dict.fromkeys(urls))


def build_routes(provider_cfg: Mapping[str, Any], data_dir: str | Path | None = None) -> SiteRoutes:
    """Both sites' addresses; the one that answered last is remembered under the data dir."""
    state = Path(data_dir) / "provider-routes.json" if data_dir else None
    return SiteRoutes(
        {site: site_urls(provider_cfg, site) for site in SITES},
        last_resort=provider_cfg.get("last_resort") or {},
        state_path=state,
    )


def build_providers(
    provider_cfg: Mapping[str, Any], client: HttpClient | None = None, data_dir: str | Path | None = None
) -> ProviderSet:
    """The factory the daemon and the CLI use: one shared HttpClient, both sites on their addresses."""
    if client is None:
        urls = site_urls(provider_cfg, SITE_ANIWORLD) + site_urls(provider_cfg, SITE_STO)
        client = HttpClient.from_config(
            provider_cfg,
            routes=build_routes(provider_cfg, data_dir),
            policy=AddressPolicy.from_config(provider_cfg, urls),
        )
    aniworld = AniworldProvider(client, site_urls(provider_cfg, SITE_ANIWORLD)[0])
    sto = StoProvider(client, site_urls(provider_cfg, SITE_STO)[0])
    return ProviderSet(aniworld, sto, client)
