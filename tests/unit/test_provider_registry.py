"""ProviderSet: which provider and key a link means, site lookup, merged search."""

from __future__ import annotations

import pytest

from aniworldd.providers.base import SearchResult, UnreachableError
from aniworldd.providers.registry import LinkError, build_providers


@pytest.fixture
async def real():
    providers = build_providers({"aniworld_url": "https://aniworld.to", "sto_url": "https://s.to"})
    yield providers
    await providers.close()


@pytest.fixture
async def local():
    base = "http://127.0.0.1:8090"
    providers = build_providers({"aniworld_url": base, "sto_url": base})
    yield providers
    await providers.close()


@pytest.mark.parametrize(
    ("link", "site", "key"),
    [
        ("https://aniworld.to/anime/stream/kaguya-sama-love-is-war", "aniworld", "kaguya-sama-love-is-war"),
        ("https://aniworld.to/anime/stream/86-eighty-six/staffel-2/episode-3", "aniworld", "86-eighty-six"),
        ("https://www.aniworld.to/anime/stream/one-piece/filme/film-1", "aniworld", "one-piece"),
        ("aniworld.to/anime/stream/one-piece/", "aniworld", "one-piece"),
        ("https://s.to/serie/the-office-us", "sto", "the-office-us"),
        ("https://s.to/serie/the-office-us/staffel-2/episode-21", "sto", "the-office-us"),
        ("https://s.to/serie/stream/the-office-us/staffel-1", "sto", "the-office-us"),
        ("http://serienstream.to/serie/stream/dark", "sto", "dark"),
        ("  https://s.to/serie/the-office-us?ref=x#top  ", "sto", "the-office-us"),
        ("/serie/the-office-us", "sto", "the-office-us"),
        ("/anime/stream/kaguya-sama-love-is-war", "aniworld", "kaguya-sama-love-is-war"),
    ],
)
async def test_for_link_real_hosts(real, link, site, key):
    provider, found = real.for_link(link)
    assert (provider.site, found) == (site, key)


async def test_for_link_on_the_configured_base_decides_by_path(local):
    provider, key = local.for_link("http://127.0.0.1:8090/anime/stream/kaguya-sama-love-is-war/staffel-1")
    assert (provider.site, key) == ("aniworld", "kaguya-sama-love-is-war")
    provider, key = local.for_link("http://127.0.0.1:8090/serie/the-office-us")
    assert (provider.site, key) == ("sto", "the-office-us")
    # the real hosts keep working when the bases point elsewhere
    provider, key = local.for_link("https://s.to/serie/the-office-us")
    assert (provider.site, key) == ("sto", "the-office-us")


@pytest.mark.parametrize(
    "link",
    [
        "",
        "https://example.org/anime/stream/kaguya",
        "https://aniworld.to/animes",
        "https://aniworld.to/serie/the-office-us",  # an s.to path on the aniworld host
        "https://s.to/serie/stream",
        "https://s.to/serie/The_Office",
        "https://aniworld.to/anime/stream/bad--key",
        "ftp://aniworld.to/anime/stream/x",
        "https://aniworld.to/support/frage/x",
    ],
)
async def test_for_link_rejects(real, link):
    with pytest.raises(LinkError):
        real.for_link(link)


async def test_for_site(real):
    assert real.for_site("aniworld") is real.aniworld
    assert real.for_site("sto") is real.sto
    with pytest.raises(ValueError, match="unknown site"):
        real.for_site("netflix")


async def test_both_providers_share_one_client(real):
    assert real.aniworld.client is real.sto.client is real.client


async def test_merged_search_survives_one_failing_site(real, monkeypatch):
    async def ok(query):
        return [SearchResult(key="dark", name="Dark", link="https://s.to/serie/dark", site="sto")]

    async def down(query):
        raise UnreachableError("aniworld.to unreachable")

    monkeypatch.setattr(real.aniworld, "search", down)
    monkeypatch.setattr(real.sto, "search", ok)
    assert [r.key for r in await real.search("dark")] == ["dark"]
    with pytest.raises(UnreachableError):
        await real.search("dark", site="aniworld")
    monkeypatch.setattr(real.sto, "search", down)
    with pytest.raises(UnreachableError):
        await real.search("dark")


def test_unsplittable_link_is_a_link_error() -> None:
    from aniworldd.config import load_text
    from aniworldd.providers.registry import LinkError, build_providers

    providers = build_providers(load_text("", env={})["provider"])
    with pytest.raises(LinkError, match="invalid link"):
        providers.for_link("a]")
