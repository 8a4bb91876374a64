"""Helpers shared by the site parsers: URL mapping, text cleanup and the base class.

Real pages mix relative links, absolute `https://aniworld.to/...` links and protocol-relative ones.
Every href is resolved against the page it came from and then moved onto the configured base URL,
so the same parser works against the real sites, a reverse proxy or the local look-alike site.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag

from aniworldd.net.challenge import TURNSTILE
from aniworldd.net.routes import KNOWN_NAMES, SiteRoutes
from aniworldd.providers.base import (
    LANGUAGES,
    ChallengeError,
    EpisodeInfo,
    HosterLink,
    NotFoundError,
    ProviderError,
    SeriesInfo,
)
from aniworldd.providers.http import HttpClient
from aniworldd.providers.parsing import make_soup, parse_off_loop

log = logging.getLogger(__name__)

#: A series key: the provider's URL slug (lowercase letters, digits, single hyphens).
KEY_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

#: Host names the real sites have had; links to them are rewritten onto the address in use.
REAL_HOSTS: dict[str, frozenset[str]] = {
    site: frozenset(n for name in names for n in (name, "www." + name)) for site, names in KNOWN_NAMES.items()
}

_WS_RE = re.compile(r"\s+")

#: Bounds on what a page may make us do (a hostile or broken page must not cause a request flood):
#: long-running soaps have ~40 seasons of ~260 episodes; an episode offers a few dozen hoster links.
MAX_SEASONS = 100
MAX_EPISODES = 5000
MAX_OFFERS = 60


def is_valid_key(key: str) -> bool:
    return bool(key) and len(key) <= 200 and KEY_RE.match(key) is not None


def looks_like_json(text: str) -> bool:
    """A search answer is JSON; a wall standing in for it is HTML."""
    return text.lstrip()[:1] in ("[", "{")


def clean(text: str | None) -> str:
    """Collapse runs of whitespace (incl. NBSP and line breaks inside tags) and strip."""
    if not text:
        return ""
    return _WS_RE.sub(" ", text.replace("\xa0", " ")).strip()


def fragment_text(fragment: str | None) -> str:
    """Text of an HTML fragment such as a search title: tags (`<em>`) dropped, entities decoded.

    Parsed with the same HTML parser as whole pages, so `&uuml;`, `&#039;` and stray tags all come out right.
    """
    if not fragment:
        return ""
    return clean(make_soup(fragment).get_text())


def soup(text: str) -> BeautifulSoup:
    """Parse a page with the stdlib-backed builder (no C extension, tolerant of broken markup)."""
    return make_soup(text)


def node_text(node: Tag | None) -> str:
    return clean(node.get_text(" ")) if node is not None else ""


def attr(node: Tag | None, name: str) -> str:
    """An attribute as a stripped string ("" when missing); multi-valued attributes are joined."""
    if node is None:
        return ""
    value = node.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(value)
    return value.strip()


def to_int(value: str | None) -> int | None:
    if value is None:
        return None
    m = re.search(r"\d+", str(value))
    return int(m.group(0)) if m else None


def image_source(img: Tag) -> str:
    """The real image URL of a possibly lazily loaded `<img>` (data-src wins over a data: placeholder)."""
    for name in ("data-src", "data-lazy-src", "data-original", "src"):
        value = attr(img, name)
        if value and not value.startswith("data:"):
            return value
    return ""


def url_basename(url: str) -> str:
    path = urlsplit(url).path
    return path.rsplit("/", 1)[-1].lower()


def unique_links(links: list[HosterLink]) -> list[HosterLink]:
    """Each offer once, the first one kept (by link id, else by redirect URL): pages list some twice."""
    seen: set[str] = set()
    unique = []
    for link in links:
        ident = link.link_id or link.redirect_url
        if ident not in seen:
            seen.add(ident)
            unique.append(link)
    return unique


def sort_languages(langs: list[str] | set[str]) -> list[str]:
    """Languages in the daemon's canonical order, without duplicates."""
    return [code for code in LANGUAGES if code in set(langs)]


class SiteUrls:
    """Maps links found on pages onto the address of one site that is in use.

    With `routes` the base follows the site's address fallback (serienstream.to -> .cx -> pinned IP);
    links on any name the site has had (s.to, serienstream.cx, ...) land on the address in use.
    """

    def __init__(self, site: str, base_url: str, routes: SiteRoutes | None = None) -> None:
        self.site = site
        self._static = base_url.rstrip("/")
        parts = urlsplit(self._static)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"invalid base URL for {site}: {base_url!r}")
        self._routes = routes if routes is not None and site in routes.sites else None
        hosts = set(REAL_HOSTS.get(site, frozenset())) | {parts.netloc.lower()}
        if self._routes is not None:
            hosts |= {urlsplit(r.origin).netloc.lower() for r in self._routes.configured(site)}
            hosts |= set(self._routes.hosts(site))
        self._own_hosts = frozenset(hosts)

    @property
    def base_url(self) -> str:
        return self._routes.current(self.site).origin if self._routes is not None else self._static

    @property
    def _base_parts(self):
        return urlsplit(self.base_url)

    def _prefixes(self) -> list[tuple[str, str]]:
        """(netloc, path prefix) of every configured address of the site."""
        origins = [r.origin for r in self._routes.configured(self.site)] if self._routes else [self._static]
        return [(urlsplit(o).netloc.lower(), urlsplit(o).path.rstrip("/")) for o in origins]

    def url(self, path: str) -> str:
        """Absolute URL on the address in use for a site path like `/anime/stream/x`."""
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    def absolute(self, page_url: str, href: str) -> str:
        """Resolve `href` against `page_url`, then move links on any name of the site onto the base."""
        joined = urljoin(page_url, href.strip())
        parts = urlsplit(joined)
        host = parts.netloc.lower()
        base = self._base_parts
        if host in self._own_hosts and host != base.netloc.lower():
            path = self.site_path(joined) or parts.path
            prefix = base.path.rstrip("/")
            return urlunsplit((base.scheme, base.netloc, prefix + path, parts.query, ""))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))

    def site_path(self, url: str) -> str | None:
        """The path of `url` if it points at this site (any of its addresses or names), else None."""
        parts = urlsplit(url)
        netloc = parts.netloc.lower()
        if netloc and netloc not in self._own_hosts and (parts.hostname or "") not in self._own_hosts:
            return None
        path = parts.path or "/"
        for prefix_netloc, prefix in self._prefixes():
            if prefix and netloc == prefix_netloc and path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return path


class SiteProvider:
    """What both site providers share: HTTP client, URL mapping and the redirect resolution."""

    site = ""

    def __init__(self, client: HttpClient, base_url: str) -> None:
        self.client = client
        self.urls = SiteUrls(self.site, base_url, client.routes)

    @property
    def base_url(self) -> str:
        return self.urls.base_url

    def series_url(self, key: str) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def episode_url(self, key: str, season: int, episode: int) -> str:
        if season == 0:
            return f"{self.series_url(key)}/filme/film-{int(episode)}"
        return f"{self.series_url(key)}/staffel-{int(season)}/episode-{int(episode)}"

    #: A string every real page of the site carries (the series block): a 200 with it is the page we
    #: asked for, whatever anti-bot scripts ride along; without it a wall may be standing in for it.
    page_marker = ""

    def _is_page(self, text: str) -> bool:
        return not self.page_marker or self.page_marker in text

    # The site's page parsers (pure functions: text in, data out), set by each subclass.
    parse_series_page: Callable[..., tuple[SeriesInfo, dict[int, str]]]
    parse_season_page: Callable[..., list[EpisodeInfo]]
    parse_episode_page: Callable[..., list[HosterLink]]

    async def get_series(self, key: str, *, fresh: bool = False) -> SeriesInfo:
        """The series page, then every season page (season 0: the movies) in parallel."""
        page = await self.client.get(self.series_url(key), use_cache=not fresh, expected=self._is_page)
        # Parsing is pure Python and a page may be large: off the event loop, so /health stays quick.
        info, seasons = await parse_off_loop(self.parse_series_page, page.text, page.url, self.urls, key)
        if len(seasons) > MAX_SEASONS:
            # One request per season follows: a page claiming thousands must not turn into a flood.
            raise ProviderError(
                f"{self.site}: {key} lists {len(seasons)} seasons; more than {MAX_SEASONS} is refused"
            )
        if not seasons:
            log.info("%s: %s lists no seasons", self.site, key)

        async def load(season: int, season_url: str) -> tuple[int, list[EpisodeInfo]]:
            try:
                season_page = await self.client.get(season_url, use_cache=not fresh, expected=self._is_page)
            except NotFoundError:
                log.warning("%s: season page %s is gone", self.site, season_url)
                return season, []
            episodes = await parse_off_loop(
                self.parse_season_page, season_page.text, season_page.url, self.urls, season
            )
            if len(episodes) > MAX_EPISODES:
                raise ProviderError(
                    f"{self.site}: {key} season {season} lists {len(episodes)} episodes; "
                    f"more than {MAX_EPISODES} is refused"
                )
            return season, episodes

        for season, episodes in await asyncio.gather(*(load(n, u) for n, u in seasons.items())):
            own = [e for e in episodes if e.season == season]
            if len(own) < len(episodes):
                log.warning("%s: %s season %d page lists episodes of another season", self.site, key, season)
            if own:
                info.seasons[season] = own
        return info

    async def get_episode_links(self, key: str, season: int, episode: int) -> list[HosterLink]:
        # Never cached: the offers (languages, hosters, redirect tokens) are what a download is about to use.
        page = await self.client.get(
            self.episode_url(key, season, episode), use_cache=False, expected=self._is_page
        )
        links = await parse_off_loop(self.parse_episode_page, page.text, page.url, self.urls)
        # Each offer may cost a redirect and a hoster request: only the first ones are considered.
        return links[:MAX_OFFERS]

    async def resolve(self, link: HosterLink) -> str:
        """GET the provider's redirect URL without following it; the Location is the hoster embed URL."""
        page = await self.client.get_redirect(self.client.rebase(link.redirect_url))
        if page.location:
            return page.location
        if page.status == 200 and self.urls.site_path(page.url) is not None:
            # The site's own page instead of a redirect to the hoster: s.to's "Stream wird
            # vorbereitet..." Turnstile step (a captcha no program can solve).
            raise ChallengeError(
                f"{self.site}: the hoster link {link.link_id or link.redirect_url} asks for a captcha "
                "(Turnstile) instead of redirecting",
                challenge=TURNSTILE,
                host=urlsplit(page.url).hostname or "",
            )
        raise ProviderError(f"{self.site}: the redirect {link.redirect_url} did not answer with a Location")


def check_key(key: str) -> str:
    if not is_valid_key(key):
        raise ValueError(f"invalid series key {key!r}: expected lowercase letters, digits and single hyphens")
    return key
