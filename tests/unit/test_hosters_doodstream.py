"""Doodstream and its mirrors (doodstream-embed.html, doodstream-pass_md5.txt and a playmogo-style mirror).

The fake binds each media link to the User-Agent that fetched pass_md5 and checks `expiry` is "now" in
seconds or milliseconds; mirror pages live on the server's other host name (localhost vs 127.0.0.1).
"""

from __future__ import annotations

import re
import time

import aiohttp
import pytest
from aiohttp import web

from aniworldd.providers.hosters import doodstream, is_supported, normalize, resolve_media
from aniworldd.providers.hosters.base import HosterError
from tests.fakesite.hosters import embed_path, other_origin
from tests.fakesite.media import ffmpeg_available

UA = "Mozilla/5.0 (X11; Linux x86_64) aniworldd-test"
needs_ffmpeg = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed")

FIXTURE_SCRIPT = """
    function makePlay(){for(var a="",t="ABC",n=t.length,o=0;10>o;o++)a+=t.charAt(0);
    return a+"?token=xk29fjq7wm3p&expiry="+Date.now();}
    $.get('/pass_md5/76513045-83-110-1739461234-8a1f6a2c8d0b5e3f4a7c9d2e1b0f3a6c/xk29fjq7wm3p', function(){});
"""


@pytest.fixture
async def raw():
    """A plain aiohttp session for looking at the fake's answers directly (not a resolver)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
        yield s


@pytest.mark.parametrize(
    ("script", "url", "token", "seconds"),
    [
        (
            FIXTURE_SCRIPT,
            "/pass_md5/76513045-83-110-1739461234-8a1f6a2c8d0b5e3f4a7c9d2e1b0f3a6c/xk29fjq7wm3p",
            "xk29fjq7wm3p",
            False,
        ),
        (  # double quotes, an absolute URL on another host, expiry in seconds
            'return a+"?token=Tk1&expiry="+Math.floor(Date.now() / 1000);}'
            ' $.get("https://cdn9.dood-mirror.example/pass_md5/9-8-7/Tk1", function(d){});',
            "https://cdn9.dood-mirror.example/pass_md5/9-8-7/Tk1",
            "Tk1",
            True,
        ),
        (  # no $.get at all: the URL sits in another call; no makePlay token -> last path segment
            "fetch('//playmogo.example/pass_md5/1-2/abc9')",
            "//playmogo.example/pass_md5/1-2/abc9",
            "abc9",
            False,
        ),
    ],
)
def test_extract_pass_md5_forms(script, url, token, seconds):
    found = doodstream.extract(f"<html><script>{script}</script></html>")
    assert found == doodstream.PassMd5(url=url, token=token, seconds=seconds)


def test_extract_nothing():
    assert doodstream.extract("<html><script>var x = '/pass_md5';</script></html>") is None


def test_final_url_units():
    ms = doodstream.final_url("https://c/x~", "tok", now=1767225600.5)
    s = doodstream.final_url("https://c/x~", "tok", seconds=True, now=1767225600.5)
    assert re.fullmatch(r"https://c/x~[A-Za-z0-9]{10}\?token=tok&expiry=1767225600500", ms)
    assert re.fullmatch(r"https://c/x~[A-Za-z0-9]{10}\?token=tok&expiry=1767225600", s)


def test_any_dood_label_is_doodstream():
    for label in ("Doodstream", "DoodStream", " dood ", "Dood.li", "doodstream.com"):
        assert normalize(label) == "doodstream" and is_supported(label)


async def test_mirror_on_another_host_after_redirect(origin, client, state):
    """dood → 302 → playmogo on the other host name; its relative pass_md5 only works at that host."""
    mirror = other_origin(origin)
    src = await resolve_media(client, "DoodStream", origin + embed_path("Doodstream", "mirror9k"), UA)
    m = re.fullmatch(
        rf"{re.escape(mirror)}/media/doodstream-mirror9k~[A-Za-z0-9]{{10}}\?token=mirror9k&expiry=(\d+)",
        src.url,
    )
    assert m, src.url
    assert abs(int(m.group(1)) - time.time()) < 60  # the mirror page writes seconds
    page = f"{mirror}/playmogo/e/mirror9k"
    assert src.headers == {"User-Agent": UA, "Referer": page}
    md5 = [e for e in state.request_log if e["path"].startswith("/pass_md5/")]
    assert len(md5) == 1 and md5[0]["referer"] == page


async def test_absolute_pass_md5_url_on_another_host(origin, client, aiohttp_server):
    """A page that names pass_md5 by absolute URL at a different host than its own."""

    async def page(_request: web.Request) -> web.Response:
        html = (
            "<html><script>function makePlay(){return 'x?token=abs1&expiry='+Date.now();}"
            f"$.get('{origin}/pass_md5/76513045-83/abs1', function(d){{}});</script></html>"
        )
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/doodstream/e/abs1", page)
    server = await aiohttp_server(app)
    embed = str(server.make_url("/doodstream/e/abs1"))
    src = await resolve_media(client, "Doodstream", embed, UA)
    assert src.url.startswith(f"{origin}/media/doodstream-abs1~")
    assert src.headers == {"User-Agent": UA, "Referer": embed}


async def test_without_user_agent_the_clients_own_is_pinned(origin, client):
    src = await resolve_media(client, "Doodstream", origin + embed_path("doodstream", "ua1"))
    assert src.headers["User-Agent"] == client.user_agent and client.user_agent


async def test_refused_pass_md5_is_a_reason(aiohttp_server, client):
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<script>$.get('/pass_md5/1/x')</script>", content_type="text/html")

    async def md5(_request: web.Request) -> web.Response:
        return web.Response(text="RELOAD")

    app = web.Application()
    app.router.add_get("/e/x", page)
    app.router.add_get("/pass_md5/1/x", md5)
    server = await aiohttp_server(app)
    with pytest.raises(HosterError) as err:
        await resolve_media(client, "Doodstream", str(server.make_url("/e/x")), UA)
    assert err.value.reason == "pass_md5 gave no media prefix ('RELOAD')"


@needs_ffmpeg
async def test_media_link_is_bound_to_the_user_agent_and_referer(origin, client, raw):
    src = await resolve_media(client, "Doodstream", origin + embed_path("doodstream", "mirror5b"), UA)
    async with raw.get(src.url, headers={**src.headers, "User-Agent": "another browser"}) as resp:
        assert resp.status == 403
    async with raw.get(src.url, headers={"User-Agent": UA}) as resp:
        assert resp.status == 403  # no Referer
    stale = re.sub(r"expiry=\d+", "expiry=1000000000", src.url)
    async with raw.get(stale, headers=src.headers) as resp:
        assert resp.status == 403
    async with raw.get(src.url, headers=src.headers) as resp:
        assert resp.status == 200 and (await resp.read())[4:8] == b"ftyp"
