"""The data behind the fake aniworld.to / s.to: which series exist, their seasons, episodes and offers.

Pages are rendered from this data (sites.py), so a test can define series the parser has never seen:
other titles, season and episode counts, languages and hosters per episode, movies or none.
`default_catalog()` holds the fixture series (Kaguya-sama on aniworld, The Office (US) on s.to) with
exactly the fixture data, plus the other series the fixture search answers mention.

Identifiers a test may need are derived deterministically from (site, key, season, episode, language,
hoster): episode ids, aniworld link ids (`/redirect/<id>`), s.to play tokens (`/r?t=<token>`) and
the hoster file code used in the embed URL. Fixture values are kept as overrides.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

ANIWORLD = "aniworld"
STO = "sto"

GER_DUB, GER_SUB, ENG_SUB, ENG_DUB = "ger-dub", "ger-sub", "eng-sub", "eng-dub"
#: Order in which each site shows languages (flags, language box, hoster list).
SITE_LANGUAGES = {ANIWORLD: (GER_DUB, GER_SUB, ENG_SUB, ENG_DUB), STO: (GER_DUB, ENG_DUB, GER_SUB, ENG_SUB)}

_KEY_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


@dataclass
class Episode:
    """One episode (or movie in season 0) and its offers: language -> hoster names in page order."""

    number: int
    title_de: str = ""
    title_en: str = ""
    links: dict[str, list[str]] = field(default_factory=dict)
    episode_id: int | None = None
    #: (language, hoster) -> fixed link id (aniworld) / token (s.to) / hoster code, when a test or
    #: the fixture data needs a specific value; everything else is derived.
    link_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    codes: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Render the last language flag of this row lazily (placeholder `src`, real file in `data-src`).
    lazy_flag: bool = False

    def languages(self, site: str) -> list[str]:
        return [lang for lang in SITE_LANGUAGES[site] if self.links.get(lang)]

    def hoster_union(self, site: str) -> list[str]:
        names: list[str] = []
        for lang in self.languages(site):
            for hoster in self.links[lang]:
                if hoster not in names:
                    names.append(hoster)
        return names


@dataclass
class Series:
    site: str
    key: str
    title: str
    #: season number -> episodes; season 0 holds the movies (aniworld `/filme`).
    seasons: dict[int, list[Episode]] = field(default_factory=dict)
    alt_titles: list[str] = field(default_factory=list)
    description: str = ""
    search_description: str | None = None
    genres: list[str] = field(default_factory=list)
    start_year: int | None = None
    end_year: int | None = None
    fsk: int | None = None
    imdb_id: str | None = None
    series_id: int | None = None
    cover_token: str | None = None
    backdrop_token: str | None = None
    rating: tuple[str, int] = ("4.2", 100)
    directors: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    producers: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.site not in (ANIWORLD, STO):
            raise ValueError(f"unknown site {self.site!r}")
        if not _KEY_RE.match(self.key):
            raise ValueError(f"invalid key {self.key!r}")
        if self.series_id is None:
            self.series_id = 1000 + int.from_bytes(_digest(self.site, self.key)[:3], "big") % 9000
        token = _digest("cover", self.key)
        if self.cover_token is None:
            if self.site == ANIWORLD:
                self.cover_token = base64.b64encode(token).decode()[:32].replace("+", "x").replace("/", "y")
            else:
                self.cover_token = f"{self.key}-{token.hex()[:8]}"
        if self.backdrop_token is None:
            self.backdrop_token = token.hex()[-12:]

    # -- structure -----------------------------------------------------------------------------

    @property
    def regular_seasons(self) -> list[int]:
        return sorted(n for n, eps in self.seasons.items() if n > 0 and eps)

    @property
    def has_movies(self) -> bool:
        return bool(self.seasons.get(0))

    def episode(self, season: int, number: int) -> Episode | None:
        for ep in self.seasons.get(season, []):
            if ep.number == number:
                return ep
        return None

    def episode_id(self, season: int, ep: Episode) -> int:
        if ep.episode_id is not None:
            return ep.episode_id
        return 10000 + int.from_bytes(_digest(self.site, self.key, season, ep.number)[:4], "big") % 890000

    # -- derived identifiers ---------------------------------------------------------------------

    def link_id(self, season: int, ep: Episode, language: str, hoster: str) -> int:
        fixed = ep.link_ids.get((language, hoster))
        if fixed is not None:
            return fixed
        raw = _digest("link", self.site, self.key, season, ep.number, language, hoster)
        return 1_000_000 + int.from_bytes(raw[:4], "big") % 8_999_999

    def token(self, season: int, ep: Episode, language: str, hoster: str) -> str:
        """The s.to play token (already URL-encoded, as in `data-play-url`)."""
        fixed = ep.tokens.get((language, hoster))
        if fixed is not None:
            return fixed
        raw = _digest("token", self.site, self.key, season, ep.number, language, hoster)
        iv = base64.b64encode(raw[:16]).decode()
        value = base64.b64encode(raw[:16] + _digest("v", raw) + raw[16:]).decode()
        body = {"iv": iv, "value": value, "mac": _digest("mac", raw).hex(), "tag": ""}
        return quote(base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode(), safe="")

    def code(self, season: int, ep: Episode, language: str, hoster: str) -> str:
        """The hoster file code in the embed URL (stable per site, key, season, episode, language, hoster)."""
        fixed = ep.codes.get((language, hoster))
        if fixed is not None:
            return fixed
        return _digest("code", self.site, self.key, season, ep.number, language, hoster).hex()[:12]

    def offers(self):
        """Every (season, episode, language, hoster) offered, in page order."""
        for season in sorted(self.seasons):
            for ep in self.seasons[season]:
                for lang in ep.languages(self.site):
                    for hoster in ep.links[lang]:
                        yield season, ep, lang, hoster


@dataclass(frozen=True)
class Offer:
    series: Series
    season: int
    episode: Episode
    language: str
    hoster: str

    @property
    def code(self) -> str:
        return self.series.code(self.season, self.episode, self.language, self.hoster)

    def info(self) -> dict:
        return {
            "site": self.series.site,
            "key": self.series.key,
            "season": self.season,
            "episode": self.episode.number,
            "language": self.language,
            "hoster": self.hoster,
            "code": self.code,
        }


class Catalog:
    """All series of both fake sites; tests may add, replace or change series while the site runs."""

    def __init__(self, series: list[Series] | None = None) -> None:
        self._series: dict[tuple[str, str], Series] = {}
        for s in series or []:
            self.add(s)

    def add(self, series: Series) -> Series:
        self._series[(series.site, series.key)] = series
        return series

    def remove(self, site: str, key: str) -> None:
        self._series.pop((site, key), None)

    def get(self, site: str, key: str) -> Series | None:
        return self._series.get((site, key))

    def all(self, site: str | None = None) -> list[Series]:
        return [s for (s_site, _), s in self._series.items() if site is None or s_site == site]

    def search(self, site: str, term: str) -> list[Series]:
        needle = term.strip().lower()
        if not needle:
            return []
        return [
            s
            for s in self.all(site)
            if needle in s.title.lower() or any(needle in alt.lower() for alt in s.alt_titles)
        ]

    def _offers(self, site: str):
        for series in self.all(site):
            for season, ep, lang, hoster in series.offers():
                yield Offer(series, season, ep, lang, hoster)

    def by_link_id(self, link_id: int) -> Offer | None:
        for offer in self._offers(ANIWORLD):
            if offer.series.link_id(offer.season, offer.episode, offer.language, offer.hoster) == link_id:
                return offer
        return None

    def by_token(self, token: str) -> Offer | None:
        """`token` as received (URL-decoded) or as written in the page (encoded)."""
        for offer in self._offers(STO):
            mine = offer.series.token(offer.season, offer.episode, offer.language, offer.hoster)
            if token in (mine, _unquote(mine)):
                return offer
        return None

    def by_code(self, code: str) -> Offer | None:
        for site in (ANIWORLD, STO):
            for offer in self._offers(site):
                if offer.code == code:
                    return offer
        return None


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


# -- building series for tests ---------------------------------------------------------------------


def make_series(
    site: str,
    key: str,
    title: str,
    episodes: dict[int, int] | None = None,
    *,
    languages: list[str] | None = None,
    hosters: list[str] | None = None,
    movies: int = 0,
    **fields,
) -> Series:
    """A series with generated episode titles: `episodes` is {season: episode count}.

    Every episode offers every language in `languages` with every hoster in `hosters`;
    change single episodes afterwards (`series.episode(2, 3).links = {...}`) for uneven cases.
    """
    if languages is None:
        languages = [GER_DUB, GER_SUB, ENG_SUB] if site == ANIWORLD else [GER_DUB, ENG_DUB]
    hosters = hosters or ["VOE", "Vidoza"]
    seasons: dict[int, list[Episode]] = {}
    for season, count in sorted((episodes if episodes is not None else {1: 3}).items()):
        seasons[season] = [
            Episode(
                number=n,
                title_de=f"{title} Folge {season}-{n}",
                title_en=f"{title} Episode {season}-{n}",
                links={lang: list(hosters) for lang in languages},
                lazy_flag=(season * 3 + n) % 7 == 0,
            )
            for n in range(1, count + 1)
        ]
    if movies:
        seasons[0] = [
            Episode(
                number=n,
                title_de="",
                title_en=f"{title} - The Movie {n}",
                links={lang: list(hosters) for lang in languages},
            )
            for n in range(1, movies + 1)
        ]
    fields.setdefault("description", f"{title}: eine Serie, die es nur in Tests gibt.")
    return Series(site=site, key=key, title=title, seasons=seasons, **fields)


# -- the fixture series -------------------------------------------------------------------------------

_KAGUYA_S1 = [
    (30412, "Kinokarten und Kriegslisten", "Movie Tickets and Battle Plans"),
    (30413, "Die Sache mit dem Bento", "The Matter of the Lunchbox"),
    (30414, "Chika & der Liebesdetektor", "Chika and the Love Detector"),
    (30415, "Ein Regenschirm für zwei", "One Umbrella, Two People"),
    (30416, "Der Schülerrat spielt „NG-Wort“", "The Council Plays the NG Word Game"),
    (30417, "Kaguya will's wissen", "Kaguya Wants to Know"),
    (30418, "Hausaufgaben um Mitternacht", "Homework at Midnight"),
    (30419, "Das Handy-Dilemma", "The Phone Dilemma"),
    (30420, 'Sommerferien "planen"', 'Planning "Summer Break"'),
    (30421, "Feuerwerk über Tokio", "Fireworks Over Tokyo"),
    (30422, "Zwei Seiten einer Medaille", "Two Sides of a Coin"),
    (30423, "Das Ende des Sommers", "The End of Summer"),
]
_KAGUYA_S2 = [
    (30589, "Neues Schuljahr, alte Fehden", "New Term, Old Feuds"),
    (30590, "Der Kampf um das Sportfest", "The Battle for Sports Day"),
    (30591, "Iino tritt an", "Iino Steps Up"),
    (30592, "Ishigamis Geheimnis", "Ishigami's Secret"),
    (30593, "Kakao & Kekse", "Cocoa & Cookies"),
    (30594, "Die Wahl", "The Election"),
    (30595, "Prüfungsangst", "Exam Jitters"),
    (30596, "Valentinstag (Teil 1)", "Valentine's Day (Part 1)"),
    (30597, "Valentinstag (Teil 2)", "Valentine's Day (Part 2)"),
    (30598, "Weihnachtsgeschenke", "Christmas Presents"),
    (30599, "Der Rat tagt", "The Council Is in Session"),
    (30600, "Schnee in der Nacht", "Snow at Night"),
]
_KAGUYA_S3 = [
    (61190, "Ultra Romantisch", "Ultra Romantic"),
    (61191, "Miko will helfen", "Miko Wants to Help"),
    (61192, "Das Kulturfest naht", "The Culture Festival Approaches"),
    (61193, "Herzchen-Luftballons", "Heart-Shaped Balloons"),
    (61194, "Chika übt Rap", "Chika Practices Rap"),
    (61195, "Der verlorene Ohrring", "The Lost Earring"),
    (61196, "Geständnis verboten", "No Confessions Allowed"),
    (61197, "Ein Plan ohne Lücken", "A Plan Without Gaps"),
    (61198, "Der erste Festtag", "The First Festival Day"),
    (61199, "Der zweite Festtag", "The Second Festival Day"),
    (61200, "Kaguya & Shirogane", "Kaguya and Shirogane"),
    (61201, "Nach dem Feuer", "After the Fire"),
    (61202, "", "The First Kiss"),
]
_OFFICE_S1 = [
    (88101, "Die Pilotfolge", "Pilot"),
    (88102, "Vielfalt im Büro", "Diversity Day"),
    (88103, "Krankenversicherung", "Health Care"),
    (88104, "Die Allianz", "The Alliance"),
    (88105, "Basketball", "Basketball"),
    (88106, "Die Neue", "Hot Girl"),
]
_OFFICE_S2 = [
    (88201, "Die Dundies", "The Dundies"),
    (88202, "Sexuelle Belästigung", "Sexual Harassment"),
    (88203, "Büro-Olympiade", "Office Olympics"),
    (88204, "Das Feuer", "The Fire"),
    (88205, "Halloween", "Halloween"),
    (88206, "Der Kampf", "The Fight"),
    (88207, "Der Kunde", "The Client"),
    (88208, "Mitarbeitergespräch", "Performance Review"),
    (88209, "E-Mail-Überwachung", "E-Mail Surveillance"),
    (88210, "Weihnachtsfeier", "Christmas Party"),
    (88211, "Die Bootsfahrt", "Booze Cruise"),
    (88212, "Die Verletzung", "The Injury"),
    (88213, "Das Geheimnis", "The Secret"),
    (88214, "Der Teppich", "The Carpet"),
    (88215, "Jungs & Mädels", "Boys and Girls"),
    (88216, "Valentinstag", "Valentine's Day"),
    (88217, "Dwights Rede", "Dwight's Speech"),
    (88218, "Töchtertag", "Take Your Daughter to Work Day"),
    (88219, "Michaels Geburtstag", "Michael's Birthday"),
    (88220, "Drogentest", "Drug Testing"),
    (88221, "Konfliktlösung", "Conflict Resolution"),
    (88222, "Casino-Abend", "Casino Night"),
]

_OFFICE_TOKENS = {
    (
        GER_DUB,
        "VOE",
    ): "eyJpdiI6IkM4ZENJdnorcExsdEpoQ2xXMENLUUE9PSIsInZhbHVlIjoiQzhkQ0l2eitwTGx0SmhDbFcwQ0tRQkNJVjJPN3RnQmR1YnRYNnNYR1dRMEx4MElpL1A2a3VXMG1FS1ZiUUlwQSIsIm1hYyI6ImQzYmMxODBkZTIzMmZlNzJkMTA4ZjlkOTBlNTNjMTExODM5MGZmZjA5YzVhOTQ4ZDVjNTJjOWI4NTAyYTc3NWMiLCJ0YWciOiIifQ%3D%3D",  # noqa: E501
    (
        GER_DUB,
        "Vidoza",
    ): "eyJpdiI6IkQ2STNuaHVFWkxoWExRdzBvZmRQT2c9PSIsInZhbHVlIjoiRDZJM25odUVaTGhYTFF3MG9mZFBPcGZkb3kySVFuMENNUkFySkZGSm1tTVBvamVlRzRSa3VGY3RERFNoOTA4NiIsIm1hYyI6IjYwZGRjZmE2OTMxOTcyMWRjOTc3YmU5MTI2MTMyN2Q1NDBhN2RmMTY3ZWU1NjU3Mjg1YTQ5MmRlOTNjZTlmNmQiLCJ0YWciOiIifQ%3D%3D",  # noqa: E501
    (
        GER_DUB,
        "Doodstream",
    ): "eyJpdiI6Ikx2TTN2QmtObXlvRzZkeFhSVGFOdUE9PSIsInZhbHVlIjoiTHZNM3ZCa05teW9HNmR4WFJUYU51TTlUbGRNdU51cnJjM0xsc2dXOVRZY3U4emU4R1EyYktnYnAzRmRGTm8yNCIsIm1hYyI6ImJhNzIzYzI2MWY5MTdhNjA0Y2ZlMzUwN2QwMTg0NDkzN2UyMTAyNzFlMDM3MjRkYmU3MDQ1MjA2OGM1NzFkNGQiLCJ0YWciOiIifQ%3D%3D",  # noqa: E501
    (
        ENG_DUB,
        "VOE",
    ): "eyJpdiI6ImVjZGRSbmdYdE5BT1grNXZCOXVUMHc9PSIsInZhbHVlIjoiZWNkZFJuZ1h0TkFPWCs1dkI5dVQwMWVHMEVpcXlqWVBWZ0M1VytpeDNBWjV4MTFHZUJlMDBBNWY3bThIMjVQVCIsIm1hYyI6Ijk0YTA2MmQ2OWIzNjI3ODE0ZjkxZWFlODAzZTNmM2QzZjJjYWM2ZTliZThmYmQ3MDU1Njg1ZDViOWY0ZDQ2Y2EiLCJ0YWciOiIifQ%3D%3D",  # noqa: E501
    (
        ENG_DUB,
        "Vidmoly",
    ): "eyJpdiI6Ik5iZ1J1SDBDK2JSeGhoT2pEY3RrZUE9PSIsInZhbHVlIjoiTmJnUnVIMEMrYlJ4aGhPakRjdGtlRmd4MUE3ZEdkWmk5bmJFQy93d0pwYzF1Qkc0ZlFMNXRIR0dFNk1OeTJSNCIsIm1hYyI6IjViODYwNWJkNmI5YzVkNDdjYWVhYzczM2MyYzM0OWMzMzk1ZGU1NjRlOGNiYTQxNzFhYzllN2UzZGE2ZGQxYWYiLCJ0YWciOiIifQ%3D%3D",  # noqa: E501
}


def _kaguya_links(season: int, number: int) -> dict[str, list[str]]:
    """Per-language offers consistent with the fixture season tables (episode pages where we have them)."""
    if season == 1:
        return {
            GER_DUB: ["VOE", "Vidoza", "Vidmoly", "Doodstream"],
            GER_SUB: ["VOE", "Vidoza", "Doodstream"],
            ENG_SUB: ["VOE", "Vidmoly"],
        }
    if season == 2:
        if number >= 11:
            return {GER_SUB: ["VOE", "Filemoon", "Vidmoly"]}
        return {GER_DUB: ["VOE", "Filemoon", "Vidmoly"], GER_SUB: ["VOE", "Filemoon"]}
    if number >= 11:
        return {
            GER_SUB: ["VOE", "Filemoon", "Streamtape", "SpeedFiles"],
            ENG_SUB: ["Luluvdo", "VOE", "Filemoon"],
        }
    return {GER_DUB: ["VOE", "Vidmoly"], GER_SUB: ["VOE", "Vidmoly"], ENG_SUB: ["VOE"]}


def kaguya() -> Series:
    seasons: dict[int, list[Episode]] = {}
    for season, rows in ((1, _KAGUYA_S1), (2, _KAGUYA_S2), (3, _KAGUYA_S3)):
        seasons[season] = [
            Episode(number=i, title_de=de, title_en=en, links=_kaguya_links(season, i), episode_id=eid)
            for i, (eid, de, en) in enumerate(rows, start=1)
        ]
    seasons[1][3].lazy_flag = True  # S1E4: the English Sub flag is loaded lazily
    seasons[2][6].lazy_flag = True  # S2E7: the German Sub flag is loaded lazily
    seasons[1][0].link_ids = {
        (GER_DUB, "VOE"): 2718301,
        (GER_DUB, "Vidoza"): 2718302,
        (GER_DUB, "Vidmoly"): 2931177,
        (GER_DUB, "Doodstream"): 2718305,
        (GER_SUB, "VOE"): 2718122,
        (GER_SUB, "Vidoza"): 2718123,
        (GER_SUB, "Doodstream"): 2718127,
        (ENG_SUB, "VOE"): 1990214,
        (ENG_SUB, "Vidmoly"): 3316540,
    }
    seasons[3][12].link_ids = {
        (GER_SUB, "VOE"): 3890011,
        (GER_SUB, "Filemoon"): 3890012,
        (GER_SUB, "Streamtape"): 3890014,
        (GER_SUB, "SpeedFiles"): 3890019,
        (ENG_SUB, "Luluvdo"): 3891102,
        (ENG_SUB, "VOE"): 3891100,
        (ENG_SUB, "Filemoon"): 3891101,
    }
    movie = Episode(
        number=1,
        title_de="",
        title_en="Kaguya-sama: Love is War - The First Kiss That Never Ends",
        links={GER_DUB: ["VOE", "Vidoza"], GER_SUB: ["VOE"]},
        episode_id=44012,
        link_ids={(GER_DUB, "VOE"): 3120077, (GER_DUB, "Vidoza"): 3120078, (GER_SUB, "VOE"): 3119903},
    )
    seasons[0] = [movie]
    return Series(
        site=ANIWORLD,
        key="kaguya-sama-love-is-war",
        title="Kaguya-sama: Love is War",
        seasons=seasons,
        alt_titles=[
            "かぐや様は告らせたい",
            "Kaguya-sama wa Kokurasetai: Tensai-tachi no Ren'ai Zunousen",
            "Kaguya-sama: Love Is War",
        ],
        description=(
            "An der Shuchiin-Akademie, einer Schule für die Kinder der Elite, führen Schülerratspräsident "
            "Miyuki Shirogane und Vizepräsidentin Kaguya Shinomiya einen stillen Krieg: Beide sind längst "
            'ineinander verliebt, doch wer zuerst gesteht, hat verloren. Also schmieden die zwei "Genies" '
            "täglich neue Pläne, um den anderen zu einem Geständnis zu bringen – mit Liebesbriefen, "
            "Kinokarten & ausgeklügelten Fallen, die meistens nach hinten losgehen."
        ),
        search_description=(
            "An der Shuchiin-Akademie führen Schülerratspräsident Miyuki Shirogane und Vizepräsidentin "
            "Kaguya Shinomiya einen stillen Krieg ..."
        ),
        genres=["Romantische Komödie", "Komödie", "Romanze", "Schule", "EngSub", "Ger", "GerSub", "Seinen"],
        start_year=2019,
        end_year=2022,
        fsk=12,
        imdb_id="tt9522300",
        series_id=1147,
        cover_token="Qm3Zr8pLk2VbX9tYw4HcN7sA1dEf6GjU",
        backdrop_token="80df5017e14a",
        rating=("4.6", 2381),
        directors=["Mamoru Hatakeyama", "Shinya Watada"],
        actors=[
            "Aoi Koga",
            "Makoto Furukawa",
            "Konomi Kohara",
            "Ryota Suzuki",
            "Miyu Tomita",
            "Yume Miyamoto",
        ],
        producers=["A-1 Pictures"],
        countries=["Japan"],
    )


def the_office_us() -> Series:
    seasons: dict[int, list[Episode]] = {1: [], 2: []}
    for i, (eid, de, en) in enumerate(_OFFICE_S1, start=1):
        seasons[1].append(
            Episode(
                number=i,
                title_de=de,
                title_en=en,
                episode_id=eid,
                links={GER_DUB: ["VOE", "Vidoza", "Doodstream"], ENG_DUB: ["VOE", "Vidmoly"]},
            )
        )
    for i, (eid, de, en) in enumerate(_OFFICE_S2, start=1):
        links = {ENG_DUB: ["VOE", "Vidoza"]} if i >= 21 else {GER_DUB: ["VOE", "Vidoza"], ENG_DUB: ["VOE"]}
        seasons[2].append(Episode(number=i, title_de=de, title_en=en, episode_id=eid, links=links))
    first = seasons[1][0]
    first.link_ids = {
        (GER_DUB, "VOE"): 512001,
        (GER_DUB, "Vidoza"): 512002,
        (GER_DUB, "Doodstream"): 512003,
        (ENG_DUB, "VOE"): 512011,
        (ENG_DUB, "Vidmoly"): 512012,
    }
    first.tokens = dict(_OFFICE_TOKENS)
    return Series(
        site=STO,
        key="the-office-us",
        title="The Office (US)",
        seasons=seasons,
        description=(
            "Die Mockumentary begleitet den Alltag in der Filiale des Papiergroßhändlers Dunder Mifflin in "
            "Scranton, Pennsylvania. Regionalleiter Michael Scott hält sich für den witzigsten & "
            "beliebtesten Chef der Welt – seine Angestellten sehen das allerdings etwas anders."
        ),
        genres=["Comedy", "Mockumentary", "Sitcom"],
        start_year=2005,
        end_year=2013,
        fsk=12,
        imdb_id="tt0386676",
        cover_token="the-office-us-q3k9zt0b",
        directors=["Greg Daniels", "Paul Feig", "Ken Kwapis", "Randall Einhorn", "Jeffrey Blitz"],
        actors=[
            "Steve Carell",
            "Rainn Wilson",
            "John Krasinski",
            "Jenna Fischer",
            "B.J. Novak",
            "Ed Helms",
            "Angela Kinsey",
        ],
        producers=["Greg Daniels", "Ricky Gervais", "Stephen Merchant", "Ben Silverman"],
        countries=["USA"],
    )


def default_catalog() -> Catalog:
    """The fixture series plus the neighbours the fixture search answers list."""
    legend = make_series(
        ANIWORLD,
        "die-legende-der-prinzessin-kaguya",
        "Die Legende der Prinzessin Kaguya",
        {},
        movies=1,
        languages=[GER_DUB, GER_SUB, ENG_SUB, ENG_DUB],  # the key-4 (English Dub) rows on aniworld
        description="Ein alter Bambussammler findet in einem leuchtenden Bambusrohr ein winziges Mädchen, "
        "das schnell zu einer schönen jungen Frau heranwächst.",
        search_description="Ein alter Bambussammler findet in einem leuchtenden Bambusrohr ein winziges "
        "Mädchen ...",
        start_year=2013,
        end_year=2013,
        genres=["Drama", "Fantasy"],
    )
    return Catalog(
        [
            kaguya(),
            legend,
            the_office_us(),
            make_series(
                STO,
                "the-office-uk",
                "The Office (UK)",
                {1: 6, 2: 6},
                start_year=2001,
                end_year=2003,
                genres=["Comedy", "Mockumentary"],
            ),
            make_series(STO, "officer-downe", "Officer Downe", {1: 1}, start_year=2016, genres=["Action"]),
        ]
    )
