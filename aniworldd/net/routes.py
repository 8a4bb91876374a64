"""Site addresses with fallback: which of a site's addresses to use, remembered across restarts.

A site (aniworld.to, the series site) may answer at several addresses: `serienstream.to`, then
`serienstream.cx`, and as a last resort the server's IP with the real name pinned (curl's
`--resolve`: the name stays in TLS SNI, certificate check and Host header).  Requests go to the
address that answered last; when it stops answering (DNS, refused, TLS), the next one is tried,
and the first that answers is remembered in `<data_dir>/provider-routes.json`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aniworldd.fileio import atomic_write

log = logging.getLogger(__name__)

#: Names the sites have had; links on any of them are the same site (s.to is retired, the rest live).
KNOWN_NAMES: dict[str, tuple[str, ...]] = {
    "aniworld": ("aniworld.to",),
    "sto": ("serienstream.to", "serienstream.cx", "s.to"),
}


@dataclass(frozen=True, slots=True)
class Route:
    """An origin (`https://serienstream.to`) optionally pinned to an address (`186.2.175.5`)."""

    origin: str
    pin: str | None = None

    @property
    def host(self) -> str:
        return (urlsplit(self.origin).hostname or "").lower()

    @property
    def port(self) -> int:
        parts = urlsplit(self.origin)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def label(self) -> str:
        return f"{self.origin} via {self.pin}" if self.pin else self.origin

    def ident(self) -> str:
        return f"{self.origin}|{self.pin or ''}"


def _origin(url: str) -> str:
    parts = urlsplit(url.rstrip("/"))
    return f"{parts.scheme}://{parts.netloc}".lower() + parts.path.rstrip("/")


class SiteRoutes:
    """The ordered routes of every site, the one in use per site, and its persistence."""

    def __init__(
        self,
        sites: Mapping[str, Sequence[str]],
        *,
        last_resort: Mapping[str, str] | None = None,
        state_path: Path | None = None,
    ) -> None:
        self._routes: dict[str, list[Route]] = {}
        for site, urls in sites.items():
            routes = [Route(_origin(u)) for u in urls]
            for route in list(routes):
                address = (last_resort or {}).get(route.host)
                if address and not any(r.pin == address and r.host == route.host for r in routes):
                    routes.append(Route(route.origin, address))
            self._routes[site] = list(dict.fromkeys(routes))
        self._state_path = state_path
        self._lock = threading.Lock()
        self._current: dict[str, Route] = {site: routes[0] for site, routes in self._routes.items()}
        self._load()

    # -- lookups ---------------------------------------------------------------------------------

    @property
    def sites(self) -> list[str]:
        return list(self._routes)

    def routes(self, site: str) -> list[Route]:
        """Every route of the site, the one in use first, then the configured order."""
        current = self._current[site]
        return [current] + [r for r in self._routes[site] if r != current]

    def configured(self, site: str) -> list[Route]:
        return list(self._routes[site])

    def current(self, site: str) -> Route:
        return self._current[site]

    def hosts(self, site: str) -> frozenset[str]:
        """Every name this site is known by: configured addresses and the names it has had."""
        names = {r.host for r in self._routes[site]}
        for name in KNOWN_NAMES.get(site, ()):
            names |= {name, "www." + name}
        return frozenset(names)

    def site_of_url(self, url: str) -> str | None:
        """The site a URL points at (by origin of a configured route, or by a known name)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        for site, routes in self._routes.items():
            if any(urlsplit(r.origin)._replace(path="").geturl() == origin for r in routes):
                return site
        host = (parts.hostname or "").lower()
        for site in self._routes:
            if host in self.hosts(site):
                return site
        return None

    def pins(self) -> Iterable[Route]:
        return (r for routes in self._routes.values() for r in routes if r.pin)

    # -- changes ---------------------------------------------------------------------------------

    def mark_good(self, site: str, route: Route) -> None:
        """This route answered: use it first from now on (and after a restart)."""
        with self._lock:
            if self._current.get(site) == route:
                return
            self._current[site] = route
            log.warning("%s: now using %s", site, route.label())
            self._save()

    def _load(self) -> None:
        if self._state_path is None:
            return
        try:
            saved = json.loads(self._state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self._state_path, exc)
            return
        if not isinstance(saved, dict):
            return
        for site, ident in saved.items():
            for route in self._routes.get(site, ()):
                if route.ident() == ident:
                    self._current[site] = route

    def _save(self) -> None:
        if self._state_path is None:
            return
        data = {site: route.ident() for site, route in self._current.items()}
        try:
            atomic_write(self._state_path, json.dumps(data, indent=1) + "\n", mode=0o600)
        except OSError as exc:
            log.warning("cannot remember the working site address in %s: %s", self._state_path, exc)
