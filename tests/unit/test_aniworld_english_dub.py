"""aniworld language key 4 = English Dub (flag `english.svg`, code `eng-dub`), as on s.to.

Our stored aniworld pages have no key-4 rows; the look-alike site renders them for the movie of
"Die Legende der Prinzessin Kaguya" (all four languages), and a page without the language box must still
map key 4 by itself.
"""

from __future__ import annotations

from aniworldd.providers import aniworld
from aniworldd.providers.common import SiteUrls
from tests.fakesite import sites
from tests.fakesite.catalog import ANIWORLD, ENG_DUB, default_catalog

BASE = "http://127.0.0.1:9999"
KEY = "die-legende-der-prinzessin-kaguya"


def test_key_4_and_english_flag_are_english_dub():
    assert aniworld.LANG_KEYS["4"] == ENG_DUB == "eng-dub"
    assert aniworld.FLAG_FILES["english.svg"] == ENG_DUB


def test_rendered_movie_row_and_episode_page_offer_english_dub():
    series = default_catalog().get(ANIWORLD, KEY)
    urls = SiteUrls(ANIWORLD, BASE)
    page_url = f"{BASE}/anime/stream/{KEY}/filme"
    (row,) = aniworld.parse_season_page(sites.aniworld_season_page(series, 0), page_url, urls, 0)
    assert row.languages == ["ger-dub", "ger-sub", "eng-sub", "eng-dub"]
    movie = series.episode(0, 1)
    links = aniworld.parse_episode_page(sites.aniworld_episode_page(series, 0, movie), page_url, urls)
    assert sorted({link.language for link in links}) == ["eng-dub", "eng-sub", "ger-dub", "ger-sub"]
    eng_dub = [link for link in links if link.language == ENG_DUB]
    assert [link.hoster for link in eng_dub] == movie.links[ENG_DUB]
    assert [link.redirect_url for link in eng_dub] == [
        f"{BASE}/redirect/{series.link_id(0, movie, ENG_DUB, h)}" for h in movie.links[ENG_DUB]
    ]


def test_key_4_without_language_box():
    html = """<ul class="row">
      <li class="episodeLink77" data-lang-key="4" data-link-id="77" data-link-target="/redirect/77">
        <div><a class="watchEpisode" href="/redirect/77"><h4>VOE</h4></a></div></li>
      <li class="episodeLink78" data-lang-key="9" data-link-id="78" data-link-target="/redirect/78">
        <div><a class="watchEpisode" href="/redirect/78"><h4>VOE</h4></a></div></li>
    </ul>"""
    urls = SiteUrls(ANIWORLD, BASE)
    links = aniworld.parse_episode_page(html, f"{BASE}/anime/stream/x/staffel-1/episode-1", urls)
    assert [(link.language, link.hoster, link.redirect_url) for link in links] == [
        ("eng-dub", "VOE", f"{BASE}/redirect/77")
    ]
