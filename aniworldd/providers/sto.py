"""s.to (series), current layout: `/serie/<key>/staffel-N/episode-M`, suggest API, `/r?t=` redirects.

Same approach as aniworld.py: BeautifulSoup + CSS selectors on stable hooks (`data-*` attributes,
class names); `parse_*` functions are pure so stored pages can be tested directly.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote

from bs4 import Tag

from aniworldd.providers.base import (
    ENG_DUB,
    ENG_SUB,
    GER_DUB,
    GER_SUB,
    SITE_STO,
    EpisodeInfo,
    HosterLink,
    ProviderError,
    SearchResult,
    SeriesInfo,
)
from aniworldd.providers.common import (
    SiteProvider,
    SiteUrls,
    attr,
    check_key,
    clean,
    fragment_text,
    image_source,
    is_valid_key,
    looks_like_json,
    node_text,
    sort_languages,
    soup,
    to_int,
    unique_links,
)
from aniworldd.providers.parsing import parse_off_loop

log = logging.getLogger(__name__)

#: `data-language-label` on hoster buttons (lowercased).
LANGUAGE_LABELS = {
    "deutsch": GER_DUB,
    "german": GER_DUB,
    "englisch": ENG_DUB,
    "english": ENG_DUB,
    "deutsch (untertitel)": GER_SUB,
    "englisch mit deutschem untertitel": GER_SUB,
    "englisch (untertitel)": ENG_SUB,
}
#: `data-language-id` fallback when the label is missing or unknown.
LANGUAGE_IDS = {"1": GER_DUB, "2": ENG_DUB, "3": GER_SUB}
#: Flag icons in the episode table: class name -> language.
FLAG_CLASSES = {
    "svg-flag-german": GER_DUB,
    "svg-flag-english": ENG_DUB,
    "svg-flag-japanese-german": GER_SUB,
    "svg-flag-english-german": GER_SUB,
    "svg-flag-japanese-english": ENG_SUB,
}

#: Both the current (`/serie/<key>`) and the old (`/serie/stream/<key>`) layout.
SERIES_PATH_RE = re.compile(r"^/serie/(?:stream/)?([^/]+)/?$")
SEASON_PATH_RE = re.compile(r"^/serie/(?:stream/)?([^/]+)/staffel-(\d+)/?$")
MOVIES_PATH_RE = re.compile(r"^/serie/(?:stream/)?([^/]+)/filme/?$")
EPISODE_PATH_RE = re.compile(
    r"^/serie/(?:stream/)?([^/]+)/(?:staffel-(\d+)/episode-(\d+)|filme/film-(\d+))/?$"
)


def parse_search(text: str, urls: SiteUrls) -> list[SearchResult]:
    """`/api/search/suggest` JSON (`{"shows": [{"name", "url"}]}`): series only, one per key."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProviderError(f"s.to search: expected JSON, got {text[:80]!r}") from exc
    if isinstance(data, dict):
        items = data.get("shows")
        if not isinstance(items, list):
            items = [i for v in data.values() if isinstance(v, list) for i in v]
    elif isinstance(data, list):
        items = data
    else:
        items = []
    results: list[SearchResult] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        link = item.get("url") or item.get("link") or ""
        if not isinstance(link, str) or not link:
            continue
        path = urls.site_path(urls.absolute(urls.base_url + "/", link)) or ""
        m = SERIES_PATH_RE.match(path)
        if not m or m.group(1) == "stream":
            continue
        key = m.group(1)
        if not is_valid_key(key) or key in seen:
            continue
        seen.add(key)
        name = fragment_text(str(item.get("name") or item.get("title") or "")) or key
        results.append(SearchResult(key=key, name=name, link=urls.url(f"/serie/{key}"), site=SITE_STO))
    return results


def parse_series_page(
    text: str, page_url: str, urls: SiteUrls, key: str
) -> tuple[SeriesInfo, dict[int, str]]:
    doc = soup(text)
    hero = doc.select_one("section.series-hero") or doc
    title = node_text(hero.select_one("h1"))
    if not title:
        raise ProviderError(f"s.to: no series title on {page_url} (not a series page?)")

    years: list[int] = []
    fsk = None
    meta = None
    for p in hero.select("p.text-muted, p.small"):
        if p.select_one('a[href*="/jahr/"]') or "FSK" in p.get_text():
            meta = p
            break
    if meta is not None:
        for a in meta.select('a[href*="/jahr/"]'):
            year = to_int(node_text(a))
            if year:
                years.append(year)
        m = re.search(r"FSK\s*(\d+)", meta.get_text(" "))
        fsk = int(m.group(1)) if m else None
    imdb_link = hero.select_one('a[href*="imdb.com/title/"]')
    m = re.search(r"tt\d+", attr(imdb_link, "href"))
    imdb = m.group(0) if m else None

    description = node_text(hero.select_one(".description-text"))
    genres: list[str] = []
    for group in hero.select("li.series-group"):
        label = node_text(group.select_one("strong")).rstrip(":").lower()
        if label.startswith("genre"):
            for a in group.select("a"):
                name = node_text(a)
                if name and name not in genres:
                    genres.append(name)

    cover = None
    img = hero.select_one('img[data-src*="/media/images/channel/"]') or hero.select_one("picture img")
    if img is not None and image_source(img):
        cover = urls.absolute(page_url, image_source(img))

    info = SeriesInfo(
        key=key,
        site=SITE_STO,
        link=urls.url(f"/serie/{key}"),
        title=title,
        description=description,
        genres=genres,
        start_year=years[0] if years else None,
        end_year=years[1] if len(years) > 1 else None,
        cover=cover,
        fsk=fsk,
        imdb_id=imdb,
    )
    nav = doc.select_one("#season-nav") or doc.select_one("nav.season-nav") or doc
    seasons: dict[int, str] = {}
    for a in nav.select("a[href]"):
        href = urls.absolute(page_url, attr(a, "href"))
        path = urls.site_path(href) or ""
        sm = SEASON_PATH_RE.match(path)
        if sm:
            seasons.setdefault(int(sm.group(2)), href)
        elif MOVIES_PATH_RE.match(path):
            seasons.setdefault(0, href)
    return info, dict(sorted(seasons.items()))


def _row_languages(row: Tag) -> set[str]:
    langs: set[str] = set()
    cell = row.select_one(".episode-language-cell") or row
    for flag in cell.select("svg, img, i, span"):
        for cls in flag.get("class", []):
            lang = FLAG_CLASSES.get(cls)
            if lang:
                langs.add(lang)
    if not langs:
        for flag in cell.select("[aria-label], img[title]"):
            lang = LANGUAGE_LABELS.get((attr(flag, "aria-label") or attr(flag, "title")).lower())
            if lang:
                langs.add(lang)
    return langs


def parse_season_page(text: str, page_url: str, urls: SiteUrls, season: int) -> list[EpisodeInfo]:
    doc = soup(text)
    rows = doc.select("tr.episode-row") or doc.select("table.episode-table tr[data-episode-id]")
    episodes: dict[tuple[int, int], EpisodeInfo] = {}
    for row in rows:
        link = row.select_one('a[href*="/episode-"]') or row.select_one('a[href*="/film-"]')
        url = urls.absolute(page_url, attr(link, "href")) if link is not None else ""
        row_season, number = season, None
        m = EPISODE_PATH_RE.match(urls.site_path(url) or "") if url else None
        if m:
            if m.group(4):
                row_season, number = 0, int(m.group(4))
            else:
                row_season, number = int(m.group(2)), int(m.group(3))
        if number is None:
            number = to_int(attr(row, "data-episode-number"))
        if number is None:
            number = to_int(node_text(row.select_one(".episode-number-cell")))
        if number is None:
            continue
        hosters: list[str] = []
        for icon in row.select("img.provider-icon"):
            name = attr(icon, "title") or attr(icon, "alt")
            if name and name not in hosters:
                hosters.append(name)
        ep = EpisodeInfo(
            season=row_season,
            number=number,
            title_de=node_text(row.select_one(".episode-title-ger")),
            title_en=node_text(row.select_one(".episode-title-eng")),
            languages=sort_languages(_row_languages(row)),
            hosters=hosters,
            url=url,
        )
        episodes.setdefault((ep.season, ep.number), ep)
    return sorted(episodes.values(), key=lambda e: (e.season, e.number))


def _button_language(button: Tag) -> str | None:
    label = clean(attr(button, "data-language-label")).lower()
    if label in LANGUAGE_LABELS:
        return LANGUAGE_LABELS[label]
    return LANGUAGE_IDS.get(attr(button, "data-language-id"))


def parse_episode_page(text: str, page_url: str, urls: SiteUrls) -> list[HosterLink]:
    doc = soup(text)
    links: list[HosterLink] = []
    for button in doc.select("[data-play-url]"):
        play = attr(button, "data-play-url")
        lang = _button_language(button)
        hoster = attr(button, "data-provider-name") or node_text(button.select_one(".fw-semibold"))
        if not play or not lang or not hoster:
            continue
        redirect = urls.absolute(page_url, play)
        link_id = attr(button, "data-link-id")
        links.append(HosterLink(hoster=hoster, language=lang, redirect_url=redirect, link_id=link_id))
    return unique_links(links)


class StoProvider(SiteProvider):
    """s.to (series)."""

    site = SITE_STO
    page_marker = 'id="season-nav"'
    parse_series_page = staticmethod(parse_series_page)
    parse_season_page = staticmethod(parse_season_page)
    parse_episode_page = staticmethod(parse_episode_page)

    def series_url(self, key: str) -> str:
        return self.urls.url(f"/serie/{check_key(key)}")

    async def search(self, query: str) -> list[SearchResult]:
        query = clean(query)
        if not query:
            return []
        page = await self.client.get(
            self.urls.url("/api/search/suggest?term=" + quote(query, safe="")),
            headers={
                "Accept": "application/json",
                "X-Requested-With": "XMLHttpRequest",
                "Sec-Fetch-Mode": "cors",
                "Sec-Fetch-Dest": "empty",
                "Sec-Fetch-Site": "same-origin",
            },
            expected=looks_like_json,
        )
        return await parse_off_loop(parse_search, page.text, self.urls)
