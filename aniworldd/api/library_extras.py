"""Routes of the self-maintaining library (issue 10): monitoring, refresh, calendar, iCal feed, webhook test.

Declared in the same Route table format as schemas.ROUTES, so create_app validates them, checks auth and
documents them in /api/openapi.json like every other route. The iCal feed lives outside /api because phone
calendars cannot send headers: it takes the token (a login JWT or, better for a long-lived subscription,
an API key) as `?token=` and checks it through the AuthService itself.

The services come from ctx.extras ("refresh", "notifier", "calendar"), filled by the daemon; a missing one
answers 503 like any component that is not running.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from aniworldd.api.common import body, ctx_of, json_response, params, query
from aniworldd.api.schemas import Key, Route, StrictInt, json_schema
from aniworldd.services.auth_service import API_KEY_PREFIX, Forbidden, Unauthorized
from aniworldd.services.calendar_service import DEFAULT_DAYS, MAX_DAYS, CalendarService
from aniworldd.services.errors import Unavailable

FEED_DEFAULT_DAYS = 30


def extra(request: web.Request, name: str) -> Any:
    svc = ctx_of(request).extras.get(name)
    if svc is None:
        raise Unavailable(f"the {name} component is not available", {"component": name})
    return svc


def calendar_of(request: web.Request) -> CalendarService:
    ctx = ctx_of(request)
    svc = ctx.extras.get("calendar")
    if svc is None:  # reads the database only: any app with a store can answer
        svc = ctx.extras["calendar"] = CalendarService(ctx.store)
    return svc


@json_schema({"type": "boolean"})
def StrictBool(value: Any) -> bool:  # noqa: N802 - reads like a type in schemas
    """JSON true/false only (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        raise vol.Invalid("expected true or false")
    return value


@json_schema({"type": "integer", "minimum": 1, "maximum": MAX_DAYS})
def Days(value: Any) -> int:  # noqa: N802
    """A number of days from a query string (1..366)."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise vol.Invalid(f"expected a whole number of days between 1 and {MAX_DAYS}")
    return int(text)


MONITOR = vol.Schema(
    {vol.Required("monitored", description="refresh this series on schedule (and auto-queue)"): StrictBool},
    extra=vol.REMOVE_EXTRA,
)
REFRESH = vol.Schema(
    {vol.Optional("key", description="refresh only this series, now, and answer with its result"): Key},
    extra=vol.REMOVE_EXTRA,
)
NOTIFY_TEST = vol.Schema(
    {
        vol.Optional("index", description="only this webhook (0-based); all when omitted"): vol.All(
            StrictInt, vol.Range(min=0)
        )
    },
    extra=vol.REMOVE_EXTRA,
)
CALENDAR_QUERY = vol.Schema(
    {vol.Optional("days", default=DEFAULT_DAYS, description="how many days back"): Days},
    extra=vol.REMOVE_EXTRA,
)
FEED_QUERY = vol.Schema(
    {
        vol.Optional("token", description="a login JWT or an API key (subscriptions: use an API key)"): str,
        vol.Optional("days", default=FEED_DEFAULT_DAYS, description="how many days back"): Days,
    },
    extra=vol.REMOVE_EXTRA,
)

OFF = ("the component is not running (or the provider is unreachable)", None)
_ENTRY = {
    "type": "object",
    "properties": {
        "type": {"enum": ["downloaded", "listed"]},
        "at": {"type": "string", "format": "date-time"},
        "key": {"type": "string"},
        "name": {"type": "string"},
        "folder": {"type": ["string", "null"]},
        "season": {"type": "integer"},
        "episode": {"type": "integer"},
        "title": {"type": "string"},
    },
    "required": ["type", "at", "key", "season", "episode"],
}
CALENDAR_SCHEMA = {
    "type": "object",
    "properties": {
        "days": {"type": "integer"},
        "since": {"type": "string"},
        "until": {"type": "string"},
        "entries": {"type": "array", "items": _ENTRY},
    },
    "required": ["days", "entries"],
}
MONITOR_SCHEMA = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "monitored": {"type": "boolean"}},
    "required": ["key", "monitored"],
}


async def set_monitored(request: web.Request) -> web.Response:
    key = params(request)["key"]
    result = await extra(request, "refresh").set_monitored(key, body(request)["monitored"])
    return json_response(result)


async def refresh(request: web.Request) -> web.Response:
    svc = extra(request, "refresh")
    key = (body(request) or {}).get("key")
    if key is not None:
        return json_response({"status": "done", **(await svc.refresh_one(key))})
    svc.trigger(force=True)
    return json_response({"status": "started", "message": "refresh of every monitored series started"}, 202)


async def refresh_status(request: web.Request) -> web.Response:
    return json_response(extra(request, "refresh").status())


async def calendar(request: web.Request) -> web.Response:
    return json_response(await calendar_of(request).entries(query(request)["days"]))


async def notifications_test(request: web.Request) -> web.Response:
    results = await extra(request, "notifier").test((body(request) or {}).get("index"))
    ok = all(r["ok"] for r in results)
    return json_response({"status": "success" if ok else "failed", "results": results})


async def _feed_identity(request: web.Request, token: str | None) -> None:
    auth = ctx_of(request).auth
    if auth is None:
        raise Unavailable("authentication is not available", {"component": "auth"})
    if not token:
        raise Unauthorized("the calendar feed needs ?token= (an API key or a login token)")
    try:
        if token.startswith(API_KEY_PREFIX):
            await auth.verify_api_key(token)
        else:
            await auth.verify_token(token)
    except Forbidden as exc:  # API keys switched off: for this feed that is a refused credential
        raise Unauthorized(exc.message, code=exc.code) from None


async def calendar_feed(request: web.Request) -> web.Response:
    q = query(request)
    await _feed_identity(request, q.get("token"))
    text = await calendar_of(request).ical(q["days"], name="aniworldd")
    return web.Response(
        body=text.encode("utf-8"),
        headers={
            "Content-Type": "text/calendar; charset=utf-8",
            "Content-Disposition": 'inline; filename="aniworldd.ics"',
            "Cache-Control": "private, max-age=300",
        },
    )


ROUTES: list[Route] = [
    Route(
        "PATCH",
        "/api/anime/{key}",
        set_monitored,
        "Turn scheduled refresh (monitoring) of a series on or off",
        "anime",
        params={"key": Key},
        body=MONITOR,
        responses={200: ("the new state", MONITOR_SCHEMA), 404: ("unknown series", None), 503: OFF},
    ),
    Route(
        "POST",
        "/api/anime/refresh",
        refresh,
        "Re-read episode lists from the provider now (one series, or every monitored one)",
        "anime",
        body=REFRESH,
        body_required=False,
        responses={
            200: ("refreshed one series: its new episodes", None),
            202: ("a pass over every monitored series started", None),
            403: ("the provider blocked us", None),
            404: ("unknown series", None),
            502: ("the provider answered something unexpected", None),
            503: OFF,
        },
        description="Without a key the pass runs in the background at the provider's polite pace; "
        "GET /api/refresh shows its progress and the last result.",
    ),
    Route(
        "GET",
        "/api/refresh",
        refresh_status,
        "Scheduled refresh: settings, whether a pass runs, the last pass",
        "anime",
        responses={200: ("refresh status", None), 503: OFF},
    ),
    Route(
        "GET",
        "/api/calendar",
        calendar,
        "Episodes downloaded and newly listed by the provider in the last N days",
        "calendar",
        query=CALENDAR_QUERY,
        responses={200: ("calendar entries, newest first", CALENDAR_SCHEMA)},
    ),
    Route(
        "GET",
        "/feed/calendar.ics",
        calendar_feed,
        "The calendar as an iCal feed for phone calendars (token in the query)",
        "calendar",
        auth=False,
        query=FEED_QUERY,
        responses={
            200: ("text/calendar (RFC 5545)", None),
            401: ("missing or invalid token", None),
            503: ("authentication is not available", None),
        },
    ),
    Route(
        "POST",
        "/api/notifications/test",
        notifications_test,
        "Send a test event to the configured webhooks",
        "notifications",
        body=NOTIFY_TEST,
        body_required=False,
        responses={200: ("per-webhook results", None), 400: ("no webhooks configured", None), 503: OFF},
    ),
]
