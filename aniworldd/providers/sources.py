"""Source selection: which hoster offer of an episode to download, in which order, and why others failed.

An episode page lists offers (hoster x language).  SourceFinder orders them by the user's language
preference first (languages not in `downloads.language` are never used), then by hoster preference
(`downloads.hosters`); hosters we can resolve but that the user did not list come after the listed
ones, in page order, so a missing config entry never costs a download.  Hosters without a resolver are
skipped and recorded.  Each offer is resolved only when the consumer asks for the next candidate
(provider redirect -> embed URL -> hoster resolver), so the common case costs one resolution.

Usage by the download service::

    attempts = finder.candidates(site, key, season, episode)
    async for cand in attempts:
        try:
            await download(cand.source); break
        except DownloadFailed as exc:
            attempts.record(cand.hoster, cand.language, f"download failed: {exc}")
    else:
        raise attempts.error()          # NoSourceError listing every reason

Provider errors while listing the offers (site unreachable, blocked) are not hoster failures: they
propagate as ProviderError so the caller can retry the whole item later.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import ChallengeError, HosterLink, Provider, ProviderError
from .hosters import is_supported, normalize, resolve_media
from .hosters.base import HosterError, MediaSource
from .http import HttpClient

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MediaCandidate:
    source: MediaSource
    language: str
    hoster: str
    embed_url: str = ""


#: SourceFailure kinds: only `hoster` failures (resolver or download) count for hoster health.
HOSTER_FAILURE = "hoster"
UNSUPPORTED = "unsupported"
PROVIDER_FAILURE = "provider"
COOLDOWN = "cooldown"


@dataclass(slots=True, frozen=True)
class SourceFailure:
    hoster: str
    language: str
    reason: str
    kind: str = HOSTER_FAILURE

    def __str__(self) -> str:
        if self.kind == COOLDOWN:  # the reason already names the hoster: "Vidoza skipped: cooling down ..."
            return f"{self.reason} ({self.language})"
        return f"{self.hoster} ({self.language}): {self.reason}"


class NoSourceError(Exception):
    """No offer of the episode could be used; `failures` says why for each one tried."""

    def __init__(self, failures: Sequence[SourceFailure], summary: str = "no usable source") -> None:
        self.failures = list(failures)
        self.summary = summary
        detail = "; ".join(str(f) for f in self.failures)
        super().__init__(f"{summary}: {detail}" if detail else summary)


@dataclass
class SourceAttempts:
    """One pass over an episode's offers: an async iterator of candidates plus what went wrong.

    Returned by SourceFinder.candidates(); the failure list grows while iterating and can be extended
    by the caller (`record`) when a resolved candidate then fails to download.
    """

    site: str
    key: str
    season: int
    episode: int
    failures: list[SourceFailure] = field(default_factory=list)
    #: Offers in the order they will be tried (filled once the episode's links are known).
    ordered: list[HosterLink] = field(default_factory=list)
    #: Languages the episode offers at all (to explain "nothing in your languages").
    available_languages: list[str] = field(default_factory=list)
    _gen: AsyncIterator[MediaCandidate] | None = field(default=None, repr=False)

    def record(self, hoster: str, language: str, reason: str, kind: str = HOSTER_FAILURE) -> None:
        self.failures.append(SourceFailure(hoster, language, reason, kind))

    def error(self) -> NoSourceError:
        where = f"{self.key} S{self.season:02d}E{self.episode:03d}"
        if not self.ordered and not self.failures:
            offered = ", ".join(self.available_languages) or "none"
            return NoSourceError([], f"{where}: no hoster offers a wanted language (offered: {offered})")
        return NoSourceError(self.failures, f"{where}: no usable source")

    def __aiter__(self) -> SourceAttempts:
        return self

    async def __anext__(self) -> MediaCandidate:
        if self._gen is None:
            raise StopAsyncIteration
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        if self._gen is not None:
            await self._gen.aclose()  # type: ignore[attr-defined]


def order_links(
    links: Sequence[HosterLink],
    languages_pref: Sequence[str],
    hosters_pref: Sequence[str],
    hoster_tier: Callable[[str], int] | None = None,
) -> tuple[list[HosterLink], list[HosterLink]]:
    """(offers to try in order, offers skipped because no resolver exists), wanted languages only.

    Sort key: language rank, then (adaptive order, when `hoster_tier` is given) the hoster's health tier
    (HosterHealth.rank: worked recently < untried < failed recently), then hoster rank (unlisted-but-
    supported hosters after all listed ones); ties keep page order.  Language stays first: a hoster's
    health never buys a language the user ranked lower.  Duplicate offers (same hoster, language,
    redirect) are dropped.
    """
    lang_rank = {lang: i for i, lang in enumerate(languages_pref)}
    hoster_rank = {normalize(h): i for i, h in enumerate(hosters_pref)}
    seen: set[tuple[str, str, str]] = set()
    usable: list[tuple[int, int, int, int, HosterLink]] = []
    unsupported: list[HosterLink] = []
    for pos, link in enumerate(links):
        ident = (normalize(link.hoster), link.language, link.redirect_url)
        if link.language not in lang_rank or ident in seen:
            continue
        seen.add(ident)
        if not is_supported(link.hoster):
            unsupported.append(link)
            continue
        rank = hoster_rank.get(normalize(link.hoster), len(hoster_rank))
        tier = hoster_tier(link.hoster) if hoster_tier is not None else 0
        usable.append((lang_rank[link.language], tier, rank, pos, link))
    usable.sort(key=lambda t: t[:4])
    return [t[4] for t in usable], unsupported


class SourceFinder:
    """Finds downloadable media for an episode, trying offers in preference order.

    `health` (services.hoster_health.HosterHealth, set by the download service) skips hosters in their
    cool-down and, with `hoster_order = "adaptive"`, tries hosters that worked recently first.
    """

    health: Any = None
    hoster_order: str = "fixed"

    def __init__(
        self,
        provider_lookup: Callable[[str], Provider],
        client: HttpClient,
        hosters_pref: Sequence[str],
        languages_pref: Sequence[str],
        user_agent: str | None = None,
    ) -> None:
        self._provider_lookup = provider_lookup
        self._client = client
        self.hosters_pref = list(hosters_pref)
        self.languages_pref = list(languages_pref)
        self.user_agent = user_agent or client.user_agent
        #: Failures of the most recent candidates()/first() call; convenience for single callers,
        #: concurrent callers should use the SourceAttempts object they got back.
        self.failures: list[SourceFailure] = []

    def candidates(
        self,
        site: str,
        key: str,
        season: int,
        episode: int,
        *,
        languages: Sequence[str] | None = None,
    ) -> SourceAttempts:
        """Candidates in preference order, resolved lazily; `languages` overrides the preference."""
        attempts = SourceAttempts(site, key, season, episode)
        self.failures = attempts.failures
        attempts._gen = self._generate(attempts, languages or self.languages_pref)
        return attempts

    async def _generate(
        self, attempts: SourceAttempts, languages: Sequence[str]
    ) -> AsyncIterator[MediaCandidate]:
        provider = self._provider_lookup(attempts.site)
        links = await provider.get_episode_links(attempts.key, attempts.season, attempts.episode)
        attempts.available_languages = list(dict.fromkeys(link.language for link in links))
        health = self.health
        tier = health.rank if health is not None and self.hoster_order == "adaptive" else None
        ordered, unsupported = order_links(links, languages, self.hosters_pref, tier)
        attempts.ordered = ordered
        for link in unsupported:
            attempts.record(link.hoster, link.language, "unsupported hoster", UNSUPPORTED)
        for link in ordered:
            skipped = health.cooling_down(link.hoster) if health is not None else None
            if skipped:
                attempts.record(link.hoster, link.language, skipped, COOLDOWN)
                continue
            try:
                embed_url = await provider.resolve(link)
            except ChallengeError:
                # A captcha on the site's redirect stands before every offer alike: the item waits.
                raise
            except ProviderError as exc:
                reason = f"provider redirect failed: {exc}"
                attempts.record(link.hoster, link.language, reason, PROVIDER_FAILURE)
                continue
            try:
                source = await resolve_media(self._client, link.hoster, embed_url, self.user_agent)
                await self._client.check_url(source.url)
            except HosterError as exc:
                attempts.record(link.hoster, link.language, exc.reason)
                continue
            except ProviderError as exc:  # check_url: the media URL points somewhere it must not
                attempts.record(link.hoster, link.language, f"media URL refused: {exc}")
                continue
            except Exception as exc:  # a resolver bug must not hide the remaining offers
                log.exception("resolver for %s crashed on %s", link.hoster, embed_url)
                attempts.record(link.hoster, link.language, f"resolver error: {exc.__class__.__name__}")
                continue
            yield MediaCandidate(
                source=source, language=link.language, hoster=link.hoster, embed_url=embed_url
            )

    async def first(
        self, site: str, key: str, season: int, episode: int, *, languages: Sequence[str] | None = None
    ) -> MediaCandidate:
        """The first candidate that resolves; NoSourceError with every reason when none does."""
        attempts = self.candidates(site, key, season, episode, languages=languages)
        try:
            async for cand in attempts:
                return cand
        finally:
            await attempts.aclose()
        raise attempts.error()
