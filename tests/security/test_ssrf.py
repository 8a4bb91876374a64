"""Issue 16 item 4: provider and hoster pages are strangers' input.  An embed or media URL on a loopback /
private address must not be fetched (nor saved into the library), and a page claiming 20,000 seasons must
not turn one add into 20,000 requests.  Each test reproduces the attack against the daemon's provider
stack as `build_providers` wires it from the config."""

from __future__ import annotations

import pytest
import yaml
from aiohttp import web

from aniworldd.config import load_text
from aniworldd.providers.base import ProviderError
from aniworldd.providers.registry import build_providers
from aniworldd.providers.sources import NoSourceError, SourceFinder
from tests.conftest import free_port
from tests.fakesite.app import start_fakesite
from tests.fakesite.catalog import ANIWORLD, GER_DUB, Catalog, make_series
from tests.fakesite.state import FakeSiteState

KEY = "ssrf-probe"


def providers(tmp_path, origin: str, **extra):
    provider = {"aniworld_url": origin, "sto_url": origin, "min_interval": 0, "retries": 0, **extra}
    text = yaml.safe_dump({"data_dir": str(tmp_path / "data"), "provider": provider})
    return build_providers(load_text(text, "config.yaml", env={}, base_dir=tmp_path)["provider"])


@pytest.fixture
async def internal():
    """A service on the NAS's own loopback (127.0.0.2: not the configured site) that counts its hits."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="<html>router admin</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.2", port).start()
    yield f"http://127.0.0.2:{port}", hits
    await runner.cleanup()


async def test_an_embed_url_on_a_private_address_is_not_fetched(tmp_path, internal):
    internal_origin, hits = internal
    series = make_series(ANIWORLD, KEY, "SSRF Probe", {1: 1}, languages=[GER_DUB], hosters=["Vidoza"])
    state = FakeSiteState(catalog=Catalog([series]))
    state.hoster_origin = internal_origin  # the site's redirect now points into the home network
    runner, origin = await start_fakesite(state)
    p = providers(tmp_path, origin)
    try:
        finder = SourceFinder(p.for_site, p.client, ["Vidoza"], ["ger-dub"])
        with pytest.raises(NoSourceError) as err:
            await finder.first(ANIWORLD, KEY, 1, 1)
    finally:
        await p.close()
        await runner.cleanup()
    assert hits == []  # nothing reached the internal service
    assert "127.0.0.2" in str(err.value) and "private" in str(err.value)


async def test_allow_private_lets_a_configured_network_through(tmp_path, internal):
    internal_origin, hits = internal
    runner, origin = await start_fakesite(FakeSiteState())
    p = providers(tmp_path, origin, allow_private=["127.0.0.2/32"])
    try:
        page = await p.client.fetch("GET", internal_origin + "/x")
    finally:
        await p.close()
        await runner.cleanup()
    assert page.status == 200 and hits == ["/x"]


async def test_a_media_url_on_a_private_address_is_refused_before_yt_dlp_gets_it(tmp_path):
    runner, origin = await start_fakesite(FakeSiteState())
    p = providers(tmp_path, origin)
    try:
        await p.client.check_url(origin + "/media/x.mp4")  # the configured site's own address is fine
        for url in (
            "http://127.0.0.2:9/x.mp4",
            "http://[::1]:9/x",
            "http://169.254.169.254/latest/meta-data",
        ):
            with pytest.raises(ProviderError, match="refused"):
                await p.client.check_url(url)
    finally:
        await p.close()
        await runner.cleanup()


def test_a_name_is_judged_by_the_address_it_resolves_to():
    from aniworldd.net.policy import AddressPolicy

    policy = AddressPolicy({"aniworld.to", "186.2.175.5"}, ["10.1.0.0/16"])
    assert "refused" in policy.refusal("evil.example", ["127.0.0.1"])  # a name resolving to loopback
    assert "refused" in policy.refusal("evil.example", ["93.184.216.34", "192.168.1.1"])  # any of them
    assert "refused" in policy.refusal("evil.example", ["::ffff:127.0.0.1"])  # IPv4-mapped loopback
    assert policy.refusal("cdn.example", ["93.184.216.34"]) is None
    assert policy.refusal("nas.lan", ["10.1.2.3"]) is None  # allow_private
    assert policy.refusal("aniworld.to", ["127.0.0.1"]) is None  # a configured site (a local mirror)


def _series_page(seasons: int) -> str:
    links = "".join(
        f'<li><a href="/anime/stream/{KEY}/staffel-{n}">{n}</a></li>' for n in range(1, seasons + 1)
    )
    return (
        '<html><body><div class="series-title"><h1><span>Flood</span></h1></div>'
        f'<div id="stream" class="hosterSiteDirectNav"><ul>{links}</ul></div></body></html>'
    )


async def test_a_page_claiming_20000_seasons_does_not_cause_20000_requests(tmp_path, aiohttp_server):
    requests: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        requests.append(request.path)
        return web.Response(text=_series_page(20_000), content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = await aiohttp_server(app)
    origin = str(server.make_url("")).rstrip("/")
    p = providers(tmp_path, origin)
    try:
        with pytest.raises(ProviderError, match="20000 seasons"):
            await p.aniworld.get_series(KEY)
    finally:
        await p.close()
    assert requests == [f"/anime/stream/{KEY}"]
