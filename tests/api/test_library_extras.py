"""Issue 10 routes through the real app: monitored toggle, refresh now, calendar, iCal feed, webhook test."""

from __future__ import annotations

import icalendar

from aniworldd.services.calendar_service import CalendarService
from aniworldd.services.notifications import WebhookNotifier
from aniworldd.services.refresh_service import RefreshService
from tests.api.conftest import Api
from tests.conftest import webhook_receiver
from tests.fakesite.catalog import GER_SUB, Episode

KAGUYA = "kaguya-sama-love-is-war"


def _with_upkeep(api: Api, webhooks: list[dict] | None = None) -> RefreshService:
    ctx = api.ctx
    refresh = RefreshService(
        ctx.store, None, None, ctx.config["provider"], ctx.config["downloads"], bus=ctx.bus, services=ctx
    )
    ctx.extras["refresh"] = refresh
    ctx.extras["calendar"] = CalendarService(ctx.store)
    ctx.extras["notifier"] = WebhookNotifier(ctx.bus, webhooks or [], retries=0)
    return refresh


async def _add(api: Api, origin: str) -> None:
    status, data = await api.call("POST", "/api/anime/add", json={"link": f"{origin}/anime/stream/{KAGUYA}"})
    assert status == 200, data


async def test_monitored_toggle(logged_in: Api, fakesite: str) -> None:
    refresh = _with_upkeep(logged_in)
    await _add(logged_in, fakesite)
    status, data = await logged_in.call("GET", f"/api/anime/{KAGUYA}")
    assert status == 200 and data["monitored"] is True  # added through the daemon: monitored

    status, data = await logged_in.call("PATCH", f"/api/anime/{KAGUYA}", json={"monitored": False})
    assert status == 200 and data == {"key": KAGUYA, "monitored": False}
    status, data = await logged_in.call("GET", f"/api/anime/{KAGUYA}")
    assert data["monitored"] is False
    assert KAGUYA not in await refresh.due_keys(force=True)

    for bad in ({"monitored": "yes"}, {"monitored": 1}, {}):
        status, data = await logged_in.call("PATCH", f"/api/anime/{KAGUYA}", json=bad)
        assert status == 400 and data["error"]["code"] == "validation_error", bad
    status, data = await logged_in.call("GET", f"/api/anime/{KAGUYA}")
    assert data["monitored"] is False  # bad input changed nothing
    status, data = await logged_in.call("PATCH", "/api/anime/no-such-show", json={"monitored": True})
    assert status == 404
    status, data = await logged_in.call("PATCH", "/api/anime/Bad_Key", json={"monitored": True})
    assert status == 400
    resp = await logged_in.client.patch(f"/api/anime/{KAGUYA}", json={"monitored": True})
    assert resp.status == 401


async def test_refresh_one_series_now_and_calendar(logged_in: Api, fakesite: str, fakesite_state) -> None:
    _with_upkeep(logged_in)
    await _add(logged_in, fakesite)
    status, data = await logged_in.call("POST", "/api/anime/refresh", json={"key": KAGUYA})
    assert status == 200 and data["new_episodes"] == []

    series = fakesite_state.catalog.get("aniworld", KAGUYA)
    series.seasons[3].append(Episode(number=14, title_de="Neu", title_en="New", links={GER_SUB: ["VOE"]}))
    status, data = await logged_in.call("POST", "/api/anime/refresh", json={"key": KAGUYA})
    assert status == 200
    assert [(e["season"], e["episode"]) for e in data["new_episodes"]] == [(3, 14)]

    status, cal = await logged_in.call("GET", "/api/calendar?days=7")
    assert status == 200
    assert [(e["type"], e["key"], e["season"], e["episode"]) for e in cal["entries"]] == [
        ("listed", KAGUYA, 3, 14)
    ]
    for bad in ("0", "367", "x", "-3"):
        status, data = await logged_in.call("GET", f"/api/calendar?days={bad}")
        assert status == 400, bad

    status, data = await logged_in.call("POST", "/api/anime/refresh", json={"key": "unknown-show"})
    assert status == 404
    status, data = await logged_in.call("POST", "/api/anime/refresh")
    assert status == 202 and data["status"] == "started"


async def test_ical_feed_token_check(logged_in: Api, fakesite: str, fakesite_state) -> None:
    _with_upkeep(logged_in)
    await _add(logged_in, fakesite)
    series = fakesite_state.catalog.get("aniworld", KAGUYA)
    series.seasons[3].append(Episode(number=14, title_de="Neu; mit, Zeichen", links={GER_SUB: ["VOE"]}))
    await logged_in.call("POST", "/api/anime/refresh", json={"key": KAGUYA})

    client = logged_in.client
    for url in (
        "/feed/calendar.ics",
        "/feed/calendar.ics?token=nonsense",
        "/feed/calendar.ics?token=awd_nope",
    ):
        resp = await client.get(url)
        assert resp.status == 401, url
        assert (await resp.json())["error"]["code"]

    resp = await client.get(f"/feed/calendar.ics?token={logged_in.token}")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(await resp.read())
    events = list(cal.walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in events] == ["Kaguya-sama: Love is War S03E14 new"]
    assert str(events[0]["DESCRIPTION"]).startswith("Neu; mit, Zeichen")

    status, created = await logged_in.call("POST", "/api/auth/api-keys", json={"name": "phone calendar"})
    assert status == 201
    resp = await client.get(f"/feed/calendar.ics?token={created['key']}&days=2")
    assert resp.status == 200
    resp = await client.get(f"/feed/calendar.ics?token={created['key']}&days=0")
    assert resp.status == 400
    await logged_in.call("DELETE", f"/api/auth/api-keys/{created['id']}")
    resp = await client.get(f"/feed/calendar.ics?token={created['key']}")
    assert resp.status == 401  # a revoked key no longer reads the feed


async def test_notifications_test_endpoint(logged_in: Api) -> None:
    _with_upkeep(logged_in)
    status, data = await logged_in.call("POST", "/api/notifications/test")
    assert status == 400 and "webhooks" in data["error"]["message"]

    server, received = await webhook_receiver()
    try:
        _with_upkeep(logged_in, [{"url": str(server.make_url("/hook")), "events": ["health"], "timeout": 5}])
        status, data = await logged_in.call("POST", "/api/notifications/test", json={})
        assert status == 200 and data["status"] == "success"
        assert received and received[0]["type"] == "test"
        status, data = await logged_in.call("POST", "/api/notifications/test", json={"index": 3})
        assert status == 400
    finally:
        await logged_in.ctx.extras["notifier"].close()
        await server.close()
