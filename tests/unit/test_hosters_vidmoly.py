"""Vidmoly (vidmoly-embed.html): the Referer its page and media want, and the two link forms.

The fake shows its player only to a vidmoly Referer (or one of the embedding site) and answers the
`/w/<id>` link form with a page without player, so both behaviours of the resolver are observable.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from aniworldd.providers.hosters import resolve_media, vidmoly
from aniworldd.providers.hosters.base import HosterError
from tests.fakesite.hosters import embed_path
from tests.fakesite.media import ffmpeg_available

UA = "Mozilla/5.0 (X11; Linux x86_64) aniworldd-test"
CODE = "w3pb8zk2qv1m"


@pytest.fixture
async def raw():
    """A plain aiohttp session for looking at the fake's answers directly (not a resolver)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
        yield s


@pytest.mark.parametrize(
    ("url", "embed"),
    [
        ("https://vidmoly.to/w/w3pb8zk2qv1m", "https://vidmoly.to/embed-w3pb8zk2qv1m.html"),
        ("https://vidmoly.net/w3pb8zk2qv1m", "https://vidmoly.net/embed-w3pb8zk2qv1m.html"),
        ("https://vidmoly.biz/embed/w3pb8zk2qv1m/?x=1", "https://vidmoly.biz/embed-w3pb8zk2qv1m.html"),
        ("http://127.0.0.1:1/vidmoly/w/abc123", "http://127.0.0.1:1/vidmoly/embed-abc123.html"),
        ("https://vidmoly.to/embed-w3pb8zk2qv1m.html", None),
        ("https://vidmoly.to/", None),
    ],
)
def test_embed_form(url, embed):
    assert vidmoly.embed_form(url) == embed


async def test_embed_page_with_vidmoly_referer(origin, client, state):
    src = await resolve_media(client, "Vidmoly", origin + embed_path("vidmoly", CODE), UA)
    assert (src.url, src.kind) == (f"{origin}/media/vidmoly-{CODE}/master.m3u8", "hls")
    assert src.headers == {"User-Agent": UA, "Referer": "https://vidmoly.biz"}
    assert [(e["path"], e["referer"]) for e in state.request_log] == [
        (f"/vidmoly/embed-{CODE}.html", "https://vidmoly.biz")
    ]


async def test_fake_page_has_no_player_without_that_referer(origin, raw):
    url = origin + embed_path("vidmoly", CODE)
    async with raw.get(url) as resp:
        assert resp.status == 200 and vidmoly.player_source(await resp.text()) is None
    async with raw.get(url, headers={"Referer": "https://vidmoly.biz"}) as resp:
        assert vidmoly.player_source(await resp.text()) is not None


async def test_other_link_form_falls_back_to_embed_form(origin, client, state):
    src = await resolve_media(client, "Vidmoly", f"{origin}/vidmoly/w/{CODE}", UA)
    assert src.url == f"{origin}/media/vidmoly-{CODE}/master.m3u8"
    assert [e["path"] for e in state.request_log] == [f"/vidmoly/w/{CODE}", f"/vidmoly/embed-{CODE}.html"]


async def test_frame_request_is_the_last_try(aiohttp_server, client):
    """A page that only shows its player when loaded as a frame (Sec-Fetch-Dest: iframe)."""
    seen: list[str | None] = []

    async def page(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Sec-Fetch-Dest"))
        player = 'sources: [{file:"/hls/master.m3u8"}]' if seen[-1] == "iframe" else ""
        return web.Response(text=f"<html><script>{player}</script></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/embed-abc123.html", page)
    app.router.add_get("/w/abc123", page)
    server = await aiohttp_server(app)
    src = await resolve_media(client, "Vidmoly", str(server.make_url("/w/abc123")), UA)
    assert src.url == str(server.make_url("/hls/master.m3u8"))
    assert seen == ["document", "document", "iframe"]


async def test_no_player_anywhere_is_a_reason(aiohttp_server, client):
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<html><p>Please wait</p></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/w/abc123", page)
    app.router.add_get("/embed-abc123.html", page)
    server = await aiohttp_server(app)
    with pytest.raises(HosterError) as err:
        await resolve_media(client, "Vidmoly", str(server.make_url("/w/abc123")), UA)
    assert err.value.reason == "no player in embed page (2 link form(s) tried)"


@pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed")
async def test_playlist_and_segments_want_the_same_referer(origin, client, raw):
    src = await resolve_media(client, "Vidmoly", origin + embed_path("vidmoly", CODE), UA)
    for url in (src.url, src.url.replace("master.m3u8", "seg000.ts")):
        async with raw.get(url, headers={"User-Agent": UA}) as resp:
            assert resp.status == 403
        async with raw.get(url, headers=src.headers) as resp:
            assert resp.status == 200
