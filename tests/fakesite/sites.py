"""The fake aniworld.to and s.to: pages rendered from the catalog in exactly the fixtures' shapes.

Templates in templates/aniworld and templates/sto are the fixture pages cut into pieces (`page.html`
is a whole fixture page with `${placeholders}`, `snippets.html` holds the repeated parts between
`<!-- @name -->` markers).  The fixture quirks are reproduced on purpose: attribute order that varies
row by row, extra whitespace and line breaks inside tags, PHP-style entities (`&#039;`, `&quot;`),
lazily loaded flags (`data-src`), hidden hoster entries for the other languages, absolute
`https://aniworld.to/...` / `https://s.to/...` links next to relative ones.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import html.entities
import json
import re
import time
from pathlib import Path
from string import Template

from aiohttp import web

from .catalog import ANIWORLD, ENG_DUB, ENG_SUB, GER_DUB, GER_SUB, STO, Episode, Offer, Series
from .challenges import serve_site_page
from .doh import add_doh_routes
from .state import FakeSiteState

TEMPLATES = Path(__file__).parent / "templates"


# -- template loading --------------------------------------------------------------------------------


@functools.cache
def _page_template(site: str) -> Template:
    return Template((TEMPLATES / site / "page.html").read_text(encoding="utf-8"))


@functools.cache
def _snippets(site: str) -> dict[str, Template]:
    text = (TEMPLATES / site / "snippets.html").read_text(encoding="utf-8")
    parts = re.split(r"^<!-- @(\w+) -->\n", text, flags=re.M)
    return {
        name: Template(body[:-1] if body.endswith("\n") else body)
        for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def _snip(site: str, snippet: str, /, **values: object) -> str:
    return _snippets(site)[snippet].substitute({k: str(v) for k, v in values.items()})


@functools.cache
def _challenge() -> Template:
    return Template((TEMPLATES / "challenge.html").read_text(encoding="utf-8"))


# -- text helpers --------------------------------------------------------------------------------------


def esc(text: str) -> str:
    """PHP htmlspecialchars(ENT_QUOTES): what both sites emit (`&#039;`, `&quot;`, `&amp;`)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#039;")
    )


def htmlentities(text: str) -> str:
    """PHP htmlentities: like esc() plus named entities for non-ASCII letters (`f&uuml;r`)."""
    out = []
    for ch in esc(text):
        name = html.entities.codepoint2name.get(ord(ch)) if ord(ch) > 127 else None
        out.append(f"&{name};" if name else ch)
    return "".join(out)


_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.translate(_TRANSLIT).lower()).strip("-")


def _csrf(path: str) -> str:
    return hashlib.sha1(f"csrf{path}".encode()).hexdigest()


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(" ")] if " " in cut else cut


# -- aniworld ------------------------------------------------------------------------------------------

_AW_FLAGS = {
    GER_DUB: ("german.svg", "Deutsche Sprache, Flagge", "Deutsch/German"),
    GER_SUB: ("japanese-german.svg", "Deutsche Flagge, Untertitel, Flagge", "Mit deutschem Untertitel"),
    ENG_SUB: ("japanese-english.svg", "Englische Sprache, Flagge", "Englisch"),
    ENG_DUB: ("english.svg", "Englische Sprache, Flagge", "Englisch (Synchro)"),
}
_AW_BOX = {
    GER_DUB: ("german.svg", "German, Deutsch, Flagge, Sprache", "1", "Deutsch"),
    GER_SUB: (
        "japanese-german.svg",
        "Ger-Sub, Deutscher Untertitel, Flagge, Sprache",
        "3",
        "mit Untertitel Deutsch",
    ),
    ENG_SUB: (
        "japanese-english.svg",
        "Englische Sprache, English, Flagge, Sprache",
        "2",
        "mit Untertitel Englisch",
    ),
    ENG_DUB: ("english.svg", "English, Englisch, Flagge, Sprache", "4", "Englisch"),
}
_AW_CAST = (
    ("directors", "director", "Person", "regisseur", None, None),
    ("actors", "actor", "Person", "schauspieler", "seriesActor", "Schauspieler:"),
    ("producers", "creator", "Organization", "produzent", "seriesProducer", "Produzent:"),
    ("countries", "countryOfOrigin", "Country", "aus", "seriesCountry", "Land:"),
)


def _aw_episode_path(series: Series, season: int, number: int) -> str:
    if season == 0:
        return f"/anime/stream/{series.key}/filme/film-{number}"
    return f"/anime/stream/{series.key}/staffel-{season}/episode-{number}"


def _aw_cast(series: Series) -> str:
    groups = []
    for attr_name, itemprop, itemtype, path, css, label in _AW_CAST:
        names: list[str] = getattr(series, attr_name)
        if not names:
            continue
        items = []
        for i, name in enumerate(names):
            if i == 3:
                items.append(_snip(ANIWORLD, "cast_more", count=len(names) - 3))
            items.append(
                _snip(
                    ANIWORLD,
                    "cast_item",
                    itemprop=itemprop,
                    itemtype=itemtype,
                    path=path,
                    slug=slug(name),
                    name=esc(name),
                )
            )
        if css is None:
            groups.append(_snip(ANIWORLD, "cast_directors", items="\n".join(items)))
        else:
            ul_class = ' class="showHiddenArea"' if len(names) > 3 else ""
            groups.append(
                _snip(ANIWORLD, "cast_group", css=css, label=label, ul_class=ul_class, items="\n".join(items))
            )
    return "\n".join(groups)


def _aw_genres(series: Series) -> str:
    items = []
    for i, name in enumerate(series.genres):
        if i == 6:
            items.append(_snip(ANIWORLD, "genre_more", count=len(series.genres) - 6))
        items.append(_snip(ANIWORLD, "genre_item", slug=slug(name), name=esc(name)))
    return "\n".join(items)


def _aw_table(series: Series, season: int) -> str:
    rows = []
    for i, ep in enumerate(series.seasons.get(season, [])):
        href = _aw_episode_path(series, season, ep.number)
        icons = "".join(_snip(ANIWORLD, "icon", hoster=h) for h in ep.hoster_union(ANIWORLD))
        langs = ep.languages(ANIWORLD)
        flags = []
        for j, lang in enumerate(langs):
            file, alt, title = _AW_FLAGS[lang]
            lazy = ep.lazy_flag and j == len(langs) - 1
            flags.append(_snip(ANIWORLD, "flag_lazy" if lazy else "flag", file=file, alt=alt, title=title))
        cells = _snip(
            ANIWORLD,
            "cells",
            season=season,
            number=ep.number,
            href=href,
            label=f"Film {ep.number}" if season == 0 else f"Folge {ep.number}",
            title_de=esc(ep.title_de),
            title_en=esc(ep.title_en),
            icons=icons,
            flags=" ".join(flags),
        )
        rows.append(
            _snip(
                ANIWORLD,
                f"row_{i % 3}",
                episode_id=series.episode_id(season, ep),
                number=ep.number,
                cells=cells,
            )
        )
    heading = f"{series.title} Filme" if season == 0 else f"{series.title} Staffel {season}"
    return _snip(ANIWORLD, "table", season=season, heading=esc(heading), rows="\n".join(rows))


def _aw_episode_block(series: Series, season: int, ep: Episode) -> str:
    langs = ep.languages(ANIWORLD)
    box = []
    for i, lang in enumerate(langs):
        file, alt, key, title = _AW_BOX[lang]
        box.append(
            _snip(
                ANIWORLD,
                "language_box_item",
                file=file,
                alt=alt,
                lang_key=key,
                title=title,
                selected=' class="selectedLanguage"' if i == 0 else "",
            )
        )
    links = []
    index = 0
    for lang in langs:
        for hoster in ep.links[lang]:
            link_id = series.link_id(season, ep, lang, hoster)
            body = _snip(ANIWORLD, "link_body", hoster=esc(hoster))
            links.append(
                _snip(
                    ANIWORLD,
                    f"link_{1 if index % 4 == 3 else 0}",
                    link_id=link_id,
                    lang_key=_AW_BOX[lang][2],
                    hidden="" if lang == langs[0] else ' style="display: none;"',
                    inline=' class="generateInlinePlayer"' if hoster == "VOE" else "",
                    link_body=body,
                )
            )
            index += 1
    return (
        _snip(
            ANIWORLD,
            "episode",
            episode_id=series.episode_id(season, ep),
            series_id=series.series_id,
            season=season,
            title_de=esc(ep.title_de),
            title_en=esc(ep.title_en),
            language_box="\n".join(box),
            links="\n".join(links),
        )
        + "\n"
    )


def _aw_page(series: Series, path: str, page_title: str, season: int, episode: int | None, main: str) -> str:
    seasons = series.regular_seasons
    season_nav = []
    if series.has_movies:
        season_nav.append(
            _snip(
                ANIWORLD, "season_nav_movies", key=series.key, active=' class="active"' if season == 0 else ""
            )
        )
    for n in seasons:
        season_nav.append(
            _snip(
                ANIWORLD,
                "season_nav_item",
                key=series.key,
                season=n,
                active=' class="active"' if n == season else "",
            )
        )
    episode_nav = []
    for ep in series.seasons.get(season, []):
        active = ' class="active"' if ep.number == episode else ""
        name = "movie_nav_item" if season == 0 else "episode_nav_item"
        episode_nav.append(
            _snip(
                ANIWORLD,
                name,
                key=series.key,
                season=season,
                number=ep.number,
                active=active,
                episode_id=series.episode_id(season, ep),
            )
        )
    if series.start_year and series.end_year:
        years = _snip(ANIWORLD, "years", start=series.start_year, end=series.end_year)
    elif series.start_year:
        years = _snip(ANIWORLD, "years_open", start=series.start_year)
    else:
        years = ""
    description = series.description
    short = _shorten(description, 180)
    rating, rating_count = series.rating
    return _page_template(ANIWORLD).substitute(
        page_title=esc(page_title),
        meta_description=esc(description[:150]),
        csrf=_csrf(path),
        path=path,
        key=series.key,
        backdrop_token=series.backdrop_token,
        cover_token=series.cover_token,
        title=esc(series.title),
        rating=rating,
        rating_count=rating_count,
        alt_titles=esc(", ".join(series.alt_titles)),
        years=years,
        fsk=_snip(ANIWORLD, "fsk", fsk=series.fsk) if series.fsk is not None else "",
        imdb=_snip(ANIWORLD, "imdb", imdb=series.imdb_id) if series.imdb_id else "",
        description=esc(description),
        short_description=esc(short + "..." if short != description else short),
        cast=_aw_cast(series),
        main_genre=slug(series.genres[0]) if series.genres else "",
        genres=_aw_genres(series),
        season_count=len(seasons),
        season_nav="\n".join(season_nav),
        episode_nav="\n".join(episode_nav),
        main=main,
    )


def aniworld_series_page(series: Series) -> str:
    season = series.regular_seasons[0] if series.regular_seasons else 0
    return _aw_page(
        series,
        f"/anime/stream/{series.key}",
        f"{series.title} Stream anschauen",
        season,
        None,
        _aw_table(series, season) + "\n",
    )


def aniworld_season_page(series: Series, season: int) -> str:
    if season == 0:
        path, title = f"/anime/stream/{series.key}/filme", f"{series.title} Filme"
    else:
        path, title = f"/anime/stream/{series.key}/staffel-{season}", f"{series.title} Staffel {season}"
    return _aw_page(series, path, title, season, None, _aw_table(series, season) + "\n")


def aniworld_episode_page(series: Series, season: int, ep: Episode) -> str:
    title = (
        f"{series.title} Film {ep.number}"
        if season == 0
        else f"{series.title} Staffel {season} Episode {ep.number}"
    )
    return _aw_page(
        series,
        _aw_episode_path(series, season, ep.number),
        title,
        season,
        ep.number,
        _aw_episode_block(series, season, ep),
    )


def _highlight(encoded: str, term: str) -> str:
    if not term:
        return encoded
    return re.sub(re.escape(htmlentities(term)), lambda m: f"<em>{m.group(0)}</em>", encoded, flags=re.I)


def aniworld_search(state: FakeSiteState, term: str) -> str:
    matches = state.catalog.search(ANIWORLD, term)
    entries: list[dict[str, str]] = []

    def add(title: str, description: str, link: str) -> None:
        entries.append(
            {
                "title": _highlight(htmlentities(title), term),
                "description": _highlight(htmlentities(description), term),
                "link": link,
            }
        )

    for i, s in enumerate(matches):
        desc = s.search_description or (_shorten(s.description, 100) + " ...")
        add(s.title, desc, f"/anime/stream/{s.key}")
        if i == 0 and state.search_noise and s.regular_seasons:
            last = s.regular_seasons[-1]
            ep = s.seasons[last][-1]
            add(
                f"{s.title} - Staffel {last} Episode {ep.number}",
                ep.title_en or ep.title_de,
                _aw_episode_path(s, last, ep.number),
            )
    if state.search_noise and matches:
        for s in matches:
            if s.has_movies:
                movie = s.seasons[0][0]
                add(
                    f"{s.title} - Filme",
                    (movie.title_en or movie.title_de).removeprefix(f"{s.title} - "),
                    f"/anime/stream/{s.key}/filme",
                )
        first = matches[0]
        entries.append(
            {
                "title": _highlight(htmlentities(f"Warum lädt {first.title} bei mir nicht?"), term),
                "description": "Support &amp; Hilfe",
                "link": f"/support/frage/warum-laedt-{first.key}-bei-mir-nicht-{first.series_id + 17000}",
            }
        )
        entries.append(
            {"title": htmlentities(first.title), "description": "", "link": f"/anime/stream/{first.key}/"}
        )
    return json.dumps(entries, ensure_ascii=False).replace("/", "\\/")


# -- s.to ----------------------------------------------------------------------------------------------

_STO_FLAGS = {
    GER_DUB: ("german", "Deutsch", "de"),
    ENG_DUB: ("english", "Englisch", "en"),
    GER_SUB: ("english-german", "Englisch mit deutschem Untertitel", "en-de"),
    ENG_SUB: ("japanese-english", "Englisch (Untertitel)", "jp-en"),
}
_STO_BUTTONS = {
    GER_DUB: ("de", "Deutsch", "1"),
    ENG_DUB: ("en", "Englisch", "2"),
    GER_SUB: ("de-sub", "Englisch mit deutschem Untertitel", "3"),
    ENG_SUB: ("en-sub", "Englisch (Untertitel)", "4"),
}
_STO_GROUPS = (
    ("genres", "Genre", "genre"),
    ("directors", "Regisseur", "regisseur"),
    ("actors", "Besetzung", "schauspieler"),
    ("producers", "Produzent", "produzent"),
    ("countries", "Land", "land"),
)


def _sto_people_slug(name: str) -> str:
    return re.sub(r"\s+", "-", name.strip().lower())


def _sto_episode_path(series: Series, season: int, number: int) -> str:
    if season == 0:
        return f"/serie/{series.key}/filme/film-{number}"
    return f"/serie/{series.key}/staffel-{season}/episode-{number}"


def _sto_meta(series: Series) -> str:
    if series.start_year and series.end_year:
        years = _snip(STO, "years", start=series.start_year, end=series.end_year)
    elif series.start_year:
        years = _snip(STO, "years_open", start=series.start_year)
    else:
        years = ""
    fsk = _snip(STO, "fsk", fsk=series.fsk) if series.fsk is not None else ""
    imdb = _snip(STO, "imdb", imdb=series.imdb_id) if series.imdb_id else ""
    return _snip(STO, "meta", years=years, fsk=fsk, imdb=imdb)


def _sto_groups(series: Series) -> str:
    out = []
    for attr_name, label, path in _STO_GROUPS:
        names: list[str] = getattr(series, attr_name)
        if not names:
            continue
        items = ", ".join(
            _snip(
                STO,
                "group_item",
                path=path,
                slug=_sto_people_slug(n) if path != "genre" else slug(n),
                name=esc(n),
            )
            for n in names[:3]
        )
        if len(names) <= 3:
            out.append(_snip(STO, "group", label=label, items=items))
        else:
            extra = "\n".join(
                _snip(STO, "group_extra_item", path=path, slug=_sto_people_slug(n), name=esc(n))
                for n in names[3:]
            )
            out.append(_snip(STO, "group_extra", label=label, items=items, extra=extra, count=len(names) - 3))
    return "\n".join(out)


def _sto_table(series: Series, season: int) -> str:
    rows = []
    for ep in series.seasons.get(season, []):
        href = _sto_episode_path(series, season, ep.number)
        icons = "".join(_snip(STO, "icon", slug=h.lower(), hoster=esc(h)) for h in ep.hoster_union(STO))
        flags = " ".join(
            _snip(STO, "flag", flag=_STO_FLAGS[lang][0], label=_STO_FLAGS[lang][1], short=_STO_FLAGS[lang][2])
            for lang in ep.languages(STO)
        )
        rows.append(
            _snip(
                STO,
                "row",
                episode_id=series.episode_id(season, ep),
                number=ep.number,
                href=href,
                title_de=esc(ep.title_de),
                title_en=esc(ep.title_en),
                icons=icons,
                flags=flags,
            )
        )
    return _snip(STO, "table", season=season, rows="\n".join(rows))


def _sto_episode_detail(series: Series, season: int, ep: Episode) -> str:
    if ep.title_de and ep.title_en:
        name = f"{ep.title_de} ({ep.title_en})"
    else:
        name = ep.title_de or ep.title_en
    prefix = f"Film {ep.number}" if season == 0 else f"S{season:02d}E{ep.number:02d}"
    buttons = []
    index = 0
    for lang in ep.languages(STO):
        data_lang, label, lang_id = _STO_BUTTONS[lang]
        for hoster in ep.links[lang]:
            body = _snip(STO, "button_body", slug=hoster.lower(), hoster=esc(hoster), label=label)
            buttons.append(
                _snip(
                    STO,
                    f"button_{1 if index % 3 == 2 else 0}",
                    lang=data_lang,
                    label=label,
                    lang_id=lang_id,
                    token=series.token(season, ep, lang, hoster),
                    hoster=esc(hoster),
                    link_id=series.link_id(season, ep, lang, hoster),
                    button_body=body,
                )
            )
            index += 1
    season_href = f"/serie/{series.key}/filme" if season == 0 else f"/serie/{series.key}/staffel-{season}"
    return (
        _snip(
            STO,
            "episode_detail",
            key=series.key,
            title=esc(series.title),
            season_href=season_href,
            season_label="Filme" if season == 0 else f"Staffel {season}",
            episode_label=f"Film {ep.number}" if season == 0 else f"Episode {ep.number}",
            heading=esc(f"{prefix}: {name} "),
            buttons="\n".join(buttons),
        )
        + "\n"
    )


def _sto_page(series: Series, path: str, page_title: str, season: int, detail: str) -> str:
    nav = [
        _snip(STO, "season_nav_item", key=series.key, season=n, active=" active" if n == season else "")
        for n in series.regular_seasons
    ]
    if series.has_movies:
        nav.append(_snip(STO, "season_nav_movies", key=series.key, active=" active" if season == 0 else ""))
    return _page_template(STO).substitute(
        page_title=esc(page_title),
        csrf=_csrf(path),
        path=path,
        asset=hashlib.sha1(path.encode()).hexdigest()[:8],
        cover_token=series.cover_token,
        title=esc(series.title),
        meta=_sto_meta(series),
        description=esc(series.description),
        groups=_sto_groups(series),
        season_nav="\n".join(nav),
        episode_detail=detail,
        table=_sto_table(series, season),
    )


def sto_series_page(series: Series) -> str:
    season = series.regular_seasons[0] if series.regular_seasons else 0
    return _sto_page(series, f"/serie/{series.key}", f"{series.title} stream", season, "")


def sto_season_page(series: Series, season: int) -> str:
    if season == 0:
        return _sto_page(series, f"/serie/{series.key}/filme", f"{series.title} Filme", 0, "")
    return _sto_page(
        series, f"/serie/{series.key}/staffel-{season}", f"{series.title} Staffel {season}", season, ""
    )


def sto_episode_page(series: Series, season: int, ep: Episode) -> str:
    title = (
        f"{series.title} Film {ep.number}" if season == 0 else f"{series.title} S{season:02d}E{ep.number:02d}"
    )
    return _sto_page(
        series,
        _sto_episode_path(series, season, ep.number),
        title,
        season,
        _sto_episode_detail(series, season, ep),
    )


def sto_search(state: FakeSiteState, term: str) -> str:
    matches = state.catalog.search(STO, term)
    shows = [{"name": s.title, "url": f"/serie/{s.key}"} for s in matches]
    if state.search_noise and matches:
        first = matches[0]
        if first.regular_seasons:
            shows.append(
                {
                    "name": f"{first.title} - Staffel {first.regular_seasons[0]} Episode 1",
                    "url": _sto_episode_path(first, first.regular_seasons[0], 1),
                }
            )
        shows.append({"name": first.title, "url": f"/serie/{first.key}/"})
    return json.dumps({"shows": shows}, ensure_ascii=False).replace("/", "\\/")


# -- HTTP routes ---------------------------------------------------------------------------------------


def origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _embed_location(request: web.Request, offer: Offer, hoster_origin: str | None = None) -> str:
    try:
        from .hosters import embed_path
    except ImportError:  # the hoster helper's module is not there yet
        path = f"/{offer.hoster.lower()}/e/{offer.code}"
    else:
        path = embed_path(offer.hoster, offer.code)
    return (hoster_origin or origin(request)) + path


def _site_route(state: FakeSiteState, site: str, handler):
    """Wrap a page handler: request log, in-flight tracking, delay/hold, blocked and fail_next modes."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        host = request.host
        state.request_log.append(
            {
                "time": time.monotonic(),
                "method": request.method,
                "path": request.path_qs,
                "site": site,
                "host": host,
            }
        )
        state.inflight[host] = state.inflight.get(host, 0) + 1
        state.max_inflight[host] = max(state.max_inflight.get(host, 0), state.inflight[host])
        try:
            if state.hold is not None:
                await state.hold.wait()
            if state.delay:
                await asyncio.sleep(state.delay)
            if state.blocked:
                return _html(_challenge().substitute(host=request.host.split(":")[0]), status=403)
            if state.fail_next > 0:
                state.fail_next -= 1
                return _html(
                    "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", status=503
                )
            return await serve_site_page(state, site, request, handler)  # obstacles: challenges.py
        finally:
            state.inflight[host] -= 1

    return wrapped


def _int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except (KeyError, ValueError):
        raise web.HTTPNotFound() from None


def _not_found() -> web.Response:
    return _html(
        "<!doctype html><html><head><title>404 - Seite nicht gefunden</title></head>"
        "<body><h1>Seite nicht gefunden</h1></body></html>",
        status=404,
    )


async def cover_jpeg(media_dir: Path, name: str) -> bytes | None:
    """A 220x330 JPEG cover in a colour of its own per name, made once with ffmpeg (None without it)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    path = Path(media_dir) / "covers" / f"{digest[:16]}.jpg"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{id(path)}.tmp.jpg")
        try:
            proc = await asyncio.create_subprocess_exec(
                "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                "-i", f"color=c=0x{digest[:6]}:s=220x330", "-frames:v", "1", str(tmp),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        except OSError:
            return None
        if await proc.wait() != 0 or not tmp.is_file():
            tmp.unlink(missing_ok=True)
            return None
        tmp.replace(path)  # atomic: parallel requests never read half a file
    return path.read_bytes()


def add_site_routes(app: web.Application, state: FakeSiteState) -> None:
    """Register the aniworld and s.to routes (before the hoster routes: `/media/images/...` is ours)."""

    # aniworld ---------------------------------------------------------------------------------------
    async def aw_search(request: web.Request) -> web.Response:
        form = await request.post()
        term = str(form.get("keyword") or request.query.get("keyword") or "")
        return web.Response(text=aniworld_search(state, term), content_type="application/json")

    async def aw_series(request: web.Request) -> web.Response:
        series = state.catalog.get(ANIWORLD, request.match_info["key"])
        return _html(aniworld_series_page(series)) if series else _not_found()

    async def aw_season(request: web.Request) -> web.Response:
        series = state.catalog.get(ANIWORLD, request.match_info["key"])
        season = _int(request, "season") if "season" in request.match_info else 0
        if series is None or not series.seasons.get(season):
            return _not_found()
        return _html(aniworld_season_page(series, season))

    async def aw_episode(request: web.Request) -> web.Response:
        series = state.catalog.get(ANIWORLD, request.match_info["key"])
        season = _int(request, "season") if "season" in request.match_info else 0
        ep = series.episode(season, _int(request, "number")) if series else None
        if series is None or ep is None:
            return _not_found()
        return _html(aniworld_episode_page(series, season, ep))

    async def aw_redirect(request: web.Request) -> web.StreamResponse:
        offer = state.catalog.by_link_id(_int(request, "link_id"))
        if offer is None:
            return _not_found()
        raise web.HTTPFound(_embed_location(request, offer, state.hoster_origin))

    # s.to -------------------------------------------------------------------------------------------
    async def sto_suggest(request: web.Request) -> web.Response:
        return web.Response(
            text=sto_search(state, request.query.get("term", "")), content_type="application/json"
        )

    async def sto_series(request: web.Request) -> web.Response:
        series = state.catalog.get(STO, request.match_info["key"])
        return _html(sto_series_page(series)) if series else _not_found()

    async def sto_season(request: web.Request) -> web.Response:
        series = state.catalog.get(STO, request.match_info["key"])
        season = _int(request, "season") if "season" in request.match_info else 0
        if series is None or not series.seasons.get(season):
            return _not_found()
        return _html(sto_season_page(series, season))

    async def sto_episode(request: web.Request) -> web.Response:
        series = state.catalog.get(STO, request.match_info["key"])
        season = _int(request, "season") if "season" in request.match_info else 0
        ep = series.episode(season, _int(request, "number")) if series else None
        if series is None or ep is None:
            return _not_found()
        return _html(sto_episode_page(series, season, ep))

    async def sto_redirect(request: web.Request) -> web.StreamResponse:
        offer = state.catalog.by_token(request.query.get("t", ""))
        if offer is None:
            return _not_found()
        raise web.HTTPFound(_embed_location(request, offer, state.hoster_origin))

    # images: covers are real JPEGs (as on the real sites: the daemon's poster.jpg and its thumbnails
    # need a decodable image), flags and provider icons small SVG placeholders ------------------------
    async def image(request: web.Request) -> web.Response:
        name = request.path.rsplit("/", 1)[-1]
        if "/cover/" in request.path or request.query.get("format") == "jpg" or name.endswith(".jpg"):
            jpeg = await cover_jpeg(state.media_dir, name)
            if jpeg is not None:
                return web.Response(body=jpeg, content_type="image/jpeg")
        label = esc(name.split("?")[0][:40])
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="220" height="330"><rect width="100%" '
            f'height="100%" fill="#2b3a55"/><text x="10" y="30" fill="#fff" font-size="12">{label}</text>'
            "</svg>"
        )
        return web.Response(text=svg, content_type="image/svg+xml")

    async def index(request: web.Request) -> web.Response:
        items = "".join(
            f'<li><a href="{"/anime/stream/" if s.site == ANIWORLD else "/serie/"}{s.key}">'
            f"{esc(s.title)}</a> ({s.site})</li>"
            for s in state.catalog.all()
        )
        return _html(
            f"<!doctype html><html><head><title>aniworldd fake site</title></head><body>"
            f"<h1>aniworldd fake site</h1><ul>{items}</ul></body></html>"
        )

    def aw(handler):
        return _site_route(state, ANIWORLD, handler)

    def st(handler):
        return _site_route(state, STO, handler)

    key = "{key:[A-Za-z0-9-]+}"
    r = app.router
    # The front page stands behind the same walls as every page (a real site's clearance starts there).
    r.add_get("/", _site_route(state, None, index))
    r.add_post("/ajax/search", aw(aw_search))
    for suffix in ("", "/"):
        r.add_get(f"/anime/stream/{key}{suffix}", aw(aw_series))
        r.add_get(f"/anime/stream/{key}/staffel-{{season:\\d+}}{suffix}", aw(aw_season))
        r.add_get(f"/anime/stream/{key}/filme{suffix}", aw(aw_season))
        r.add_get(
            f"/anime/stream/{key}/staffel-{{season:\\d+}}/episode-{{number:\\d+}}{suffix}", aw(aw_episode)
        )
        r.add_get(f"/anime/stream/{key}/filme/film-{{number:\\d+}}{suffix}", aw(aw_episode))
        r.add_get(f"/serie/{key}{suffix}", st(sto_series))
        r.add_get(f"/serie/{key}/staffel-{{season:\\d+}}{suffix}", st(sto_season))
        r.add_get(f"/serie/{key}/filme{suffix}", st(sto_season))
        r.add_get(f"/serie/{key}/staffel-{{season:\\d+}}/episode-{{number:\\d+}}{suffix}", st(sto_episode))
        r.add_get(f"/serie/{key}/filme/film-{{number:\\d+}}{suffix}", st(sto_episode))
    r.add_get("/redirect/{link_id:\\d+}", aw(aw_redirect))
    r.add_get("/api/search/suggest", st(sto_suggest))
    r.add_get("/r", st(sto_redirect))
    r.add_get("/public/img/{name:.+}", image)
    r.add_get("/images/provider/{name:.+}", image)
    r.add_get("/media/images/channel/{name:.+}", image)
    add_doh_routes(app, state)  # `/dns-query` (doh.py), outside the site walls
