"""GET /api/system/logs (the last log lines for the system page) and the storage part of /api/system/status.

Each Api gets its own ring buffer on the root logger, as the daemon wires one (tests/api/conftest.py); the
tests still read from the newest line they found at their start (`after`), as the page does.
"""

from __future__ import annotations

import logging

import pytest

from aniworldd.logtail import LogTail, scrub
from tests.api.conftest import Api

log = logging.getLogger("aniworldd.test_system_logs")


async def _last(api: Api) -> int:
    status, data = await api.call("GET", "/api/system/logs", params={"limit": "0"})
    assert status == 200, data
    assert data["lines"] == [] and data["capacity"] == 200
    return data["last"]


async def test_new_lines_arrive_after_the_cursor_with_secrets_masked(logged_in: Api) -> None:
    start = await _last(logged_in)
    log.warning("proxy http://user:hunter2@proxy.lan:3128 refused")
    log.error("feed hit /feed/calendar.ics?token=awd_supersecretkeyvalue&days=7")
    status, data = await logged_in.call("GET", "/api/system/logs", params={"after": str(start)})
    assert status == 200
    mine = [line for line in data["lines"] if line["logger"] == log.name]
    assert [line["level"] for line in mine] == ["WARNING", "ERROR"]
    assert mine[0]["message"] == "proxy http://user:***@proxy.lan:3128 refused"
    assert "supersecret" not in mine[1]["message"] and "token=***" in mine[1]["message"]
    assert "hunter2" not in str(data)
    assert [line["seq"] for line in data["lines"]] == sorted(line["seq"] for line in data["lines"])
    assert data["last"] == data["lines"][-1]["seq"] and data["dropped"] == 0
    assert {"seq", "at", "level", "logger", "message"} <= set(mine[0])

    # the next poll from `last` has nothing new; limit keeps the newest
    status, again = await logged_in.call("GET", "/api/system/logs", params={"after": str(data["last"])})
    assert status == 200 and again["lines"] == [] and again["last"] == data["last"]
    status, one = await logged_in.call("GET", "/api/system/logs", params={"after": str(start), "limit": "1"})
    assert status == 200 and [line["seq"] for line in one["lines"]] == [data["last"]]


@pytest.mark.parametrize(
    "params", [{"after": "-1"}, {"after": "x"}, {"limit": "201"}, {"limit": "1.5"}, {"after": ""}]
)
async def test_bad_query_is_400(logged_in: Api, params: dict) -> None:
    status, data = await logged_in.call("GET", "/api/system/logs", params=params)
    assert status == 400
    assert data["error"]["code"] == "validation_error"
    assert data["error"]["details"]["errors"][0]["path"] == next(iter(params))


async def test_needs_login_or_an_admin_key(logged_in: Api) -> None:
    keys = {}
    for scope in ("read", "control", "admin"):
        status, created = await logged_in.call(
            "POST", "/api/auth/api-keys", json={"name": f"logs {scope}", "scope": scope}
        )
        assert status == 201, created
        keys[scope] = created["key"]
    resp = await logged_in.client.get("/api/system/logs")
    assert resp.status == 401
    for scope in ("read", "control"):
        resp = await logged_in.client.get("/api/system/logs", headers={"X-Api-Key": keys[scope]})
        assert resp.status == 403
        body = await resp.json()
        assert body["error"]["code"] == "insufficient_scope"
        assert body["error"]["details"] == {"scope": scope, "needed": "admin"}
    resp = await logged_in.client.get("/api/system/logs", headers={"X-Api-Key": keys["admin"]})
    assert resp.status == 200
    # the keys themselves never reach the log tail
    status, data = await logged_in.call("GET", "/api/system/logs")
    assert not any(key in str(data) for key in keys.values())


async def test_status_reports_free_space_of_data_and_temp_dirs(logged_in: Api) -> None:
    status, data = await logged_in.call("GET", "/api/system/status")
    assert status == 200
    storage = {d["role"]: d for d in data["storage"]}
    cfg = logged_in.ctx.config
    assert storage["data"]["path"] == cfg["data_dir"] and storage["data"]["exists"] is True
    assert storage["temp"]["path"] == cfg["downloads"]["temp_dir"]
    for entry in storage.values():  # a temp dir not made yet reports the disk it will be on
        assert entry["free_bytes"] > 0 and entry["total_bytes"] >= entry["free_bytes"]


def test_ring_keeps_the_newest_lines_and_counts_what_fell_out() -> None:
    tail = LogTail(capacity=3)
    logger = logging.getLogger("aniworldd.test_ring")
    logger.addHandler(tail)
    logger.propagate = False
    try:
        for n in range(5):
            logger.warning("line %d", n)
        data = tail.lines()
        assert [line["message"] for line in data["lines"]] == ["line 2", "line 3", "line 4"]
        assert data["last"] == 5 and data["capacity"] == 3
        assert tail.lines(after=1)["dropped"] == 1  # line 1 (seq 2) was gone before it was asked for
        assert tail.lines(after=4) == {"lines": [data["lines"][-1]], "last": 5, "capacity": 3, "dropped": 0}
        # a flood of one message does not push everything else out (RepeatFilter: 5 per minute)
        for _ in range(50):
            logger.warning("same again")
        assert sum(line["message"] == "same again" for line in tail.lines()["lines"]) == 3
        assert tail.lines()["last"] == 10
    finally:
        logger.removeHandler(tail)
        logger.propagate = True


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("GET /ws/connect?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.abc", "eyJzdWIiOiJ4In0"),
        ("X-Api-Key awd_AbCdEf123456789", "AbCdEf123456789"),
        ("password=swordfish&x=1", "swordfish"),
        ("socks5h://bob:pa55@10.0.0.1:1080", "pa55"),
    ],
)
def test_scrub_masks_credentials(text: str, secret: str) -> None:
    assert secret not in scrub(text)


def test_scrub_keeps_ordinary_text() -> None:
    line = "download of kaguya-sama S01E02 failed (attempt 1): key=kaguya-sama hoster down"
    assert scrub(line) == line
