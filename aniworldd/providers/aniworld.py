"""aniworld.to: search, series/season/movie pages and episode hoster links.

Parsing uses BeautifulSoup (stdlib `html.parser` builder) with CSS selectors, anchored on the site's
stable hooks (itemprops, `data-*` attributes, class names) rather than on attribute order or layout,
so reordered attributes, extra whitespace, entities and lazily loaded images do not matter.
The `parse_*` functions are pure (text in, data out) so they can be tested on stored pages.
"""

from __future__ import annotations

import json
import logging
import re

from bs4 import BeautifulSoup, Tag

from aniworldd.providers.base import (
    ENG_DUB,
    ENG_SUB,
    GER_DUB,
    GER_SUB,
    SITE_ANIWORLD,
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
    url_basename,
)
from aniworldd.providers.parsing import parse_off_loop

log = logging.getLogger(__name__)

#: `data-lang-key` on episode pages (4 = English Dub, flag `english.svg`, as the peer scraper maps it).
LANG_KEYS = {"1": GER_DUB, "2": ENG_SUB, "3": GER_SUB, "4": ENG_DUB}
#: Flag image file names on season pages and in the language box.
FLAG_FILES = {
    "german.svg": GER_DUB,
    "japanese-german.svg": GER_SUB,
    "japanese-english.svg": ENG_SUB,
    "english.svg": ENG_DUB,
}

SERIES_PATH_RE = re.compile(r"^/anime/stream/([^/]+)/?$")
SEASON_PATH_RE = re.compile(r"^/anime/stream/([^/]+)/staffel-(\d+)/?$")
MOVIES_PATH_RE = re.compile(r"^/anime/stream/([^/]+)/filme/?$")
EPISODE_PATH_RE = re.compile(r"^/anime/stream/([^/]+)/(?:staffel-(\d+)/episode-(\d+)|filme/film-(\d+))/?$")


# -- pure parsers ------------------------------------------------------------------------------------


def parse_search(text: str, urls: SiteUrls) -> list[SearchResult]:
    """The `/ajax/search` JSON: keep series links only, one result per key, clean titles."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise ProviderError(f"aniworld search: expected JSON, got {text[:80]!r}") from exc
    if isinstance(items, dict):  # tolerate {"results": [...]} style wrappers
        items = next((v for v in items.values() if isinstance(v, list)), [])
    results: list[SearchResult] = []
    seen: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        link = item.get("link") or item.get("url") or ""
        if not isinstance(link, str) or not link:
            continue
        absolute = urls.absolute(urls.base_url + "/", link)
        path = urls.site_path(absolute)
        m = SERIES_PATH_RE.match(path or "")
        if not m:
            continue
        key = m.group(1)
        if not is_valid_key(key) or key in seen:
            continue
        seen.add(key)
        name = fragment_text(str(item.get("title") or item.get("name") or "")) or key
        year = to_year(item.get("productionYear") or item.get("year"))
        results.append(
            SearchResult(
                key=key, name=name, link=urls.url(f"/anime/stream/{key}"), site=SITE_ANIWORLD, year=year
            )
        )
    return results


def to_year(value: object) -> int | None:
    if value is None:
        return None
    m = re.search(r"\b(19|20)\d\d\b", str(value))
    return int(m.group(0)) if m else None


def parse_series_page(
    text: str, page_url: str, urls: SiteUrls, key: str
) -> tuple[SeriesInfo, dict[int, str]]:
    """Series block + the season links. Returns the info (seasons empty) and {season: page URL}."""
    doc = soup(text)
    title_box = doc.select_one("div.series-title") or doc
    h1 = title_box.select_one("h1")
    title = node_text(h1.select_one("span") if h1 is not None and h1.select_one("span") else h1)
    if not title:
        og = doc.select_one('meta[property="og:title"]')
        title = clean(attr(og, "content").replace(" Stream anschauen", ""))
    if not title:
        raise ProviderError(f"aniworld: no series title on {page_url} (not a series page?)")
    alt = attr(h1, "data-alternativetitles")
    alt_titles = [clean(t) for t in alt.split(",") if clean(t)] if alt else []

    start = title_box.select_one('[itemprop="startDate"]')
    end = title_box.select_one('[itemprop="endDate"]')
    fsk_node = doc.select_one("[data-fsk]")
    imdb_node = doc.select_one("a.imdb-link[data-imdb]") or doc.select_one("[data-imdb]")
    imdb = attr(imdb_node, "data-imdb")
    if not imdb:
        link = doc.select_one('a[href*="imdb.com/title/"]')
        m = re.search(r"tt\d+", attr(link, "href"))
        imdb = m.group(0) if m else ""

    desc_node = doc.select_one("p.seri_des")
    description = clean(attr(desc_node, "data-full-description"))
    if not description and desc_node is not None:
        for more in desc_node.select(".showMore"):
            more.extract()
        description = node_text(desc_node)

    genres: list[str] = []
    for a in doc.select('div.genres a[itemprop="genre"]') or doc.select("div.genres a.genreButton"):
        name = node_text(a)
        if name and name not in genres:
            genres.append(name)

    cover = None
    cover_img = doc.select_one("div.seriesCoverBox img")
    if cover_img is not None and image_source(cover_img):
        cover = urls.absolute(page_url, image_source(cover_img))

    info = SeriesInfo(
        key=key,
        site=SITE_ANIWORLD,
        link=urls.url(f"/anime/stream/{key}"),
        title=title,
        alt_titles=alt_titles,
        description=description,
        genres=genres,
        start_year=to_year(node_text(start)) if start is not None else None,
        end_year=to_year(node_text(end)) if end is not None else None,
        cover=cover,
        fsk=to_int(attr(fsk_node, "data-fsk")) if fsk_node is not None else None,
        imdb_id=imdb or None,
    )
    return info, season_links(doc, page_url, urls)


def season_links(doc: BeautifulSoup, page_url: str, urls: SiteUrls) -> dict[int, str]:
    """{season: URL} from the season navigation; 0 is the movies page (`/filme`)."""
    nav = doc.select_one("#stream") or doc.select_one(".hosterSiteDirectNav") or doc
    found: dict[int, str] = {}
    for a in nav.select("a[href]"):
        href = urls.absolute(page_url, attr(a, "href"))
        path = urls.site_path(href) or ""
        m = SEASON_PATH_RE.match(path)
        if m:
            found.setdefault(int(m.group(2)), href)
            continue
        if MOVIES_PATH_RE.match(path):
            found.setdefault(0, href)
    if not any(n > 0 for n in found):
        # No season links at all: fall back on the declared season count.
        count = to_int(attr(doc.select_one('meta[itemprop="numberOfSeasons"]'), "content")) or 0
        base = page_url.rstrip("/")
        for n in range(1, count + 1):
            found.setdefault(n, f"{base}/staffel-{n}")
    return dict(sorted(found.items()))


def _flag_language(img: Tag) -> str | None:
    return FLAG_FILES.get(url_basename(image_source(img)))


def parse_season_page(text: str, page_url: str, urls: SiteUrls, season: int) -> list[EpisodeInfo]:
    """The episode table of a season page (or of the movies page, season 0)."""
    doc = soup(text)
    tables = doc.select("table.seasonEpisodesList") or [doc]
    episodes: dict[tuple[int, int], EpisodeInfo] = {}
    for table in tables:
        rows = table.select('tr[itemtype$="schema.org/Episode"]') or table.select("tbody tr[data-episode-id]")
        for row in rows:
            ep = _parse_row(row, page_url, urls, season)
            if ep is not None:
                episodes.setdefault((ep.season, ep.number), ep)
    return sorted(episodes.values(), key=lambda e: (e.season, e.number))


def _parse_row(row: Tag, page_url: str, urls: SiteUrls, season: int) -> EpisodeInfo | None:
    link = row.select_one('a[itemprop="url"][href]') or row.select_one("a[href]")
    url = urls.absolute(page_url, attr(link, "href")) if link is not None else ""
    number = None
    row_season = season
    m = EPISODE_PATH_RE.match(urls.site_path(url) or "") if url else None
    if m:
        if m.group(4):
            row_season, number = 0, int(m.group(4))
        else:
            row_season, number = int(m.group(2)), int(m.group(3))
    if number is None:
        number = to_int(attr(row.select_one('meta[itemprop="episodeNumber"]'), "content"))
    if number is None:
        number = to_int(attr(row, "data-episode-season-id"))
    if number is None:
        return None
    title_cell = row.select_one("td.seasonEpisodeTitle") or row
    hosters: list[str] = []
    for icon in row.select("i.icon"):
        names = [c for c in icon.get("class", []) if c != "icon"]
        name = names[0] if names else clean(attr(icon, "title").removeprefix("Hoster "))
        if name and name not in hosters:
            hosters.append(name)
    langs = {lang for img in row.select("img.flag, td.editFunctions img") if (lang := _flag_language(img))}
    return EpisodeInfo(
        season=row_season,
        number=number,
        title_de=node_text(title_cell.select_one("strong")),
        title_en=node_text(title_cell.select_one("span")),
        languages=sort_languages(langs),
        hosters=hosters,
        url=url,
    )


def parse_episode_page(text: str, page_url: str, urls: SiteUrls) -> list[HosterLink]:
    """All hoster offers of an episode page, for every language (hidden entries included)."""
    doc = soup(text)
    keys = dict(LANG_KEYS)
    # The language box says which flag each key stands for; trust it over the defaults.
    for img in doc.select(".changeLanguageBox img[data-lang-key]"):
        lang = _flag_language(img)
        if lang:
            keys[attr(img, "data-lang-key")] = lang
    links: list[HosterLink] = []
    for li in doc.select("li[data-link-id]"):
        lang = keys.get(attr(li, "data-lang-key"))
        if lang is None:
            continue
        anchor = li.select_one("a.watchEpisode[href]") or li.select_one("a[href]")
        href = attr(li, "data-link-target") or attr(anchor, "href")
        if not href:
            continue
        hoster = node_text(li.select_one("h4"))
        if not hoster:
            icon = li.select_one("i.icon")
            names = [c for c in (icon.get("class", []) if icon else []) if c != "icon"]
            hoster = names[0] if names else ""
        if not hoster:
            continue
        redirect = urls.absolute(page_url, href)
        link_id = attr(li, "data-link-id")
        links.append(HosterLink(hoster=hoster, language=lang, redirect_url=redirect, link_id=link_id))
    return unique_links(links)


# -- provider ----------------------------------------------------------------------------------------


class AniworldProvider(SiteProvider):
    """aniworld.to (anime)."""

    site = SITE_ANIWORLD
    page_marker = 'class="series-title"'
    parse_series_page = staticmethod(parse_series_page)
    parse_season_page = staticmethod(parse_season_page)
    parse_episode_page = staticmethod(parse_episode_page)

    def series_url(self, key: str) -> str:
        return self.urls.url(f"/anime/stream/{check_key(key)}")

    async def search(self, query: str) -> list[SearchResult]:
        query = clean(query)
        if not query:
            return []
        page = await self.client.post(
            self.urls.url("/ajax/search"),
            {"keyword": query},
            headers={
                "X-Requested-With": "XMLHttpRequest",
                "Referer": self.urls.url("/search"),
                "Accept": "application/json, text/javascript, */*; q=0.01",
                "Sec-Fetch-Mode": "cors",
                "Sec-Fetch-Dest": "empty",
                "Sec-Fetch-Site": "same-origin",
            },
            expected=looks_like_json,
        )
        return await parse_off_loop(parse_search, page.text, self.urls)
