"""HttpClient: retries with backoff, error mapping, per-host limits, spacing and the page cache.

Backoff delays are checked through an injected `sleep` that records what it was asked to wait (no timed
asserts); cache expiry through an injected clock.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from aniworldd.providers.base import BlockedError, NotFoundError, ProviderError, UnreachableError
from aniworldd.providers.http import HttpClient, challenge_reason
from tests.fakesite.app import start_fakesite
from tests.fakesite.state import FakeSiteState


class Sleeps:
    """An injected sleep: records the delays, waits only a tick."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(round(delay, 6))
        await asyncio.sleep(0)


def client(**kw) -> HttpClient:
    kw.setdefault("min_interval", 0.0)
    kw.setdefault("jitter", 0.0)
    kw.setdefault("user_agent", "aniworldd-test/1.0")
    return HttpClient(**kw)


@pytest.fixture
async def site():
    state = FakeSiteState()
    runner, origin = await start_fakesite(state)
    yield state, origin
    await runner.cleanup()


SERIES = "/anime/stream/kaguya-sama-love-is-war"


async def test_503_is_retried_with_exponential_backoff_then_succeeds(site):
    state, origin = site
    state.fail_next = 2
    sleeps = Sleeps()
    async with client(retries=3, backoff=0.5, sleep=sleeps) as c:
        page = await c.get(origin + SERIES)
    assert page.status == 200 and "Kaguya-sama" in page.text
    assert sleeps.delays == [0.5, 1.0]
    assert len(state.site_requests()) == 3
    assert c.stats["retries"] == 2


async def test_5xx_after_all_retries_is_unreachable(site):
    state, origin = site
    state.fail_next = 100
    sleeps = Sleeps()
    async with client(retries=2, backoff=0.25, sleep=sleeps) as c:
        with pytest.raises(UnreachableError, match="HTTP 503"):
            await c.get(origin + SERIES)
    assert sleeps.delays == [0.25, 0.5]
    assert len(state.site_requests()) == 3


async def test_backoff_is_capped():
    c = client(backoff=1.0, backoff_max=5.0)
    assert [c.backoff_delay(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_connection_refused_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    sleeps = Sleeps()
    async with client(retries=1, backoff=0.1, sleep=sleeps) as c:
        with pytest.raises(UnreachableError, match="unreachable"):
            await c.get(f"http://127.0.0.1:{port}/anime/stream/x")
    assert sleeps.delays == [0.1]


async def test_timeout_is_retried_then_unreachable(site):
    state, origin = site
    state.delay = 0.6
    sleeps = Sleeps()
    async with client(retries=1, timeout=0.2, sleep=sleeps) as c:
        with pytest.raises(UnreachableError, match="timeout"):
            await c.get(origin + SERIES)
    assert len(state.site_requests()) == 2
    assert len(sleeps.delays) == 1


async def test_cloudflare_challenge_is_blocked_and_not_retried(site):
    state, origin = site
    state.blocked = True
    sleeps = Sleeps()
    async with client(retries=3, sleep=sleeps) as c:
        with pytest.raises(BlockedError, match="Cloudflare"):
            await c.get(origin + SERIES)
    assert len(state.site_requests()) == 1 and sleeps.delays == []


async def test_404_is_not_found_and_not_retried(site):
    state, origin = site
    async with client(retries=3) as c:
        with pytest.raises(NotFoundError):
            await c.get(origin + "/anime/stream/no-such-series")
    assert len(state.site_requests()) == 1


# -- a small server for the cases the fake site does not model ---------------------------------------------


@pytest.fixture
async def odd_server(aiohttp_server):
    seen: dict[str, list] = {"paths": [], "agents": []}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen["paths"].append(request.path)
        seen["agents"].append(request.headers.get("User-Agent"))
        name = request.match_info["name"]
        if name == "captcha":
            return web.Response(
                text="<html><head><title>Captcha - bist du ein Roboter?</title></head></html>",
                content_type="text/html",
            )
        if name == "cf503":
            return web.Response(
                status=503,
                content_type="text/html",
                text="<html><script>window._cf_chl_opt={cType:'managed'}</script></html>",
            )
        if name == "busy":
            return web.Response(status=429, headers={"Retry-After": "3"}, text="slow down")
        if name == "redir":
            raise web.HTTPFound("/target?x=1")
        if name == "teapot":
            return web.Response(status=418, text="no")
        if name == "form":
            form = await request.post()
            return web.json_response({"keyword": form.get("keyword")})
        if name == "mention":
            return web.Response(
                text="<html><head><title>Series</title></head><body><div class='g-recaptcha'>"
                "</div></body></html>",
                content_type="text/html",
            )
        return web.Response(text=f"page {name}", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{name}", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), seen


async def test_captcha_page_is_blocked(odd_server):
    base, _ = odd_server
    async with client() as c:
        with pytest.raises(BlockedError, match="captcha"):
            await c.get(base + "/captcha")
        # a page that merely contains a captcha widget is still a page
        assert (await c.get(base + "/mention")).status == 200


async def test_cloudflare_503_challenge_is_blocked(odd_server):
    base, seen = odd_server
    async with client(retries=3, sleep=Sleeps()) as c:
        with pytest.raises(BlockedError):
            await c.get(base + "/cf503")
    assert seen["paths"] == ["/cf503"]


async def test_429_honours_retry_after_then_reports_blocked(odd_server):
    base, seen = odd_server
    sleeps = Sleeps()
    async with client(retries=2, backoff=0.5, sleep=sleeps) as c:
        with pytest.raises(BlockedError, match="429"):
            await c.get(base + "/busy")
    assert sleeps.delays == [3.0, 3.0]
    assert seen["paths"] == ["/busy"] * 3


async def test_other_4xx_is_a_provider_error(odd_server):
    base, _ = odd_server
    async with client() as c:
        with pytest.raises(ProviderError, match="418"):
            await c.get(base + "/teapot")


async def test_redirect_is_not_followed_and_location_is_absolute(odd_server):
    base, seen = odd_server
    async with client() as c:
        page = await c.get_redirect(base + "/redir")
    assert page.status == 302
    assert page.location == base + "/target?x=1"
    assert seen["paths"] == ["/redir"]


async def test_user_agent_and_form_post(odd_server):
    base, seen = odd_server
    async with client(user_agent="MyAgent/2") as c:
        page = await c.post(base + "/form", {"keyword": "kaguya"})
    assert page.json() == {"keyword": "kaguya"}
    assert seen["agents"] == ["MyAgent/2"]


def test_challenge_reason_markers():
    assert challenge_reason(403, {}, "<html><head><title>Just a moment...</title>") is not None
    assert challenge_reason(200, {"cf-mitigated": "challenge"}, "") == "Cloudflare challenge"
    assert challenge_reason(200, {}, "<html><head><title>Kaguya</title></head><p>recaptcha</p>") is None


# -- cache -----------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_cache_serves_pages_until_the_ttl_expires(site):
    state, origin = site
    clock = Clock()
    async with client(cache_ttl=60, clock=clock) as c:
        first = await c.get(origin + SERIES)
        again = await c.get(origin + SERIES)
        assert again is first
        assert len(state.site_requests()) == 1
        clock.now += 59
        await c.get(origin + SERIES)
        assert len(state.site_requests()) == 1
        clock.now += 2
        await c.get(origin + SERIES)
        assert len(state.site_requests()) == 2
        await c.get(origin + SERIES, use_cache=False)  # a forced refresh goes out and re-fills the cache
        assert len(state.site_requests()) == 3
        await c.get(origin + SERIES)
        assert len(state.site_requests()) == 3
        c.invalidate()
        await c.get(origin + SERIES)
        assert len(state.site_requests()) == 4
    assert c.stats["cache_hits"] == 3


async def test_concurrent_gets_of_one_page_share_a_request(site):
    state, origin = site
    async with client(cache_ttl=60) as c:
        pages = await asyncio.gather(*(c.get(origin + SERIES) for _ in range(5)))
    assert len({id(p) for p in pages}) == 1
    assert len(state.site_requests()) == 1


async def test_errors_are_not_cached(site):
    state, origin = site
    state.fail_next = 1
    async with client(cache_ttl=60, retries=0) as c:
        with pytest.raises(UnreachableError):
            await c.get(origin + SERIES)
        assert (await c.get(origin + SERIES)).status == 200
    assert len(state.site_requests()) == 2


async def test_cache_disabled_with_zero_ttl(site):
    state, origin = site
    async with client(cache_ttl=0) as c:
        await c.get(origin + SERIES)
        await c.get(origin + SERIES)
    assert len(state.site_requests()) == 2


# -- politeness: per-host concurrency and spacing ------------------------------------------------


async def _wait_for(predicate, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached: {what}")


async def test_at_most_max_concurrent_requests_per_host(site):
    state, origin = site
    state.hold = asyncio.Event()
    host = origin.removeprefix("http://")
    async with client(max_concurrent=2, cache_ttl=0) as c:
        tasks = [asyncio.ensure_future(c.get(f"{origin}{SERIES}/staffel-{1 + n % 3}")) for n in range(6)]
        await _wait_for(lambda: state.inflight.get(host, 0) == 2, "two requests in flight")
        await asyncio.sleep(0.1)  # give a third request every chance to start (it must not)
        assert state.inflight[host] == 2
        state.hold.set()
        pages = await asyncio.gather(*tasks)
    assert all(p.status == 200 for p in pages)
    assert state.max_inflight[host] == 2
    assert len(state.site_requests()) == 6


async def test_the_limit_is_per_host(site):
    state, origin = site
    state.hold = asyncio.Event()
    port = origin.rsplit(":", 1)[1]
    other = f"http://localhost:{port}"
    async with client(max_concurrent=1, cache_ttl=0) as c:
        tasks = [asyncio.ensure_future(c.get(base + SERIES)) for base in (origin, origin, other, other)]
        await _wait_for(lambda: sum(state.inflight.values()) == 2, "one request per host in flight")
        await asyncio.sleep(0.05)
        assert sorted(state.inflight.values()) == [1, 1]
        state.hold.set()
        await asyncio.gather(*tasks)
    assert set(state.max_inflight.values()) == {1}


async def test_minimum_spacing_between_requests_to_one_host(site):
    state, origin = site
    async with client(max_concurrent=4, min_interval=0.05, cache_ttl=0) as c:
        await asyncio.gather(
            *(c.get(f"{origin}{SERIES}/staffel-{n}") for n in (1, 2, 3)), c.get(origin + SERIES)
        )
    times = sorted(r["time"] for r in state.site_requests())
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) == 3
    assert min(gaps) >= 0.045  # lower bound only: spacing is enforced, slowness cannot break this


async def test_invalid_url_is_a_provider_error():
    async with client() as c:
        with pytest.raises(ProviderError):
            await c.get("ftp://example.org/x")


async def test_from_config_takes_the_provider_section():
    c = HttpClient.from_config(
        {
            "user_agent": "UA",
            "timeout": 3.0,
            "retries": 5,
            "max_concurrent": 4,
            "min_interval": 0.2,
            "cache_ttl": 30.0,
            "aniworld_url": "https://aniworld.to",
        }
    )
    assert (c.user_agent, c.timeout, c.retries, c.max_concurrent, c.min_interval, c.cache_ttl) == (
        "UA",
        3.0,
        5,
        4,
        0.2,
        30.0,
    )
    async with c:
        transport = c.transport
        assert transport is c.transport
    assert c._transport is None  # closed with the client; a new one is made on the next request
