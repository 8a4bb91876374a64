"""Every stored fixture page parsed directly, with exact expected values.

The pages (tests/fixtures_pages/) are copies of the real-site shapes. Page URLs are given as the real
`https://aniworld.to/...` addresses while the configured base is a local origin, so the tests also show
that every link is resolved against the page and moved onto the configured base.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aniworldd.providers import aniworld, sto
from aniworldd.providers.common import SiteUrls

PAGES = Path(__file__).resolve().parents[1] / "fixtures_pages"
BASE = "http://127.0.0.1:9999"
AW = "https://aniworld.to/anime/stream/kaguya-sama-love-is-war"
ST = "https://s.to/serie/the-office-us"


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


@pytest.fixture
def aw_urls() -> SiteUrls:
    return SiteUrls("aniworld", BASE)


@pytest.fixture
def sto_urls() -> SiteUrls:
    return SiteUrls("sto", BASE)


# -- aniworld -------------------------------------------------------------------------------------------


def test_aniworld_search_keeps_series_only_deduplicated_and_cleaned(aw_urls):
    results = aniworld.parse_search(page("aniworld/search-kaguya.json"), aw_urls)
    assert [r.to_dict() for r in results] == [
        {
            "key": "kaguya-sama-love-is-war",
            "name": "Kaguya-sama: Love is War",
            "link": f"{BASE}/anime/stream/kaguya-sama-love-is-war",
            "site": "aniworld",
            "year": None,
        },
        {
            "key": "die-legende-der-prinzessin-kaguya",
            "name": "Die Legende der Prinzessin Kaguya",
            "link": f"{BASE}/anime/stream/die-legende-der-prinzessin-kaguya",
            "site": "aniworld",
            "year": None,
        },
    ]


def test_aniworld_series_page(aw_urls):
    info, seasons = aniworld.parse_series_page(
        page("aniworld/series-kaguya-sama-love-is-war.html"), AW, aw_urls, "kaguya-sama-love-is-war"
    )
    assert info.key == "kaguya-sama-love-is-war"
    assert info.site == "aniworld"
    assert info.link == f"{BASE}/anime/stream/kaguya-sama-love-is-war"
    assert info.title == "Kaguya-sama: Love is War"
    assert info.alt_titles == [
        "かぐや様は告らせたい",
        "Kaguya-sama wa Kokurasetai: Tensai-tachi no Ren'ai Zunousen",
        "Kaguya-sama: Love Is War",
    ]
    assert info.start_year == 2019
    assert info.end_year == 2022
    assert info.fsk == 12
    assert info.imdb_id == "tt9522300"
    assert info.description == (
        "An der Shuchiin-Akademie, einer Schule für die Kinder der Elite, führen Schülerratspräsident Miyuki "
        "Shirogane und Vizepräsidentin Kaguya Shinomiya einen stillen Krieg: Beide sind längst ineinander "
        'verliebt, doch wer zuerst gesteht, hat verloren. Also schmieden die zwei "Genies" täglich neue '
        "Pläne, um den anderen zu einem Geständnis zu bringen – mit Liebesbriefen, Kinokarten & "
        "ausgeklügelten Fallen, die meistens nach hinten losgehen."
    )
    assert info.genres == [
        "Romantische Komödie",
        "Komödie",
        "Romanze",
        "Schule",
        "EngSub",
        "Ger",
        "GerSub",
        "Seinen",
    ]
    assert info.cover == (
        f"{BASE}/public/img/cover/kaguya-sama-love-is-war-stream-cover-Qm3Zr8pLk2VbX9tYw4HcN7sA1dEf6GjU_220x330.jpg"
    )
    assert info.seasons == {}
    assert seasons == {
        0: f"{BASE}/anime/stream/kaguya-sama-love-is-war/filme",
        1: f"{BASE}/anime/stream/kaguya-sama-love-is-war/staffel-1",
        2: f"{BASE}/anime/stream/kaguya-sama-love-is-war/staffel-2",
        3: f"{BASE}/anime/stream/kaguya-sama-love-is-war/staffel-3",
    }


KAGUYA_TITLES = {
    1: [
        ("Kinokarten und Kriegslisten", "Movie Tickets and Battle Plans"),
        ("Die Sache mit dem Bento", "The Matter of the Lunchbox"),
        ("Chika & der Liebesdetektor", "Chika and the Love Detector"),
        ("Ein Regenschirm für zwei", "One Umbrella, Two People"),
        ("Der Schülerrat spielt „NG-Wort“", "The Council Plays the NG Word Game"),
        ("Kaguya will's wissen", "Kaguya Wants to Know"),
        ("Hausaufgaben um Mitternacht", "Homework at Midnight"),
        ("Das Handy-Dilemma", "The Phone Dilemma"),
        ('Sommerferien "planen"', 'Planning "Summer Break"'),
        ("Feuerwerk über Tokio", "Fireworks Over Tokyo"),
        ("Zwei Seiten einer Medaille", "Two Sides of a Coin"),
        ("Das Ende des Sommers", "The End of Summer"),
    ],
    2: [
        ("Neues Schuljahr, alte Fehden", "New Term, Old Feuds"),
        ("Der Kampf um das Sportfest", "The Battle for Sports Day"),
        ("Iino tritt an", "Iino Steps Up"),
        ("Ishigamis Geheimnis", "Ishigami's Secret"),
        ("Kakao & Kekse", "Cocoa & Cookies"),
        ("Die Wahl", "The Election"),
        ("Prüfungsangst", "Exam Jitters"),
        ("Valentinstag (Teil 1)", "Valentine's Day (Part 1)"),
        ("Valentinstag (Teil 2)", "Valentine's Day (Part 2)"),
        ("Weihnachtsgeschenke", "Christmas Presents"),
        ("Der Rat tagt", "The Council Is in Session"),
        ("Schnee in der Nacht", "Snow at Night"),
    ],
    3: [
        ("Ultra Romantisch", "Ultra Romantic"),
        ("Miko will helfen", "Miko Wants to Help"),
        ("Das Kulturfest naht", "The Culture Festival Approaches"),
        ("Herzchen-Luftballons", "Heart-Shaped Balloons"),
        ("Chika übt Rap", "Chika Practices Rap"),
        ("Der verlorene Ohrring", "The Lost Earring"),
        ("Geständnis verboten", "No Confessions Allowed"),
        ("Ein Plan ohne Lücken", "A Plan Without Gaps"),
        ("Der erste Festtag", "The First Festival Day"),
        ("Der zweite Festtag", "The Second Festival Day"),
        ("Kaguya & Shirogane", "Kaguya and Shirogane"),
        ("Nach dem Feuer", "After the Fire"),
        ("", "The First Kiss"),
    ],
}
ALL3 = ["ger-dub", "ger-sub", "eng-sub"]


def expected_kaguya(season: int, number: int) -> tuple[list[str], list[str]]:
    """(languages, hoster icons) of a row, as stated in the fixture README and visible in the pages."""
    if season == 1:
        return ALL3, ["VOE", "Vidoza", "Vidmoly", "Doodstream"]
    if season == 2:
        return (["ger-sub"] if number >= 11 else ["ger-dub", "ger-sub"]), ["VOE", "Filemoon", "Vidmoly"]
    if number >= 11:
        return ["ger-sub", "eng-sub"], ["VOE", "Filemoon", "Streamtape", "SpeedFiles", "Luluvdo"]
    return ALL3, ["VOE", "Vidmoly"]


@pytest.mark.parametrize("season", [1, 2, 3])
def test_aniworld_season_pages(aw_urls, season):
    url = f"{AW}/staffel-{season}"
    episodes = aniworld.parse_season_page(
        page(f"aniworld/season-kaguya-sama-love-is-war-{season}.html"), url, aw_urls, season
    )
    assert [(e.season, e.number) for e in episodes] == [
        (season, n) for n in range(1, len(KAGUYA_TITLES[season]) + 1)
    ]
    for ep, (de, en) in zip(episodes, KAGUYA_TITLES[season], strict=True):
        langs, hosters = expected_kaguya(season, ep.number)
        assert (ep.title_de, ep.title_en) == (de, en)
        assert ep.languages == langs, (season, ep.number)
        assert ep.hosters == hosters, (season, ep.number)
        assert ep.url == f"{BASE}/anime/stream/kaguya-sama-love-is-war/staffel-{season}/episode-{ep.number}"


def test_aniworld_lazy_flags_and_empty_german_title(aw_urls):
    s1 = aniworld.parse_season_page(page("aniworld/season-kaguya-sama-love-is-war-1.html"), AW, aw_urls, 1)
    s2 = aniworld.parse_season_page(page("aniworld/season-kaguya-sama-love-is-war-2.html"), AW, aw_urls, 2)
    s3 = aniworld.parse_season_page(page("aniworld/season-kaguya-sama-love-is-war-3.html"), AW, aw_urls, 3)
    assert s1[3].languages == ALL3  # the English Sub flag only has data-src
    assert s2[6].languages == ["ger-dub", "ger-sub"]  # the German Sub flag only has data-src
    assert s3[12].title_de == "" and s3[12].title == "The First Kiss"


def test_aniworld_series_page_carries_season_one_table(aw_urls):
    episodes = aniworld.parse_season_page(
        page("aniworld/series-kaguya-sama-love-is-war.html"), AW, aw_urls, 1
    )
    assert len(episodes) == 12 and episodes[0].title_de == "Kinokarten und Kriegslisten"


def test_aniworld_movies_page(aw_urls):
    movies = aniworld.parse_season_page(
        page("aniworld/filme-kaguya-sama-love-is-war.html"), f"{AW}/filme", aw_urls, 0
    )
    assert [m.to_dict() for m in movies] == [
        {
            "season": 0,
            "number": 1,
            "title_de": "",
            "title_en": "Kaguya-sama: Love is War - The First Kiss That Never Ends",
            "languages": ["ger-dub", "ger-sub"],
            "hosters": ["VOE", "Vidoza"],
            "url": f"{BASE}/anime/stream/kaguya-sama-love-is-war/filme/film-1",
        }
    ]


def _links(links):
    return [(link.language, link.hoster, link.link_id, link.redirect_url) for link in links]


def test_aniworld_episode_page_all_languages_including_hidden(aw_urls):
    links = aniworld.parse_episode_page(
        page("aniworld/episode-kaguya-sama-love-is-war-1-1.html"), f"{AW}/staffel-1/episode-1", aw_urls
    )
    expected = [
        ("ger-dub", "VOE", "2718301"),
        ("ger-dub", "Vidoza", "2718302"),
        ("ger-dub", "Vidmoly", "2931177"),
        ("ger-dub", "Doodstream", "2718305"),
        ("ger-sub", "VOE", "2718122"),
        ("ger-sub", "Vidoza", "2718123"),
        ("ger-sub", "Doodstream", "2718127"),
        ("eng-sub", "VOE", "1990214"),
        ("eng-sub", "Vidmoly", "3316540"),
    ]
    assert _links(links) == [(lang, h, i, f"{BASE}/redirect/{i}") for lang, h, i in expected]


def test_aniworld_episode_page_without_german_dub(aw_urls):
    links = aniworld.parse_episode_page(
        page("aniworld/episode-kaguya-sama-love-is-war-3-13.html"), f"{AW}/staffel-3/episode-13", aw_urls
    )
    expected = [
        ("ger-sub", "VOE", "3890011"),
        ("ger-sub", "Filemoon", "3890012"),
        ("ger-sub", "Streamtape", "3890014"),
        ("ger-sub", "SpeedFiles", "3890019"),
        ("eng-sub", "Luluvdo", "3891102"),
        ("eng-sub", "VOE", "3891100"),
        ("eng-sub", "Filemoon", "3891101"),
    ]
    assert _links(links) == [(lang, h, i, f"{BASE}/redirect/{i}") for lang, h, i in expected]


def test_aniworld_film_page(aw_urls):
    links = aniworld.parse_episode_page(
        page("aniworld/film-kaguya-sama-love-is-war-1.html"), f"{AW}/filme/film-1", aw_urls
    )
    expected = [
        ("ger-dub", "VOE", "3120077"),
        ("ger-dub", "Vidoza", "3120078"),
        ("ger-sub", "VOE", "3119903"),
    ]
    assert _links(links) == [(lang, h, i, f"{BASE}/redirect/{i}") for lang, h, i in expected]


# -- s.to -------------------------------------------------------------------------------------------------


def test_sto_search(sto_urls):
    results = sto.parse_search(page("sto/search-office.json"), sto_urls)
    assert [(r.key, r.name, r.link, r.site, r.year) for r in results] == [
        ("the-office-us", "The Office (US)", f"{BASE}/serie/the-office-us", "sto", None),
        ("the-office-uk", "The Office (UK)", f"{BASE}/serie/the-office-uk", "sto", None),
        ("officer-downe", "Officer Downe", f"{BASE}/serie/officer-downe", "sto", None),
    ]


def test_sto_series_page(sto_urls):
    info, seasons = sto.parse_series_page(
        page("sto/series-the-office-us.html"), ST, sto_urls, "the-office-us"
    )
    assert info.title == "The Office (US)"
    assert info.link == f"{BASE}/serie/the-office-us"
    assert (info.start_year, info.end_year, info.fsk, info.imdb_id) == (2005, 2013, 12, "tt0386676")
    assert info.description == (
        "Die Mockumentary begleitet den Alltag in der Filiale des Papiergroßhändlers Dunder Mifflin in "
        "Scranton, Pennsylvania. Regionalleiter Michael Scott hält sich für den witzigsten & beliebtesten "
        "Chef der Welt – seine Angestellten sehen das allerdings etwas anders."
    )
    assert info.genres == ["Comedy", "Mockumentary", "Sitcom"]
    assert info.alt_titles == []
    assert info.cover == f"{BASE}/media/images/channel/desktop/the-office-us-q3k9zt0b?format=jpg"
    assert seasons == {1: f"{BASE}/serie/the-office-us/staffel-1", 2: f"{BASE}/serie/the-office-us/staffel-2"}


OFFICE_TITLES = {
    1: [
        ("Die Pilotfolge", "Pilot"),
        ("Vielfalt im Büro", "Diversity Day"),
        ("Krankenversicherung", "Health Care"),
        ("Die Allianz", "The Alliance"),
        ("Basketball", "Basketball"),
        ("Die Neue", "Hot Girl"),
    ],
    2: [
        ("Die Dundies", "The Dundies"),
        ("Sexuelle Belästigung", "Sexual Harassment"),
        ("Büro-Olympiade", "Office Olympics"),
        ("Das Feuer", "The Fire"),
        ("Halloween", "Halloween"),
        ("Der Kampf", "The Fight"),
        ("Der Kunde", "The Client"),
        ("Mitarbeitergespräch", "Performance Review"),
        ("E-Mail-Überwachung", "E-Mail Surveillance"),
        ("Weihnachtsfeier", "Christmas Party"),
        ("Die Bootsfahrt", "Booze Cruise"),
        ("Die Verletzung", "The Injury"),
        ("Das Geheimnis", "The Secret"),
        ("Der Teppich", "The Carpet"),
        ("Jungs & Mädels", "Boys and Girls"),
        ("Valentinstag", "Valentine's Day"),
        ("Dwights Rede", "Dwight's Speech"),
        ("Töchtertag", "Take Your Daughter to Work Day"),
        ("Michaels Geburtstag", "Michael's Birthday"),
        ("Drogentest", "Drug Testing"),
        ("Konfliktlösung", "Conflict Resolution"),
        ("Casino-Abend", "Casino Night"),
    ],
}


@pytest.mark.parametrize("season", [1, 2])
def test_sto_season_pages(sto_urls, season):
    episodes = sto.parse_season_page(
        page(f"sto/season-the-office-us-{season}.html"), f"{ST}/staffel-{season}", sto_urls, season
    )
    assert [(e.title_de, e.title_en) for e in episodes] == OFFICE_TITLES[season]
    for ep in episodes:
        assert ep.season == season
        assert ep.url == f"{BASE}/serie/the-office-us/staffel-{season}/episode-{ep.number}"
        if season == 2 and ep.number >= 21:
            assert ep.languages == ["eng-dub"]
        else:
            assert ep.languages == ["ger-dub", "eng-dub"]
        assert ep.hosters == (
            ["VOE", "Vidoza", "Doodstream", "Vidmoly"] if season == 1 else ["VOE", "Vidoza"]
        )
    assert [e.number for e in episodes] == list(range(1, len(OFFICE_TITLES[season]) + 1))


def test_sto_series_page_carries_season_one_table(sto_urls):
    episodes = sto.parse_season_page(page("sto/series-the-office-us.html"), ST, sto_urls, 1)
    assert [(e.title_de, e.title_en) for e in episodes] == OFFICE_TITLES[1]


def test_sto_episode_page(sto_urls):
    links = sto.parse_episode_page(
        page("sto/episode-the-office-us-1-1.html"), f"{ST}/staffel-1/episode-1", sto_urls
    )
    assert [(link.language, link.hoster, link.link_id) for link in links] == [
        ("ger-dub", "VOE", "512001"),
        ("ger-dub", "Vidoza", "512002"),
        ("ger-dub", "Doodstream", "512003"),
        ("eng-dub", "VOE", "512011"),
        ("eng-dub", "Vidmoly", "512012"),
    ]
    for link in links:
        assert link.redirect_url.startswith(f"{BASE}/r?t=eyJpdiI6")
        assert link.redirect_url.endswith("%3D%3D")  # the token stays URL-encoded, exactly as in the page
    assert links[0].redirect_url == (
        f"{BASE}/r?t=eyJpdiI6IkM4ZENJdnorcExsdEpoQ2xXMENLUUE9PSIsInZhbHVlIjoiQzhkQ0l2eitwTGx0SmhDbFcwQ0tRQkNJVjJPN3Rn"
        "QmR1YnRYNnNYR1dRMEx4MElpL1A2a3VXMG1FS1ZiUUlwQSIsIm1hYyI6ImQzYmMxODBkZTIzMmZlNzJkMTA4ZjlkOTBlNTNjMTExODM5MGZm"
        "ZjA5YzVhOTQ4ZDVjNTJjOWI4NTAyYTc3NWMiLCJ0YWciOiIifQ%3D%3D"
    )


# -- robustness on markup the fixtures do not contain ------------------------------------------------------


def test_aniworld_row_without_links_or_meta_falls_back(aw_urls):
    html = """<table class="seasonEpisodesList"><tbody id="season4">
      <tr data-episode-id="1" data-episode-season-id="7">
        <td class="seasonEpisodeTitle"><strong> Titel&nbsp;A </strong>
      <span>Title
        B</span></td>
        <td class="editFunctions"><img class="flag" src="/public/img/japanese-english.svg?v=2"></td></tr>
    </tbody></table>"""
    (ep,) = aniworld.parse_season_page(html, f"{AW}/staffel-4", aw_urls, 4)
    assert (ep.season, ep.number, ep.title_de, ep.title_en, ep.languages) == (
        4,
        7,
        "Titel A",
        "Title B",
        ["eng-sub"],
    )


def test_search_rejects_non_json(aw_urls, sto_urls):
    from aniworldd.providers.base import ProviderError

    with pytest.raises(ProviderError):
        aniworld.parse_search("<html>Just a moment...</html>", aw_urls)
    with pytest.raises(ProviderError):
        sto.parse_search("", sto_urls)


def test_absolute_real_site_links_map_onto_the_configured_base(aw_urls, sto_urls):
    assert (
        aw_urls.absolute(AW, "https://aniworld.to/anime/stream/x/staffel-2")
        == f"{BASE}/anime/stream/x/staffel-2"
    )
    assert aw_urls.absolute(AW, "//www.aniworld.to/redirect/5") == f"{BASE}/redirect/5"
    assert aw_urls.absolute(f"{BASE}/anime/stream/x", "staffel-1") == f"{BASE}/anime/stream/staffel-1"
    assert sto_urls.absolute(ST, "/r?t=a%3D") == f"{BASE}/r?t=a%3D"
    assert sto_urls.absolute(ST, "https://voe.sx/e/abc") == "https://voe.sx/e/abc"  # other hosts stay
