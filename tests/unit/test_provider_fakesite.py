"""The fake site renders the fixture shapes, and the parsers read series they have never seen.

1. For the fixture series the rendered pages are byte-identical to the stored fixture pages (apart
   from the per-page CSRF token and asset hash), so the fake is as hard to parse as the real shapes.
2. Series generated from catalog data (other titles, counts, languages, hosters, entities, empty
   titles, lazily loaded flags, movies or none) are parsed back into exactly that data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aniworldd.providers import aniworld, sto
from aniworldd.providers.common import SiteUrls
from tests.fakesite import sites
from tests.fakesite.catalog import (
    ANIWORLD,
    ENG_DUB,
    ENG_SUB,
    GER_DUB,
    GER_SUB,
    STO,
    Catalog,
    Episode,
    Series,
    default_catalog,
    make_series,
)
from tests.fakesite.state import FakeSiteState

PAGES = Path(__file__).resolve().parents[1] / "fixtures_pages"
BASE = "http://127.0.0.1:9999"


def _mask(text: str) -> str:
    text = re.sub(r'name="csrf-token" content="[0-9a-f]+"', "CSRF", text)
    return re.sub(r"app-[0-9a-f]{8}\.css", "app.css", text)


def _rendered() -> dict[str, str]:
    cat = default_catalog()
    k = cat.get(ANIWORLD, "kaguya-sama-love-is-war")
    o = cat.get(STO, "the-office-us")
    return {
        "aniworld/series-kaguya-sama-love-is-war.html": sites.aniworld_series_page(k),
        "aniworld/season-kaguya-sama-love-is-war-1.html": sites.aniworld_season_page(k, 1),
        "aniworld/season-kaguya-sama-love-is-war-2.html": sites.aniworld_season_page(k, 2),
        "aniworld/season-kaguya-sama-love-is-war-3.html": sites.aniworld_season_page(k, 3),
        "aniworld/filme-kaguya-sama-love-is-war.html": sites.aniworld_season_page(k, 0),
        "aniworld/episode-kaguya-sama-love-is-war-1-1.html": sites.aniworld_episode_page(
            k, 1, k.episode(1, 1)
        ),
        "aniworld/episode-kaguya-sama-love-is-war-3-13.html": sites.aniworld_episode_page(
            k, 3, k.episode(3, 13)
        ),
        "aniworld/film-kaguya-sama-love-is-war-1.html": sites.aniworld_episode_page(k, 0, k.episode(0, 1)),
        "sto/series-the-office-us.html": sites.sto_series_page(o),
        "sto/season-the-office-us-1.html": sites.sto_season_page(o, 1),
        "sto/season-the-office-us-2.html": sites.sto_season_page(o, 2),
        "sto/episode-the-office-us-1-1.html": sites.sto_episode_page(o, 1, o.episode(1, 1)),
    }


@pytest.mark.parametrize("name", sorted(_rendered()))
def test_fixture_series_render_exactly_like_the_fixture_pages(name):
    expected = (PAGES / name).read_text(encoding="utf-8")
    assert _mask(_rendered()[name]) == _mask(expected)


def test_fake_search_answers_parse_like_the_fixture_answers():
    state = FakeSiteState()
    aw_urls, sto_urls = SiteUrls(ANIWORLD, BASE), SiteUrls(STO, BASE)
    fake = aniworld.parse_search(sites.aniworld_search(state, "kaguya"), aw_urls)
    stored = aniworld.parse_search((PAGES / "aniworld/search-kaguya.json").read_text(), aw_urls)
    assert fake == stored
    fake = sto.parse_search(sites.sto_search(state, "office"), sto_urls)
    stored = sto.parse_search((PAGES / "sto/search-office.json").read_text(), sto_urls)
    assert fake == stored


def test_fake_search_answers_carry_the_noise_the_parser_must_drop():
    state = FakeSiteState()
    raw = sites.aniworld_search(state, "kaguya")
    assert "\\/" in raw  # slashes escaped like the real endpoint
    links = [item["link"] for item in json.loads(raw)]
    assert "/anime/stream/kaguya-sama-love-is-war/staffel-3/episode-13" in links
    assert "/anime/stream/kaguya-sama-love-is-war/filme" in links
    assert any(link.startswith("/support/frage/") for link in links)
    assert links.count("/anime/stream/kaguya-sama-love-is-war/") == 1  # duplicate with a trailing slash
    titles = [item["title"] for item in json.loads(raw)]
    assert "<em>Kaguya</em>-sama: Love is War" in titles
    shows = json.loads(sites.sto_search(state, "office"))["shows"]
    assert {
        "name": "The Office (US) - Staffel 1 Episode 1",
        "url": "/serie/the-office-us/staffel-1/episode-1",
    } in shows
    assert json.loads(sites.aniworld_search(state, "zzz-nothing")) == []


# -- generated series --------------------------------------------------------------------------------------


def tricky_aniworld() -> Series:
    series = make_series(
        ANIWORLD,
        "the-sword-s-edge-2",
        'The Sword\'s Edge & "Friends" <II>',
        {1: 5, 2: 2, 4: 3},
        hosters=["Filemoon", "VOE"],
        movies=2,
        alt_titles=["剣の刃", "Sword's Edge", "Tsurugi no Ha"],
        genres=["Action", "Abenteuer", "Drama", "Fantasy", "Komödie", "Mystery", "Psychologisch", "Shounen"],
        actors=["A One", "B Two", "C Three", "D Four", "E Five"],
        start_year=2021,
        fsk=16,
        imdb_id="tt0000001",
        description="Über & unter \"allem\" – ein Test mit <Sonderzeichen> und 'Apostrophen'. " * 3 + "Ende.",
    )
    ep = series.episode(1, 2)
    ep.title_de = ""
    ep.links = {ENG_SUB: ["Luluvdo", "VOE", "Streamtape", "SpeedFiles", "Vidmoly"]}
    series.episode(1, 3).links = {GER_SUB: ["VOE"], GER_DUB: ["Doodstream"]}
    series.episode(1, 3).lazy_flag = True
    series.episode(2, 1).title_en = 'It\'s "Quoted" & <Tagged>'
    series.episode(4, 3).links = {GER_DUB: ["Vidoza"], GER_SUB: ["Vidoza"], ENG_SUB: ["Vidoza"]}
    series.episode(4, 3).lazy_flag = True
    return series


def tricky_sto() -> Series:
    series = make_series(
        STO,
        "dark-matter-x",
        "Dark Matter: X & Y",
        {1: 4, 3: 2},
        hosters=["VOE", "Doodstream", "Vidmoly"],
        genres=["Drama", "Sci-Fi", "Mystery", "Thriller", "Horror"],
        directors=["Jane Doe", "John Roe"],
        start_year=2019,
        end_year=None,
    )
    series.episode(1, 2).links = {ENG_DUB: ["Vidmoly"]}
    series.episode(1, 3).title_en = ""
    series.episode(1, 4).title_de = 'Über "Alles" & mehr'
    series.episode(3, 1).links = {GER_DUB: ["VOE", "Vidoza", "Doodstream", "SpeedFiles"], ENG_DUB: ["VOE"]}
    return series


def _expected(series: Series, site: str, season: int) -> list[tuple]:
    return [
        (season, ep.number, ep.title_de, ep.title_en, ep.languages(site), ep.hoster_union(site))
        for ep in series.seasons[season]
    ]


def _got(episodes) -> list[tuple]:
    return [(e.season, e.number, e.title_de, e.title_en, e.languages, e.hosters) for e in episodes]


def test_generated_aniworld_series_parses_back_to_its_data():
    series = tricky_aniworld()
    urls = SiteUrls(ANIWORLD, BASE)
    url = f"https://aniworld.to/anime/stream/{series.key}"
    info, seasons = aniworld.parse_series_page(sites.aniworld_series_page(series), url, urls, series.key)
    assert info.title == series.title
    assert info.alt_titles == series.alt_titles
    assert info.genres == series.genres
    assert info.description == series.description
    assert (info.start_year, info.end_year, info.fsk, info.imdb_id) == (2021, None, 16, "tt0000001")
    assert sorted(seasons) == [0, 1, 2, 4]
    for season in (1, 2, 4, 0):
        html = sites.aniworld_season_page(series, season)
        assert _got(aniworld.parse_season_page(html, seasons[season], urls, season)) == _expected(
            series, ANIWORLD, season
        )
    for season, ep in ((1, series.episode(1, 2)), (1, series.episode(1, 3)), (0, series.episode(0, 2))):
        html = sites.aniworld_episode_page(series, season, ep)
        links = aniworld.parse_episode_page(html, url, urls)
        assert [(link.language, link.hoster) for link in links] == [
            (lang, h) for lang in ep.languages(ANIWORLD) for h in ep.links[lang]
        ]
        assert [link.redirect_url for link in links] == [
            f"{BASE}/redirect/{series.link_id(season, ep, lang, h)}"
            for lang in ep.languages(ANIWORLD)
            for h in ep.links[lang]
        ]


def test_generated_sto_series_parses_back_to_its_data():
    series = tricky_sto()
    urls = SiteUrls(STO, BASE)
    url = f"https://s.to/serie/{series.key}"
    info, seasons = sto.parse_series_page(sites.sto_series_page(series), url, urls, series.key)
    assert info.title == series.title
    assert info.genres == series.genres  # two of them only in the hidden "extra items"
    assert (info.start_year, info.end_year) == (2019, None)
    assert sorted(seasons) == [1, 3]
    for season in (1, 3):
        html = sites.sto_season_page(series, season)
        assert _got(sto.parse_season_page(html, seasons[season], urls, season)) == _expected(
            series, STO, season
        )
    ep = series.episode(3, 1)
    links = sto.parse_episode_page(sites.sto_episode_page(series, 3, ep), url, urls)
    assert [(link.language, link.hoster) for link in links] == [
        (lang, h) for lang in ep.languages(STO) for h in ep.links[lang]
    ]
    assert [link.redirect_url for link in links] == [
        f"{BASE}/r?t={series.token(3, ep, lang, h)}" for lang in ep.languages(STO) for h in ep.links[lang]
    ]


def test_sto_subtitled_languages_round_trip():
    series = make_series(STO, "anime-on-sto", "Anime on s.to", {1: 1}, languages=[GER_SUB, ENG_SUB])
    urls = SiteUrls(STO, BASE)
    (ep,) = sto.parse_season_page(sites.sto_season_page(series, 1), BASE, urls, 1)
    assert ep.languages == [GER_SUB, ENG_SUB]
    links = sto.parse_episode_page(sites.sto_episode_page(series, 1, series.episode(1, 1)), BASE, urls)
    assert {link.language for link in links} == {GER_SUB, ENG_SUB}


def test_catalog_identifiers_are_stable_unique_and_reversible():
    cat = Catalog([tricky_aniworld(), tricky_sto()] + default_catalog().all())
    seen_ids, seen_codes = set(), set()
    for series in cat.all():
        for season, ep, lang, hoster in series.offers():
            link_id = series.link_id(season, ep, lang, hoster)
            code = series.code(season, ep, lang, hoster)
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code)
            assert code not in seen_codes
            seen_codes.add(code)
            if series.site == ANIWORLD:
                assert link_id not in seen_ids
                seen_ids.add(link_id)
                offer = cat.by_link_id(link_id)
            else:
                offer = cat.by_token(series.token(season, ep, lang, hoster))
            assert (offer.series.key, offer.season, offer.episode.number, offer.language, offer.hoster) == (
                series.key,
                season,
                ep.number,
                lang,
                hoster,
            )
            assert cat.by_code(code).info()["code"] == code
    assert tricky_aniworld().code(1, Episode(1), GER_DUB, "VOE") == tricky_aniworld().code(
        1, Episode(1), GER_DUB, "VOE"
    )
