"""Vidara against the fake hoster built from the shared shapes (vidara-embed.html + vidara-api.json)."""

from __future__ import annotations

import aiohttp
import pytest

from aniworldd.providers.hosters import resolve_media, vidara
from aniworldd.providers.hosters.base import HosterError
from tests.fakesite.hosters import embed_path
from tests.fakesite.media import ffmpeg_available

UA = "Mozilla/5.0 (X11; Linux x86_64) aniworldd-test"
CODE = "q7m2x9k4w1zt"


@pytest.fixture
async def raw():
    """A plain aiohttp session for looking at the fake's answers directly (not a resolver)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
        yield s


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://vidara.to/e/q7m2x9k4w1zt", "q7m2x9k4w1zt"),
        ("https://vidara.so/v/Ab12cd/", "Ab12cd"),
        ("https://vidara.to/embed/Zz9.html?autoplay=1", "Zz9"),
        ("https://vidara.to/", None),
        ("https://vidara.to/e/bad-code", None),
    ],
)
def test_file_code_is_the_last_path_segment(url, code):
    assert vidara.file_code(url) == code


def test_api_answer_without_url_is_a_reason():
    assert vidara.streaming_url({"streaming_url": " https://x/m.m3u8 "}) == "https://x/m.m3u8"
    with pytest.raises(ValueError, match=r"no streaming_url in stream API answer \(File is processing\)"):
        vidara.streaming_url({"error": "File is processing"})
    with pytest.raises(ValueError):
        vidara.streaming_url(["https://x/m.m3u8"])


async def test_embed_page_then_api_with_origin_and_referer(origin, client, state):
    embed = origin + embed_path("vidara", CODE)
    src = await resolve_media(client, "Vidara", embed, UA)
    assert (src.url, src.kind, src.hoster) == (f"{origin}/media/vidara-{CODE}/master.m3u8", "hls", "Vidara")
    assert src.headers == {"User-Agent": UA, "Referer": f"{origin}/"}
    assert [(e["method"], e["path"], e["referer"]) for e in state.request_log] == [
        ("GET", f"/vidara/e/{CODE}", None),
        ("POST", "/api/stream", embed),
    ]


async def test_fake_api_refuses_what_the_real_one_refuses(origin, raw):
    """The resolver test above only proves something because the API says 403 without both headers."""
    body = {"filecode": CODE, "device": "web"}
    embed = origin + embed_path("vidara", CODE)
    cases = [
        ({}, 403),
        ({"Referer": embed}, 403),
        ({"Origin": origin}, 403),
        ({"Origin": "https://elsewhere.example", "Referer": embed}, 403),
        ({"Origin": origin, "Referer": embed}, 200),
    ]
    for headers, status in cases:
        async with raw.post(f"{origin}/api/stream", json=body, headers=headers) as resp:
            assert resp.status == status, headers
    async with raw.post(
        f"{origin}/api/stream", json={"filecode": CODE}, headers={"Origin": origin, "Referer": embed}
    ) as resp:
        assert resp.status == 400  # no "device": "web"


async def test_api_refusal_and_dead_file_are_reasons(origin, client, state):
    state.dead_codes.add("gone42")
    with pytest.raises(HosterError) as err:
        await resolve_media(client, "Vidara", origin + embed_path("vidara", "gone42"), UA)
    assert err.value.reason.startswith("file not found")
    state.down_hosters.add("vidara")
    with pytest.raises(HosterError) as err:
        await resolve_media(client, "Vidara", origin + embed_path("vidara", CODE), UA)
    assert "HTTP 503" in err.value.reason


@pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed")
async def test_media_wants_the_embed_origin_as_referer(origin, client, raw):
    src = await resolve_media(client, "Vidara", origin + embed_path("vidara", CODE), UA)
    async with raw.get(src.url, headers={"User-Agent": UA}) as resp:
        assert resp.status == 403
    async with raw.get(src.url, headers=src.headers) as resp:
        assert resp.status == 200 and (await resp.text()).startswith("#EXTM3U")
