"""VOE today: the first page's redirect variants and the junk-token list read from the player script.

Shapes: voe-embed.html, voe-embed-link.html (quoted link to another host), voe-embed-step2.html; the
fake's `junk...` player pages are encoded with other junk tokens that only their loader script names.
"""

from __future__ import annotations

import pytest

from aniworldd.providers.hosters import resolve_media, voe
from tests.fakesite import encoders
from tests.fakesite.hosters import VOE_OTHER_JUNK, embed_path, other_origin, voe_loader_script

UA = "Mozilla/5.0 (X11; Linux x86_64) aniworldd-test"


def paths(state) -> list[str]:
    return [entry["path"] for entry in state.request_log]


@pytest.mark.parametrize(
    ("html", "target"),
    [
        ("<script>window.location.href = 'https://voe.example/e/abc';</script>", "https://voe.example/e/abc"),
        ("<script>var nextUrl = ' https://x9.example/e/k7q2 ';</script>", "https://x9.example/e/k7q2"),
        ('<a href="https://cdn-22.example/e/k7q2?x=1">Continue</a>', "https://cdn-22.example/e/k7q2?x=1"),
        (  # its own URL is not a target; the script's relative redirect is
            "<link rel='canonical' href='https://voe.sx/e/self1'>"
            "<script>window.location.href = '/play/self1';</script>",
            "/play/self1",
        ),
        ("<script>var x = 'https://voe.example/v/abc';</script>", None),
    ],
)
def test_find_redirect(html, target):
    assert voe.find_redirect(html, "https://voe.sx/e/self1") == target


def test_junk_tokens_from_script_and_decoding_with_them():
    assert voe.junk_tokens_in(voe_loader_script("junk1")) == VOE_OTHER_JUNK
    assert voe.junk_tokens_in(voe_loader_script("plain")) == encoders.VOE_JUNK_TOKENS
    assert voe.junk_tokens_in("var a = ['x', 'y', 'z']; var b = [1, 2];") is None
    url = "https://cdn.example/hls/master.m3u8"
    encoded = encoders.voe_json_payload(url, junk_tokens=VOE_OTHER_JUNK)
    with pytest.raises(ValueError):
        voe.decode_json_payload(encoded)  # the fixed list leaves the other tokens in
    assert voe.decode_json_payload(encoded, VOE_OTHER_JUNK) == {"source": url}


def test_inline_token_list_is_used_first():
    url = "https://cdn.example/v.mp4"
    encoded = encoders.voe_json_payload(url, url, junk_tokens=VOE_OTHER_JUNK)
    html = (
        f'<script type="application/json">["{encoded}"]</script>'
        f"<script>var t = {list(VOE_OTHER_JUNK)!r};</script>"
    )
    assert voe.extract(html, "https://voe.sx/e/x", (voe.inline_junk_tokens(html),)) == (url, "mp4")


async def test_quoted_link_to_another_host(origin, client, state):
    code = "link42"
    other = other_origin(origin)
    src = await resolve_media(client, "VOE", origin + embed_path("voe", code), UA)
    assert (src.url, src.kind) == (f"{other}/media/voe-{code}.mp4", "mp4")
    assert src.headers == {"User-Agent": UA, "Referer": f"{other}/voe-edge/e/{code}"}
    assert paths(state) == [f"/voe/e/{code}", f"/voe-edge/e/{code}"]


async def test_junk_tokens_read_from_the_loader_script(origin, client, state):
    code = "junk42"
    src = await resolve_media(client, "VOE", origin + embed_path("voe", code), UA)
    assert (src.url, src.kind) == (f"{origin}/media/voe-{code}.mp4", "mp4")
    assert paths(state)[:2] == [f"/voe/e/{code}", f"/voe-edge/e/{code}"]
    assert f"/voe-edge/js/loader.3b1c0e.js?c={code}" in paths(state)[2:]


async def test_usual_tokens_need_no_script(origin, client, state):
    await resolve_media(client, "VOE", origin + embed_path("voe", "plain42"), UA)
    assert paths(state) == ["/voe/e/plain42", "/voe-edge/e/plain42"]
