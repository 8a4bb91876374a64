"""Routes of the notification targets: their status, and a test notification through Apprise.

The webhook test stays where it was (POST /api/notifications/test, library_extras). Secrets in Apprise URLs
(bot tokens, passwords) never leave the daemon: every URL here is Apprise's privacy form.
"""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from aniworldd.api.common import body, ctx_of, json_response
from aniworldd.api.schemas import Route, StrictInt
from aniworldd.services.errors import Unavailable

APPRISE_TEST = vol.Schema(
    {
        vol.Optional("index", description="only this Apprise target (0-based); all when omitted"): vol.All(
            StrictInt, vol.Range(min=0)
        )
    },
    extra=vol.REMOVE_EXTRA,
)
OFF = ("the notification component is not running", None)


def _apprise(request: web.Request):  # noqa: ANN202 - services.notifications.AppriseNotifier
    notifier = ctx_of(request).extras.get("apprise")
    if notifier is None:
        raise Unavailable("the apprise component is not available", {"component": "apprise"})
    return notifier


async def notifications_status(request: web.Request) -> web.Response:
    extras = ctx_of(request).extras
    webhooks, apprise = extras.get("notifier"), extras.get("apprise")
    return json_response(
        {
            "webhooks": webhooks.status() if webhooks is not None else [],
            "apprise": apprise.status() if apprise is not None else [],
        }
    )


async def apprise_test(request: web.Request) -> web.Response:
    results = await _apprise(request).test((body(request) or {}).get("index"))
    ok = all(r["ok"] for r in results)
    return json_response({"status": "success" if ok else "failed", "results": results})


ROUTES = [
    Route(
        "GET",
        "/api/notifications",
        notifications_status,
        "Configured notification targets (webhooks, Apprise) with delivery counters",
        "notifications",
        responses={200: ("webhooks and apprise targets (secrets masked)", None)},
    ),
    Route(
        "POST",
        "/api/notifications/apprise/test",
        apprise_test,
        "Send a test notification to the configured Apprise targets",
        "notifications",
        body=APPRISE_TEST,
        body_required=False,
        responses={200: ("per-target results", None), 400: ("no Apprise targets configured", None), 503: OFF},
    ),
]
