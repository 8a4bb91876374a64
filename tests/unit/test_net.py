"""The pure parts of the network layer: DNS wire format, wall detection on the real page shapes, proxy
choice and redaction, site routes and their persistence."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from aniworldd.net import challenge as walls
from aniworldd.net.dnswire import DnsWireError, build_query, parse_response
from aniworldd.net.proxy import proxy_for, redact, validate_proxy
from aniworldd.net.routes import Route, SiteRoutes

CHALLENGES = Path(__file__).resolve().parents[1] / "fakesite" / "templates" / "challenges"


def page(name: str) -> str:
    return (CHALLENGES / name).read_text(encoding="utf-8")


# -- DNS wire format -------------------------------------------------------------------------------


def _answer(query: bytes, records: list[tuple[int, int, bytes]], rcode: int = 0) -> bytes:
    """A response to `query` whose answers use a compression pointer to the question name (offset 12)."""
    qid = struct.unpack("!H", query[:2])[0]
    header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(records), 0, 0)
    body = query[12:]
    for rtype, ttl, rdata in records:
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata
    return header + body


def test_a_records_and_their_ttl_come_back_through_compression_pointers():
    query = build_query("serienstream.to", qid=0)
    assert query[:2] == b"\x00\x00" and b"\x0cserienstream\x02to\x00" in query
    rcode, records = parse_response(
        _answer(query, [(1, 300, bytes([186, 2, 175, 5])), (1, 60, bytes([1, 2, 3, 4]))])
    )
    assert rcode == 0
    assert [(r.name, r.data, r.ttl) for r in records] == [
        ("serienstream.to", "186.2.175.5", 300),
        ("serienstream.to", "1.2.3.4", 60),
    ]


def test_nxdomain_and_broken_messages():
    query = build_query("gone.example")
    assert parse_response(_answer(query, [], rcode=3)) == (3, [])
    with pytest.raises(DnsWireError):
        parse_response(b"\x00\x01")
    looped = struct.pack("!HHHHHH", 0, 0x8180, 0, 1, 0, 0) + b"\xc0\x0c"  # a pointer to itself
    with pytest.raises(DnsWireError):
        parse_response(looped)
    with pytest.raises(DnsWireError):
        build_query("a..b")


# -- walls vs normal pages -------------------------------------------------------------------------


def test_a_normal_page_with_the_beacon_and_ddos_guard_footer_is_normal():
    text = page("normal-page-with-beacon.html")
    assert walls.detect(200, {"server": "ddos-guard"}, text) is None
    assert (
        walls.detect(200, {"server": "ddos-guard"}, text, expected=lambda t: 'id="season-nav"' in t) is None
    )


def test_the_cloudflare_interstitial_is_a_passable_challenge():
    found = walls.detect(
        403, {"server": "cloudflare", "cf-mitigated": "challenge"}, page("cloudflare-interstitial.html")
    )
    assert found is not None and found.kind == walls.CLOUDFLARE and found.passable
    # the old "under attack" form: 503 without the header, recognised by its title
    assert walls.detect(503, {}, page("cloudflare-interstitial.html")).kind == walls.CLOUDFLARE


def test_the_turnstile_step_and_ddos_guard_check_are_walls_nobody_but_a_person_passes():
    turnstile = walls.detect(200, {}, page("sto-turnstile-modal.html"))
    assert turnstile.kind == walls.TURNSTILE and not turnstile.passable
    guard = walls.detect(403, {"server": "ddos-guard"}, page("ddos-guard-check.html"))
    assert guard.kind == walls.DDOS_GUARD and not guard.passable


def test_challenge_markers_count_only_when_the_asked_for_content_is_missing():
    widget = "<html><head><title>Serie</title></head><body><div class='cf-turnstile'></div></body></html>"
    assert walls.detect(200, {}, widget) is None  # a login form with a widget on a normal page
    assert walls.detect(200, {}, widget, expected=lambda t: "season-nav" in t).kind == walls.TURNSTILE
    assert walls.detect(200, {}, widget + "season-nav", expected=lambda t: "season-nav" in t) is None
    # a small 403 from Cloudflare with no marker at all is still Cloudflare refusing us
    assert walls.detect(403, {"server": "cloudflare"}, "<html>denied</html>").kind == walls.CLOUDFLARE_BLOCK
    # a series called "Mr. Robot" is not a robot check
    assert walls.detect(200, {}, "<title>Mr. Robot | SerienStream</title>") is None


# -- proxies ---------------------------------------------------------------------------------------


def test_proxy_urls_are_validated_and_redacted():
    assert validate_proxy("socks5h://user:pw@proxy.lan:1080") == "socks5h://user:pw@proxy.lan:1080"
    for bad in ("ftp://proxy", "http://", "http://proxy:99999", "http://pro xy:8080"):
        with pytest.raises(ValueError):
            validate_proxy(bad)
    assert redact("http://user:s3cret@10.0.0.1:3128") == "http://user:***@10.0.0.1:3128"
    assert redact("http://[::1]:3128") == "http://[::1]:3128"
    assert "s3cret" not in redact("socks5://u:s3cret@[fd00::1]:1080")


def test_proxy_choice_follows_config_then_the_environment():
    env = {
        "HTTPS_PROXY": "http://env:3128",
        "HTTP_PROXY": "http://cgi-header:1",
        "NO_PROXY": "local.lan,10.0.0.0/8",
    }
    assert proxy_for("https://aniworld.to/x", "socks5://cfg:1080", env) == "socks5://cfg:1080"
    assert proxy_for("https://aniworld.to/x", None, env) == "http://env:3128"
    assert (
        proxy_for("http://hoster.example/x", None, env) is None
    )  # upper-case HTTP_PROXY is ignored (httpoxy)
    assert proxy_for("http://hoster.example/x", None, {"http_proxy": "http://p:1"}) == "http://p:1"
    assert proxy_for("https://nas.local.lan/x", None, env) is None
    assert proxy_for("https://10.1.2.3/x", None, env) is None
    assert (
        proxy_for("https://aniworld.to/x", None, {"ALL_PROXY": "socks5h://all:1080"}) == "socks5h://all:1080"
    )


# -- routes ----------------------------------------------------------------------------------------


def test_routes_add_the_last_resort_pin_and_remember_the_working_one(tmp_path):
    state = tmp_path / "provider-routes.json"
    sites = {
        "sto": ["https://serienstream.to", "https://serienstream.cx"],
        "aniworld": ["https://aniworld.to"],
    }
    routes = SiteRoutes(sites, last_resort={"serienstream.to": "186.2.175.5"}, state_path=state)
    assert [r.label() for r in routes.routes("sto")] == [
        "https://serienstream.to",
        "https://serienstream.cx",
        "https://serienstream.to via 186.2.175.5",
    ]
    assert routes.site_of_url("https://s.to/serie/x") == "sto"
    assert routes.site_of_url("https://www.aniworld.to/anime/stream/x") == "aniworld"
    assert routes.site_of_url("https://voe.sx/e/x") is None
    routes.mark_good("sto", Route("https://serienstream.to", "186.2.175.5"))
    again = SiteRoutes(sites, last_resort={"serienstream.to": "186.2.175.5"}, state_path=state)
    assert again.current("sto") == Route("https://serienstream.to", "186.2.175.5")
    assert again.routes("sto")[0].pin == "186.2.175.5"


def test_an_unreadable_or_stale_routes_file_is_ignored(tmp_path):
    state = tmp_path / "provider-routes.json"
    state.write_text("{not json")
    sites = {"sto": ["https://serienstream.to"]}
    assert SiteRoutes(sites, state_path=state).current("sto").origin == "https://serienstream.to"
    state.write_text('{"sto": "https://gone.example|"}')  # an address no longer configured
    assert SiteRoutes(sites, state_path=state).current("sto").origin == "https://serienstream.to"


def test_credentials_are_scrubbed_from_any_message():
    from aniworldd.download.ytdlp import classify_failure
    from aniworldd.net.proxy import scrub_credentials

    text = "ERROR: Unable to connect to proxy http://nas:pr0xy%40pw@10.0.0.1:3128 (socks5h://a:b@h:1)"
    assert "pr0xy" not in scrub_credentials(text) and ":b@" not in scrub_credentials(text)
    assert "nas:***@10.0.0.1:3128" in scrub_credentials(text)
    reason = classify_failure([text], 1, None).reason
    assert "pr0xy" not in reason and "nas:***@" in reason
