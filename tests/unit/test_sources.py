"""SourceFinder: preference order, lazy resolution, fallback with reasons, NoSourceError."""

from __future__ import annotations

import pytest

from aniworldd.providers.base import ENG_DUB, ENG_SUB, GER_DUB, GER_SUB, HosterLink, ProviderError
from aniworldd.providers.sources import NoSourceError, SourceFinder, order_links
from tests.fakesite.hosters import embed_path

UA = "aniworldd-test"
LANGS = [GER_DUB, GER_SUB, ENG_SUB]
HOSTERS = ["VOE", "Vidoza", "Vidmoly", "Doodstream", "SpeedFiles", "Luluvdo", "Streamtape", "Filemoon"]


class TinyProvider:
    """Just enough Provider: offers (hoster, language, code) and a redirect that maps to the fake hoster."""

    site = "aniworld"

    def __init__(self, origin: str, offers: list[tuple[str, str, str]], broken_redirects=()) -> None:
        self.base_url = origin
        self.origin = origin
        self.offers = offers
        self.broken = set(broken_redirects)
        self.resolved: list[str] = []
        self.fail_listing: Exception | None = None

    async def get_episode_links(self, key: str, season: int, episode: int) -> list[HosterLink]:
        if self.fail_listing:
            raise self.fail_listing
        return [
            HosterLink(hoster, lang, f"{self.origin}/redirect/{i}", str(i))
            for i, (hoster, lang, _code) in enumerate(self.offers)
        ]

    async def resolve(self, link: HosterLink) -> str:
        hoster, _lang, code = self.offers[int(link.link_id)]
        self.resolved.append(link.link_id)
        if link.link_id in self.broken:
            raise ProviderError(f"redirect {link.link_id} answered 500")
        return self.origin + embed_path(hoster, code)


def finder_for(provider, session, hosters=HOSTERS, langs=LANGS) -> SourceFinder:
    return SourceFinder(lambda site: provider, session, hosters, langs, UA)


def test_order_links_language_first_then_hoster_unlisted_last_unsupported_apart():
    links = [
        HosterLink("VOE", ENG_SUB, "r/0"),
        HosterLink("Filemoon", GER_DUB, "r/1"),  # supported but not in the preference list
        HosterLink("Vidoza", GER_SUB, "r/2"),
        HosterLink("Streamtape", GER_DUB, "r/3"),
        HosterLink("voe", GER_DUB, "r/4"),  # case as shown on the page does not matter
        HosterLink("VOE", ENG_DUB, "r/5"),  # unwanted language
        HosterLink("Mixdrop", GER_DUB, "r/6"),  # no resolver
        HosterLink("Streamtape", GER_DUB, "r/3"),  # duplicate offer
    ]
    ordered, unsupported = order_links(links, LANGS, ["VOE", "Vidoza", "Streamtape"])
    assert [link.redirect_url for link in ordered] == ["r/4", "r/3", "r/1", "r/2", "r/0"]
    assert [link.hoster for link in unsupported] == ["Mixdrop"]


async def test_candidates_follow_preference_and_resolve_lazily(origin, session, state):
    provider = TinyProvider(
        origin,
        [
            ("Vidmoly", ENG_SUB, "e1"),
            ("Doodstream", GER_SUB, "s1"),
            ("Vidoza", GER_DUB, "d1"),
            ("VOE", GER_DUB, "d2"),
        ],
    )
    attempts = finder_for(provider, session).candidates("aniworld", "kaguya", 1, 1)
    first = await attempts.__anext__()
    assert (first.hoster, first.language) == ("VOE", GER_DUB)
    assert first.source.url == f"{origin}/media/voe-d2.mp4"
    assert first.embed_url == origin + embed_path("voe", "d2")
    # only the first offer was touched so far
    assert provider.resolved == ["3"]
    assert {e["hoster"] for e in state.request_log} == {"voe"}
    rest = [(c.hoster, c.language, c.source.kind) async for c in attempts]
    assert rest == [("Vidoza", GER_DUB, "mp4"), ("Doodstream", GER_SUB, "mp4"), ("Vidmoly", ENG_SUB, "hls")]
    assert attempts.failures == []


async def test_falls_back_past_dead_and_down_hosters_keeping_reasons(origin, session, state):
    state.dead_codes.add("dead1")
    state.down_hosters.add("speedfiles")
    provider = TinyProvider(
        origin,
        [
            ("VOE", GER_DUB, "dead1"),
            ("SpeedFiles", GER_DUB, "sf1"),
            ("Vidoza", GER_DUB, "ok1"),
            ("Streamtape", GER_SUB, "ok2"),
        ],
        broken_redirects={"2"},
    )
    finder = finder_for(provider, session, hosters=["VOE", "SpeedFiles", "Vidoza", "Streamtape"])
    attempts = finder.candidates("aniworld", "kaguya", 1, 1)
    got = [(c.hoster, c.language) async for c in attempts]
    assert got == [("Streamtape", GER_SUB)]
    reasons = [(f.hoster, f.language, f.reason) for f in attempts.failures]
    assert reasons[0] == ("VOE", GER_DUB, "file not found (HTTP 404)")
    assert reasons[1] == ("SpeedFiles", GER_DUB, "web server is down")
    assert reasons[2][:2] == ("Vidoza", GER_DUB) and "redirect" in reasons[2][2]
    assert finder.failures == attempts.failures

    best = await finder.first("aniworld", "kaguya", 1, 1)
    assert best.hoster == "Streamtape"
    assert best.source.url.startswith(f"{origin}/streamtape/get_video?id=ok2&")


async def test_download_failure_recorded_and_no_source_error_lists_all(origin, session, state):
    state.dead_codes.update({"a", "b"})
    state.down_hosters.add("filemoon")
    provider = TinyProvider(
        origin,
        [
            ("Vidoza", GER_DUB, "a"),
            ("Filemoon", GER_SUB, "c"),
            ("Luluvdo", ENG_SUB, "b"),
            ("Mixdrop", GER_DUB, "z"),
        ],
    )
    finder = finder_for(provider, session)
    with pytest.raises(NoSourceError) as err:
        await finder.first("aniworld", "kaguya", 2, 11)
    hosters = [f.hoster for f in err.value.failures]
    assert hosters == ["Mixdrop", "Vidoza", "Filemoon", "Luluvdo"]
    message = str(err.value)
    assert "kaguya S02E011" in message
    assert "Vidoza (ger-dub): file not found or deleted" in message
    assert "Filemoon (ger-sub): hoster answered HTTP 503" in message
    assert "Mixdrop (ger-dub): unsupported hoster" in message

    # a candidate that resolves but then fails to download ends up in the same list
    state.dead_codes.clear()
    attempts = finder.candidates("aniworld", "kaguya", 2, 11)
    async for cand in attempts:
        attempts.record(cand.hoster, cand.language, "download failed: HTTP Error 404")
    error = attempts.error()
    assert [(f.hoster, f.reason) for f in error.failures] == [
        ("Mixdrop", "unsupported hoster"),
        ("Vidoza", "download failed: HTTP Error 404"),
        ("Filemoon", "hoster answered HTTP 503 for /filemoon/e/c"),
        ("Luluvdo", "download failed: HTTP Error 404"),
    ]


async def test_no_wanted_language(origin, session):
    provider = TinyProvider(origin, [("VOE", ENG_DUB, "x"), ("Vidoza", ENG_DUB, "y")])
    with pytest.raises(NoSourceError) as err:
        await finder_for(provider, session).first("sto", "the-office-us", 1, 1)
    assert err.value.failures == []
    assert "no hoster offers a wanted language (offered: eng-dub)" in str(err.value)
    assert provider.resolved == []
    # an explicit language list overrides the configured preference
    cand = await finder_for(provider, session).first("sto", "the-office-us", 1, 1, languages=[ENG_DUB])
    assert (cand.hoster, cand.language) == ("VOE", ENG_DUB)


async def test_provider_listing_error_propagates(origin, session):
    provider = TinyProvider(origin, [])
    provider.fail_listing = ProviderError("aniworld: 503 after 3 retries")
    with pytest.raises(ProviderError, match="503 after 3 retries"):
        await finder_for(provider, session).first("aniworld", "kaguya", 1, 1)
