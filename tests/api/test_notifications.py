"""POST /api/notifications/apprise/test and GET /api/notifications against a real Apprise target."""

from __future__ import annotations

from aniworldd.services.notifications import AppriseNotifier
from tests.api.conftest import Api
from tests.integration.apprise_receiver import apprise_receiver


async def test_apprise_test_notification_from_the_api(logged_in: Api) -> None:
    status, data = await logged_in.call("POST", "/api/notifications/apprise/test")
    assert status == 503  # no notifier in this context

    logged_in.ctx.extras["apprise"] = AppriseNotifier(logged_in.ctx.bus, [])
    status, data = await logged_in.call("POST", "/api/notifications/apprise/test", json={})
    assert status == 400 and "notifications.apprise" in data["error"]["message"]

    async with apprise_receiver() as rx:
        logged_in.ctx.extras["apprise"] = AppriseNotifier(
            logged_in.ctx.bus,
            [
                {"url": rx.url("json", "hook", auth="me:topsecret"), "events": ["download_failed"]},
                {"url": rx.url("ntfy", "anime"), "events": ["download_complete"]},
            ],
        )
        status, data = await logged_in.call("POST", "/api/notifications/apprise/test")
        assert status == 200 and data["status"] == "success" and len(data["results"]) == 2
        assert {d.kind for d in rx.deliveries} == {"json", "ntfy"}
        status, data = await logged_in.call("POST", "/api/notifications/apprise/test", json={"index": 1})
        assert status == 200 and [r["ok"] for r in data["results"]] == [True]
        status, data = await logged_in.call("POST", "/api/notifications/apprise/test", json={"index": "x"})
        assert status == 400
        status, data = await logged_in.call("POST", "/api/notifications/apprise/test", json={"index": 9})
        assert status == 400

        status, data = await logged_in.call("GET", "/api/notifications")
        assert status == 200 and data["webhooks"] == []
        assert [t["events"] for t in data["apprise"]] == [["download_failed"], ["download_complete"]]
        assert "topsecret" not in str(data) and data["apprise"][0]["delivered"] == 1
