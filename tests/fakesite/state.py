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
    #: Site requests currently being answered, per Host header, and the maximum seen.
    inflight: dict[str, int] = field(default_factory=dict)
    max_inflight: dict[str, int] = field(default_factory=dict)

    def site_requests(self, site: str | None = None) -> list[dict[str, Any]]:
        """The logged requests of the aniworld/s.to routes (optionally one site only)."""
        return [r for r in self.request_log if r.get("site") and (site is None or r["site"] == site)]

    def code_info(self, code: str) -> dict[str, Any] | None:
        """Which (site, key, season, episode, language, hoster) a hoster file code belongs to."""
        offer = self.catalog.by_code(code)
        return offer.info() if offer else None
