"""Filemoon: the Byse API (AES-256-GCM playback) first, the classic packed page as fallback.

The fake serves the shared shapes filemoon-byse-embed.html / filemoon-byse-api.json (codes starting
`byse`) and filemoon-embed.html (classic; its API answers 404), payloads made by encoders.py.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from aniworldd.providers.hosters import filemoon, resolve_media
from aniworldd.providers.hosters.base import HosterError
from tests.fakesite import encoders
from tests.fakesite.hosters import embed_path

UA = "Mozilla/5.0 (X11; Linux x86_64) aniworldd-test"
SOURCES = {
    "sources": [
        {"url": "https://cdn.example/360/master.m3u8", "height": 360},
        {"url": "https://cdn.example/1080/master.m3u8", "height": 1080},
        {"url": "https://cdn.example/720/master.m3u8", "height": "720"},
    ]
}


def paths(state) -> list[str]:
    return [entry["path"] for entry in state.request_log]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://filemoon.sx/e/r4tq0v8mzs2d", "r4tq0v8mzs2d"),
        ("https://filemoon.to/e/r4tq0v8mzs2d/Some-Title.mp4", "r4tq0v8mzs2d"),
        ("https://filemoon.sx/d/r4tq0v8mzs2d", "r4tq0v8mzs2d"),
        ("https://bysezejataos.com/d/Ab12Cd34", "Ab12Cd34"),
        ("https://filemoon.sx/v/r4tq0v8mzs2d", None),
    ],
)
def test_file_code_after_e_or_d(url, code):
    assert filemoon.file_code(url) == code


def test_playback_decrypts_and_the_tallest_source_wins():
    playback = json.loads(encoders.byse_playback(SOURCES))
    assert filemoon.decrypt_playback(playback) == SOURCES
    assert filemoon.best_source(SOURCES) == "https://cdn.example/1080/master.m3u8"
    assert filemoon.source_from_api({"playback": playback}) == "https://cdn.example/1080/master.m3u8"


def test_second_payload_is_used_when_the_first_is_missing_or_broken():
    playback = json.loads(encoders.byse_playback(SOURCES))
    only_second = {k: v for k, v in playback.items() if k not in ("iv", "payload")}
    assert filemoon.decrypt_playback(only_second) == SOURCES
    tampered = dict(playback, payload=playback["payload"][:-4] + "AAAA")
    assert filemoon.decrypt_playback(tampered) == SOURCES
    with pytest.raises(ValueError, match="GCM tag"):
        filemoon.decrypt_playback(dict(tampered, payload2=tampered["payload"]))


def test_padding_may_be_missing_or_present():
    playback = json.loads(encoders.byse_playback(SOURCES, second=False))
    padded = {k: (v + "=" * (-len(v) % 4) if isinstance(v, str) else v) for k, v in playback.items()}
    padded["key_parts"] = [p + "=" * (-len(p) % 4) for p in playback["key_parts"]]
    assert filemoon.decrypt_playback(padded) == SOURCES


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {},
        {"key_parts": ["abc"], "iv": "AAAA", "payload": "AAAA"},
        {"key_parts": ["AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA"]},
    ],
)
def test_broken_playback_is_a_value_error(bad):
    with pytest.raises(ValueError):
        filemoon.decrypt_playback(bad)


def test_plain_source_or_file_strings():
    assert filemoon.best_source({"source": "https://a/x.m3u8"}) == "https://a/x.m3u8"
    assert filemoon.best_source({"file": "https://a/y.mp4"}) == "https://a/y.mp4"
    assert filemoon.best_source({"sources": []}) is None


async def test_byse_embed_resolves_through_the_api_alone(origin, client, state):
    for form in ("e", "d"):
        state.request_log.clear()
        embed = f"{origin}/byse/{form}/byse7x"
        src = await resolve_media(client, "Filemoon", embed, UA)
        assert (src.url, src.kind) == (f"{origin}/media/filemoon-byse7x/master.m3u8", "hls")
        assert src.headers == {"User-Agent": UA, "Referer": embed}
        assert paths(state) == ["/api/videos/byse7x"]
        assert state.request_log[0]["referer"] == embed


async def test_classic_page_is_the_fallback(origin, client, state):
    embed = origin + embed_path("filemoon", "r4tq0v8mzs2d")
    src = await resolve_media(client, "Filemoon", embed, UA)
    assert src.url == f"{origin}/media/filemoon-r4tq0v8mzs2d/master.m3u8"
    assert paths(state) == ["/api/videos/r4tq0v8mzs2d", "/filemoon/e/r4tq0v8mzs2d"]


async def test_both_failing_names_both_reasons(origin, client):
    # a Byse page whose API has nothing for it: no packed script either
    with pytest.raises(HosterError) as err:
        await resolve_media(client, "Filemoon", f"{origin}/byse/e/plain1", UA)
    assert err.value.reason == "no packed player script (Byse API: file not found (HTTP 404))"


async def test_api_at_the_origin_of_a_framed_player(origin, client, aiohttp_server):
    """A Filemoon page that frames the Byse player from a second domain: the API of that domain."""

    async def page(_request: web.Request) -> web.Response:
        html = f'<html><body><iframe src="{origin}/byse/e/byse9f" allowfullscreen></iframe></body></html>'
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/e/outer1", page)
    server = await aiohttp_server(app)
    src = await resolve_media(client, "Filemoon", str(server.make_url("/e/outer1")), UA)
    assert src.url == f"{origin}/media/filemoon-byse9f/master.m3u8"
    assert src.headers == {"User-Agent": UA, "Referer": f"{origin}/byse/e/byse9f"}
