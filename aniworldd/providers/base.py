"""The provider contract: what the daemon needs from a streaming index site.

Kept free of HTML and HTTP details so the scanner, queue and API depend only on these shapes,
and a new site (or the local look-alike used by tests) can be added without touching them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

#: Language codes used everywhere in the daemon (config, DB, file name tags, API).
GER_DUB = "ger-dub"
GER_SUB = "ger-sub"
ENG_SUB = "eng-sub"
ENG_DUB = "eng-dub"
LANGUAGES = (GER_DUB, GER_SUB, ENG_SUB, ENG_DUB)

#: Human labels, used in file names (`(German Dub)`) and the UI.
LANGUAGE_LABELS = {
    GER_DUB: "German Dub",
    GER_SUB: "German Sub",
    ENG_SUB: "English Sub",
    ENG_DUB: "English Dub",
}

SITE_ANIWORLD = "aniworld"
SITE_STO = "sto"
SITES = (SITE_ANIWORLD, SITE_STO)


@dataclass(slots=True)
class SearchResult:
    key: str
    name: str
    link: str
    site: str
    year: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class EpisodeInfo:
    """One episode (or movie, season 0) as listed on a season page."""

    season: int
    number: int
    title_de: str = ""
    title_en: str = ""
    languages: list[str] = field(default_factory=list)
    hosters: list[str] = field(default_factory=list)
    url: str = ""

    @property
    def title(self) -> str:
        return self.title_de or self.title_en

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class SeriesInfo:
    key: str
    site: str
    link: str
    title: str
    alt_titles: list[str] = field(default_factory=list)
    description: str = ""
    genres: list[str] = field(default_factory=list)
    start_year: int | None = None
    end_year: int | None = None
    cover: str | None = None
    fsk: int | None = None
    imdb_id: str | None = None
    #: season number -> episodes in order; season 0 holds the movies.
    seasons: dict[int, list[EpisodeInfo]] = field(default_factory=dict)

    @property
    def episode_count(self) -> int:
        return sum(len(eps) for eps in self.seasons.values())

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class HosterLink:
    """A hoster offer on an episode page; `redirect_url` is absolute and still on the provider's site."""

    hoster: str
    language: str
    redirect_url: str
    link_id: str = ""


class ProviderError(Exception):
    """Base of provider failures; `kind` lets the API map it to a status without isinstance chains."""

    kind = "provider_error"
    status = 502


class BlockedError(ProviderError):
    """403, Cloudflare challenge or captcha page: retrying now will not help."""

    kind = "provider_blocked"
    status = 403


class ChallengeError(BlockedError):
    """An anti-bot wall (Cloudflare, Turnstile captcha, DDoS-Guard) stood in for the page.

    `challenge` is its kind (aniworldd.net.challenge: cloudflare, turnstile, ddos_guard, ...) and
    `host` the host that asked: the queue waits and retries later, and tells the user what to do.
    """

    def __init__(self, message: str, *, challenge: str, host: str = "") -> None:
        super().__init__(message)
        self.challenge = challenge
        self.host = host


class NotFoundError(ProviderError):
    kind = "not_found"
    status = 404


class UnreachableError(ProviderError):
    """Timeouts, connection errors and 5xx after all retries."""

    kind = "provider_unreachable"
    status = 503


class Provider(Protocol):
    site: str
    base_url: str

    async def search(self, query: str) -> list[SearchResult]: ...

    async def get_series(self, key: str) -> SeriesInfo: ...

    async def get_episode_links(self, key: str, season: int, episode: int) -> list[HosterLink]: ...

    async def resolve(self, link: HosterLink) -> str:
        """Follow the provider's redirect and return the hoster's embed URL."""
        ...
