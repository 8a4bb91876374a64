"""Apprise notifications delivered for real (Apprise's json://, form:// and ntfy:// plugins) to a local
receiver: the events each target asked for, readable messages, secrets masked, bad URLs refused."""

from __future__ import annotations

import asyncio

import pytest

from aniworldd import events as ev
from aniworldd.config import ConfigError, load_text
from aniworldd.events import EventBus
from aniworldd.services.notifications import AppriseNotifier
from tests.conftest import free_port
from tests.integration.apprise_receiver import Receiver, apprise_receiver

COMPLETE = {
    "download_id": 1,
    "key": "attack-on-titan",
    "folder": "Attack on Titan (2013)",
    "season": 1,
    "episode": 2,
    "language": "ger-sub",
    "path": "/lib/x.mp4",
    "size_bytes": 10,
}
FAILED = {
    **COMPLETE,
    "download_id": 2,
    "episode": 3,
    "reason": "no hoster answered",
    "attempts": 3,
    "will_retry": False,
}


async def _until(predicate, within: float = 15.0) -> None:
    for _ in range(int(within / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


async def test_targets_receive_download_complete_and_failed() -> None:
    async with apprise_receiver() as rx:
        bus = EventBus()
        notifier = AppriseNotifier(
            bus,
            [
                {"url": rx.url("json", "hook"), "events": ["download_complete", "download_failed"]},
                {"url": rx.url("form", "form"), "events": ["download_complete", "download_failed"]},
                {"url": rx.url("ntfy", "anime"), "events": ["download_complete", "download_failed"]},
                {"url": rx.url("json", "only-failed"), "events": ["download_failed"]},
            ],
        )
        await notifier.start()
        try:
            bus.publish(ev.DOWNLOAD_FAILED, {**FAILED, "will_retry": True})  # the daemon retries: no message
            bus.publish(ev.SCAN_COMPLETE, {"scope": "partial", "series": 1})  # not asked for anyway
            bus.publish(ev.DOWNLOAD_COMPLETE, COMPLETE)
            bus.publish(ev.DOWNLOAD_FAILED, FAILED)
            await _until(lambda: len(rx.deliveries) == 7)
            await asyncio.sleep(0.2)
            assert len(rx.deliveries) == 7  # 3 targets x 2 events + the failed-only target
            for kind in ("json", "form", "ntfy"):
                got = [d for d in rx.on(kind) if d.path != "/only-failed"]
                titles = sorted(d.title for d in got)
                assert titles == [
                    "Download failed: Attack on Titan (2013) S01E03",
                    "Downloaded: Attack on Titan (2013) S01E02",
                ], kind
                failed = next(d for d in got if d.title.startswith("Download failed"))
                assert "failed after 3 attempt(s): no hoster answered" in failed.message
                assert "(ger-sub)" in failed.message
            assert {d.fields["type"] for d in rx.on("json")} == {"success", "failure"}
            assert {d.fields["topic"] for d in rx.on("ntfy")} == {"anime"}
            assert [d.title for d in rx.deliveries if d.path == "/only-failed"] == [
                "Download failed: Attack on Titan (2013) S01E03"
            ]
            assert [s["delivered"] for s in notifier.status()] == [2, 2, 2, 1]
        finally:
            await notifier.close()


async def test_test_notification_reports_each_target_and_masks_secrets() -> None:
    async with apprise_receiver() as rx:
        dead = Receiver(free_port())  # nothing listens there
        notifier = AppriseNotifier(
            EventBus(),
            [
                {"url": rx.url("json", "hook", auth="user:s3cret-pw"), "events": ["download_failed"]},
                {"url": dead.url("json", "hook"), "events": ["download_failed"]},
            ],
        )
        results = await notifier.test()
        assert [r["ok"] for r in results] == [True, False]
        assert results[1]["error"]
        assert rx.deliveries[0].title == "aniworldd test notification"
        assert all("s3cret-pw" not in r["url"] for r in results)
        assert all("s3cret-pw" not in s["url"] for s in notifier.status())
        assert [r["ok"] for r in await notifier.test(0)] == [True]
        from aniworldd.services.errors import BadRequest

        with pytest.raises(BadRequest, match="index 5"):
            await notifier.test(5)
        with pytest.raises(BadRequest, match="notifications.apprise"):
            await AppriseNotifier(EventBus(), []).test()


def test_config_refuses_what_apprise_cannot_use() -> None:
    good = load_text("notifications:\n  apprise:\n    - url: ntfy://ntfy.sh/anime\n")
    assert good["notifications"]["apprise"] == [
        {
            "url": "ntfy://ntfy.sh/anime",
            "events": ["download_complete", "download_failed", "new_episodes", "health"],
        }
    ]
    for url, needle in (
        ("nosuchservice://token@x", "not a URL Apprise understands: nosuchservice://"),
        ("just text", "expected an Apprise URL"),
    ):
        with pytest.raises(ConfigError) as err:
            load_text(f"notifications:\n  apprise:\n    - url: {url}\n")
        [issue] = err.value.issues
        assert issue.path == "notifications.apprise[0].url" and needle in issue.message
        assert "token" not in issue.message  # a secret in a bad URL is not echoed
    with pytest.raises(ConfigError) as err:
        load_text(
            "notifications:\n  apprise:\n    - url: ntfy://ntfy.sh/a\n      events: [download_exploded]\n"
        )
    assert err.value.issues[0].path == "notifications.apprise[0].events[0]"
