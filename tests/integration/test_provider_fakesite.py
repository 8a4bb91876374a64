"""Providers and AnimeService over real HTTP against the fake aniworld.to / s.to.

- The fixture series read through the fake site give the same data as the stored pages parsed directly.
- The whole chain for a series the parser has never seen: search -> add -> links -> resolve -> media.
- Blocked / not found / flaky site behaviour as the daemon sees it.
- AnimeService: marker file, DB rows, refresh with new episodes and events, bad input changing nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from aniworldd.core.markers import read_marker
from aniworldd.events import NEW_EPISODES, SERIES_ADDED, SERIES_UPDATED
from aniworldd.providers import aniworld, sto
from aniworldd.providers.base import BlockedError, NotFoundError, ProviderError
from aniworldd.services.anime_service import AnimeService
from aniworldd.services.errors import BadRequest, NotFound
from tests.fakesite.catalog import ANIWORLD, ENG_SUB, GER_DUB, GER_SUB, STO, Episode, make_series

PAGES = Path(__file__).resolve().parents[1] / "fixtures_pages"
KAGUYA = "kaguya-sama-love-is-war"


def _stored(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def _rows(episodes):
    return [e.to_dict() for e in episodes]


# -- fixture series through the fake site == stored pages parsed directly ----------------------------------


async def test_aniworld_fixture_series_over_http_matches_the_stored_pages(fakesite, fakesite_providers):
    provider = fakesite_providers.aniworld
    info = await provider.get_series(KAGUYA)
    series_url = f"{fakesite}/anime/stream/{KAGUYA}"
    expected, season_urls = aniworld.parse_series_page(
        _stored(f"aniworld/series-{KAGUYA}.html"), series_url, provider.urls, KAGUYA
    )
    for season, url in season_urls.items():
        name = f"aniworld/filme-{KAGUYA}.html" if season == 0 else f"aniworld/season-{KAGUYA}-{season}.html"
        expected.seasons[season] = aniworld.parse_season_page(_stored(name), url, provider.urls, season)
    assert info == expected
    assert {n: len(eps) for n, eps in info.seasons.items()} == {0: 1, 1: 12, 2: 12, 3: 13}

    links = await provider.get_episode_links(KAGUYA, 1, 1)
    stored = aniworld.parse_episode_page(
        _stored(f"aniworld/episode-{KAGUYA}-1-1.html"), f"{series_url}/staffel-1/episode-1", provider.urls
    )
    assert links == stored and len(links) == 9
    movie_links = await provider.get_episode_links(KAGUYA, 0, 1)
    assert [(link.language, link.hoster) for link in movie_links] == [
        (GER_DUB, "VOE"),
        (GER_DUB, "Vidoza"),
        (GER_SUB, "VOE"),
    ]


async def test_sto_fixture_series_over_http_matches_the_stored_pages(fakesite, fakesite_providers):
    provider = fakesite_providers.sto
    info = await provider.get_series("the-office-us")
    base = f"{fakesite}/serie/the-office-us"
    expected, season_urls = sto.parse_series_page(
        _stored("sto/series-the-office-us.html"), base, provider.urls, "the-office-us"
    )
    for season, url in season_urls.items():
        expected.seasons[season] = sto.parse_season_page(
            _stored(f"sto/season-the-office-us-{season}.html"), url, provider.urls, season
        )
    assert info == expected
    links = await provider.get_episode_links("the-office-us", 1, 1)
    assert links == sto.parse_episode_page(
        _stored("sto/episode-the-office-us-1-1.html"), f"{base}/staffel-1/episode-1", provider.urls
    )


async def test_search_both_sites_filters_noise(fakesite, fakesite_providers):
    results = await fakesite_providers.search("office")
    assert [(r.site, r.key) for r in results] == [
        (STO, "the-office-us"),
        (STO, "the-office-uk"),
        (STO, "officer-downe"),
    ]
    results = await fakesite_providers.search("Kaguya", site=ANIWORLD)
    assert [r.key for r in results] == [KAGUYA, "die-legende-der-prinzessin-kaguya"]
    assert results[0].name == "Kaguya-sama: Love is War"
    assert await fakesite_providers.search("nothing matches this") == []


# -- the whole chain for a series the parser has never seen ------------------------------------------------


def _new_series():
    series = make_series(
        ANIWORLD,
        "moonlit-garden-2",
        "Moonlit Garden: Zweite Blüte",
        {1: 3, 2: 2},
        hosters=["Vidoza", "VOE"],
        movies=1,
        start_year=2024,
        genres=["Drama", "Fantasy"],
    )
    series.episode(1, 2).title_de = ""
    series.episode(2, 2).links = {GER_SUB: ["VOE"], ENG_SUB: ["Vidoza"]}
    return series


async def test_search_add_links_resolve_media_for_an_unseen_series(
    fakesite, fakesite_state, fakesite_providers, store, bus, tmp_path
):
    series = fakesite_state.catalog.add(_new_series())
    events = bus.subscribe()
    (tmp_path / "lib").mkdir()  # the daemon never creates a library root itself
    service = AnimeService(store, fakesite_providers, [tmp_path / "lib"], bus)

    found = await service.search("moonlit")
    assert found == [
        {
            "key": "moonlit-garden-2",
            "name": "Moonlit Garden: Zweite Blüte",
            "site": "aniworld",
            "link": f"{fakesite}/anime/stream/moonlit-garden-2",
            "year": None,
        }
    ]

    added = await service.add(found[0]["link"] + "/staffel-2/episode-1")  # any link below the series works
    assert added["key"] == "moonlit-garden-2" and added["created"] is True
    assert added["folder"] == "Moonlit Garden - Zweite Blüte (2024)"
    assert added["seasons"] == {"0": 1, "1": 3, "2": 2}
    folder = tmp_path / "lib" / added["folder"]
    marker = read_marker(folder)
    assert (marker.key, marker.site, marker.name) == ("moonlit-garden-2", "aniworld", series.title)
    ev = await asyncio.wait_for(events.get(), 5)
    assert ev.type == SERIES_ADDED and ev.data["key"] == "moonlit-garden-2"

    detail = await service.detail("moonlit-garden-2")
    assert [
        (e["season"], e["episode"], e["title"], e["languages"], e["status"]) for e in detail["episodes"]
    ] == [
        (0, 1, "Moonlit Garden: Zweite Blüte - The Movie 1", [GER_DUB, GER_SUB, ENG_SUB], "missing"),
        (1, 1, "Moonlit Garden: Zweite Blüte Folge 1-1", [GER_DUB, GER_SUB, ENG_SUB], "missing"),
        (1, 2, "Moonlit Garden: Zweite Blüte Episode 1-2", [GER_DUB, GER_SUB, ENG_SUB], "missing"),
        (1, 3, "Moonlit Garden: Zweite Blüte Folge 1-3", [GER_DUB, GER_SUB, ENG_SUB], "missing"),
        (2, 1, "Moonlit Garden: Zweite Blüte Folge 2-1", [GER_DUB, GER_SUB, ENG_SUB], "missing"),
        (2, 2, "Moonlit Garden: Zweite Blüte Folge 2-2", [GER_SUB, ENG_SUB], "missing"),
    ]
    assert detail["missing_count"] == 6

    links = await service.episode_links("moonlit-garden-2", 2, 2)
    assert [(link.language, link.hoster) for link in links] == [(GER_SUB, "VOE"), (ENG_SUB, "Vidoza")]
    vidoza = links[1]
    embed = await fakesite_providers.aniworld.resolve(vidoza)
    code = series.code(2, series.episode(2, 2), ENG_SUB, "Vidoza")
    assert embed == f"{fakesite}/vidoza/embed-{code}.html"
    assert fakesite_state.code_info(code)["episode"] == 2

    from aniworldd.providers.hosters import resolve_media
    from tests.fakesite.media import ffmpeg_available

    source = await resolve_media(fakesite_providers.client, "Vidoza", embed)
    assert source.url.startswith(f"{fakesite}/media/") and source.kind == "mp4"
    if not ffmpeg_available():
        pytest.skip("ffmpeg not installed: media files cannot be generated")
    media = await fakesite_providers.client.fetch("GET", source.url, headers=source.headers)
    assert media.status == 200
    assert media.body[4:8] == b"ftyp"  # an mp4 file


async def test_sto_chain_with_token_redirect(fakesite, fakesite_state, fakesite_providers):
    series = fakesite_state.catalog.add(
        make_series(STO, "harbour-lights", "Harbour Lights", {1: 2, 2: 1}, hosters=["VOE", "Doodstream"])
    )
    provider, key = fakesite_providers.for_link(f"{fakesite}/serie/harbour-lights")
    info = await provider.get_series(key)
    assert {n: [e.number for e in eps] for n, eps in info.seasons.items()} == {1: [1, 2], 2: [1]}
    links = await provider.get_episode_links(key, 2, 1)
    assert [(link.language, link.hoster) for link in links] == [
        ("ger-dub", "VOE"),
        ("ger-dub", "Doodstream"),
        ("eng-dub", "VOE"),
        ("eng-dub", "Doodstream"),
    ]
    ep = series.episode(2, 1)
    for link in links:
        embed = await provider.resolve(link)
        code = series.code(2, ep, link.language, link.hoster)
        assert embed.startswith(fakesite + "/") and embed.endswith(code)


# -- the site misbehaving ----------------------------------------------------------------------------------


async def test_blocked_site_raises_blocked(fakesite, fakesite_state, fakesite_providers):
    fakesite_state.blocked = True
    with pytest.raises(BlockedError, match="Cloudflare"):
        await fakesite_providers.aniworld.get_series(KAGUYA)
    with pytest.raises(BlockedError):
        await fakesite_providers.search("kaguya")


async def test_unknown_series_and_redirect_are_not_found(fakesite, fakesite_providers):
    with pytest.raises(NotFoundError):
        await fakesite_providers.sto.get_series("no-such-show")
    with pytest.raises(NotFoundError):
        await fakesite_providers.aniworld.get_episode_links(KAGUYA, 9, 1)
    links = await fakesite_providers.aniworld.get_episode_links(KAGUYA, 1, 1)
    dead = type(links[0])(hoster="VOE", language=GER_DUB, redirect_url=f"{fakesite}/redirect/1", link_id="1")
    with pytest.raises(NotFoundError):
        await fakesite_providers.aniworld.resolve(dead)


async def test_flaky_site_is_retried(fakesite, fakesite_state, fakesite_providers):
    fakesite_state.fail_next = 2
    info = await fakesite_providers.sto.get_series("the-office-us")
    assert info.episode_count == 28
    assert fakesite_providers.client.stats["retries"] == 2


async def test_series_pages_are_cached_but_refresh_is_fresh(fakesite, fakesite_state, fakesite_providers):
    await fakesite_providers.sto.get_series("the-office-us")
    first = len(fakesite_state.site_requests())
    await fakesite_providers.sto.get_series("the-office-us")
    assert len(fakesite_state.site_requests()) == first  # 3 pages, all from the cache
    await fakesite_providers.sto.get_series("the-office-us", fresh=True)
    assert len(fakesite_state.site_requests()) == 2 * first


# -- AnimeService ------------------------------------------------------------------------------------------


@pytest.fixture
def service(store, bus, fakesite_providers, tmp_path) -> AnimeService:
    for name in ("lib", "lib2"):
        (tmp_path / name).mkdir(exist_ok=True)  # the daemon never creates a library root itself
    return AnimeService(
        store,
        fakesite_providers,
        [tmp_path / "lib", tmp_path / "lib2"],
        bus,
        languages=[GER_DUB, GER_SUB],
        missing_by_language=False,
    )


async def test_refresh_records_new_episodes_and_publishes_events(
    fakesite, fakesite_state, service, store, bus
):
    series = fakesite_state.catalog.add(make_series(ANIWORLD, "slow-burn", "Slow Burn", {1: 2}))
    await service.add(f"{fakesite}/anime/stream/slow-burn")
    events = bus.subscribe({NEW_EPISODES, SERIES_UPDATED})

    unchanged = await service.refresh("slow-burn")
    assert unchanged["new_episodes"] == [] and unchanged["removed"] == []

    series.seasons[1].append(Episode(3, "Drei", "Three", links={GER_SUB: ["VOE"]}))
    series.seasons[2] = [Episode(1, "", "Season Two Start", links={ENG_SUB: ["VOE"]})]
    del series.seasons[1][0]  # episode 1 disappears from the site
    result = await service.refresh("slow-burn")
    assert result["new_episodes"] == [
        {"season": 1, "episode": 3, "title": "Drei", "languages": [GER_SUB]},
        {"season": 2, "episode": 1, "title": "Season Two Start", "languages": [ENG_SUB]},
    ]
    assert result["removed"] == [{"season": 1, "episode": 1}]
    assert result["episode_count"] == 3

    seen = [await asyncio.wait_for(events.get(), 5) for _ in range(3)]
    assert [e.type for e in seen] == [SERIES_UPDATED, NEW_EPISODES, SERIES_UPDATED]
    assert seen[1].data["key"] == "slow-burn" and len(seen[1].data["episodes"]) == 2
    assert seen[2].data["new_episodes"] == 2 and seen[2].data["folder"] == "Slow Burn"

    def rows():
        s = store.e.AnimeSeries.get(key="slow-burn")
        return {(e.season, e.number): (e.listed, e.first_seen, e.title_en) for e in s.episodes}

    by_ep = await store.run(rows)
    assert by_ep[(1, 1)][0] is False  # kept (history), no longer listed
    assert by_ep[(2, 1)][0] is True and by_ep[(2, 1)][1] > by_ep[(1, 2)][1]
    missing = await service.missing_episodes("slow-burn")
    assert missing == {"1": [2, 3], "2": [1]}
    listing = await service.list_missing()
    assert [(r["key"], r["missing_count"]) for r in listing] == [("slow-burn", 3)]


async def test_add_is_idempotent_and_keeps_the_folder(fakesite, service, tmp_path):
    first = await service.add(f"{fakesite}/serie/the-office-us")
    again = await service.add("https://s.to/serie/the-office-us/staffel-2")
    assert first["created"] is True and again["created"] is False
    assert again["folder"] == first["folder"] == "The Office (US) (2005)"
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == ["The Office (US) (2005)"]


async def test_adding_again_reports_episodes_that_appeared_meanwhile(fakesite, fakesite_state, service, bus):
    series = fakesite_state.catalog.add(make_series(STO, "grows", "Grows", {1: 1}))
    await service.add(f"{fakesite}/serie/grows")
    series.seasons[1].append(Episode(2, "Zwei", "Two", links={"ger-dub": ["VOE"]}))
    events = bus.subscribe({NEW_EPISODES})
    again = await service.add(f"{fakesite}/serie/grows")
    assert again["created"] is False and again["seasons"] == {"1": 2}
    ev = await asyncio.wait_for(events.get(), 5)
    assert [(e["season"], e["episode"]) for e in ev.data["episodes"]] == [(1, 2)]


async def test_add_adopts_a_series_the_scanner_found_first(fakesite, service, store, bus, tmp_path):
    folder = tmp_path / "lib2" / "Office Folder"
    folder.mkdir(parents=True)

    def scanner_row():
        s = store.e.AnimeSeries(
            key="the-office-us",
            name="the-office-us",
            site="sto",
            folder="Office Folder",
            root=str(tmp_path / "lib2"),
        )
        store.e.Episode(
            series=s,
            season=1,
            number=1,
            listed=False,
            languages=[],
            on_disk_path=str(folder / "ep1.mp4"),
            on_disk_language="ger-dub",
        )

    await store.run(scanner_row)
    events = bus.subscribe({NEW_EPISODES})
    added = await service.add(f"{fakesite}/serie/the-office-us")
    assert added["created"] is False
    assert (added["root"], added["folder"]) == (str(tmp_path / "lib2"), "Office Folder")
    assert read_marker(folder).key == "the-office-us"
    await asyncio.sleep(0.05)
    assert events.get_nowait() is None  # the first provider read populates; it announces nothing as new
    detail = await service.detail("the-office-us")
    first = detail["episodes"][0]
    assert (first["season"], first["episode"], first["status"], first["listed"]) == (1, 1, "on_disk", True)
    assert detail["missing_count"] == 27


async def test_a_series_without_episodes_yet_can_be_added(fakesite, fakesite_state, service):
    fakesite_state.catalog.add(make_series(ANIWORLD, "coming-soon", "Coming Soon", {}))
    added = await service.add(f"{fakesite}/anime/stream/coming-soon")
    assert added["created"] is True and added["seasons"] == {} and added["episode_count"] == 0


async def test_same_title_on_both_sites_gets_distinct_folders(fakesite, fakesite_state, service, tmp_path):
    fakesite_state.catalog.add(make_series(ANIWORLD, "twin-title", "Twin", {1: 1}, start_year=2020))
    fakesite_state.catalog.add(make_series(STO, "twin-title-us", "Twin", {1: 1}, start_year=2020))
    a = await service.add(f"{fakesite}/anime/stream/twin-title")
    b = await service.add(f"{fakesite}/serie/twin-title-us")
    assert a["folder"] == "Twin (2020)"
    assert b["folder"] == "Twin (2020) [twin-title-us]"
    assert read_marker(tmp_path / "lib" / b["folder"]).key == "twin-title-us"


async def test_existing_folder_with_another_key_is_not_taken_over(
    fakesite, fakesite_state, service, tmp_path
):
    from aniworldd.core.markers import write_marker

    taken = tmp_path / "lib" / "Harbour (2001)"
    taken.mkdir(parents=True)
    write_marker(taken, "some-other-show", "sto")
    fakesite_state.catalog.add(make_series(STO, "harbour", "Harbour", {1: 1}, start_year=2001))
    added = await service.add(f"{fakesite}/serie/harbour")
    assert added["folder"] == "Harbour (2001) [harbour]"
    assert read_marker(taken).key == "some-other-show"


@pytest.mark.parametrize(
    "link", ["https://example.org/anime/stream/x", "not a link", "https://s.to/serie/Bad_Key"]
)
async def test_bad_links_change_nothing(fakesite, service, store, tmp_path, link):
    with pytest.raises(BadRequest):
        await service.add(link)
    assert await store.run(lambda: store.e.AnimeSeries.select().count()) == 0
    assert not (tmp_path / "lib").exists() or not any((tmp_path / "lib").iterdir())


async def test_unknown_series_on_the_site_changes_nothing(fakesite, service, store, tmp_path):
    with pytest.raises(ProviderError):
        await service.add(f"{fakesite}/anime/stream/not-on-the-site")
    assert await store.run(lambda: store.e.AnimeSeries.select().count()) == 0
    with pytest.raises(NotFound):
        await service.refresh("not-added")
    with pytest.raises(NotFound):
        await service.detail("not-added")


async def test_search_validates_input(service):
    with pytest.raises(BadRequest):
        await service.search("   ")
    with pytest.raises(BadRequest):
        await service.search("x", site="netflix")


# -- CLI ---------------------------------------------------------------------------------------------------


async def _cli(*args: str, config: Path) -> tuple[int, str, str]:
    env = {**os.environ, "ANIWORLDD_CONFIG": str(config)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aniworldd",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_cli_search_add_show(fakesite, fakesite_state, tmp_path):
    fakesite_state.catalog.add(make_series(STO, "cli-show", "CLI Show", {1: 2, 2: 1}, start_year=2022))
    config = tmp_path / "config.yaml"
    (tmp_path / "lib").mkdir()  # the daemon never creates a library root itself
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nlibrary:\n  roots: [{tmp_path / 'lib'}]\n"
        f"provider:\n  aniworld_url: {fakesite}\n  sto_url: {fakesite}\n  min_interval: 0\n"
    )
    code, out, err = await _cli("search", "cli show", "--json", config=config)
    assert code == 0, err
    assert [r["key"] for r in json.loads(out)] == ["cli-show"]

    code, out, err = await _cli("add", f"{fakesite}/serie/cli-show", config=config)
    assert code == 0, err
    assert "Added CLI Show [sto] as 'cli-show'" in out
    assert "Season 1: 2 episodes" in out and "Season 2: 1 episode" in out
    # As an add through the API: the media-server files (and the library card's poster) are written.
    folder = next((tmp_path / "lib").iterdir())
    assert (folder / "tvshow.nfo").is_file() and (folder / "poster.jpg").read_bytes()[:3] == b"\xff\xd8\xff"

    code, out, err = await _cli("show", "cli-show", "--json", config=config)
    assert code == 0, err
    detail = json.loads(out)
    assert [(e["season"], e["episode"], e["status"]) for e in detail["episodes"]] == [
        (1, 1, "missing"),
        (1, 2, "missing"),
        (2, 1, "missing"),
    ]
    code, out, err = await _cli("show", "cli-show", config=config)
    assert code == 0 and "S01E01  missing" in out and "missing: 3" in out

    code, out, err = await _cli("add", "https://example.org/nope", config=config)
    assert code == 1 and "not an aniworld.to or s.to link" in err
    fakesite_state.blocked = True
    code, out, err = await _cli("search", "cli", config=config)
    assert code == 1 and "blocked" in err


async def test_fakesite_serves_images_and_index(fakesite):
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{fakesite}/media/images/channel/desktop/x?format=jpg") as r:
            assert r.status == 200 and r.content_type == "image/jpeg"  # a real cover, as on s.to
            assert (await r.read())[:3] == b"\xff\xd8\xff"
        async with s.get(f"{fakesite}/public/img/flags/german.svg") as r:
            assert r.status == 200 and r.content_type == "image/svg+xml"
        async with s.get(f"{fakesite}/") as r:
            assert "Kaguya-sama" in await r.text()
