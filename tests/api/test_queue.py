"""/api/queue with the real DownloadService and SQLite store."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

KAGUYA = "kaguya-sama-love-is-war"


@pytest.fixture
async def with_series(logged_in: Api, fakesite: str) -> Api:
    status, data = await logged_in.call(
        "POST", "/api/anime/add", json={"link": f"{fakesite}/anime/stream/{KAGUYA}"}
    )
    assert status == 200, data
    return logged_in


def _request(**over) -> dict:
    body = {
        "serie_id": KAGUYA,
        "serie_folder": "ignored folder",
        "serie_name": "Kaguya-sama",
        "episodes": [{"season": 1, "episode": 1}, {"season": 1, "episode": 2}],
        "priority": "normal",
    }
    body.update(over)
    return body


async def test_add_status_and_detail_show_queued(with_series: Api) -> None:
    api = with_series
    status, data = await api.call("POST", "/api/queue/add", json=_request())
    assert status == 201
    assert data["status"] == "success"
    items = data["items"]
    assert [(i["season"], i["episode"]) for i in items] == [(1, 1), (1, 2)]
    assert data["added_items"] == [i["id"] for i in items]
    for item in items:
        assert item["serie_id"] == KAGUYA and item["status"] == "pending"
        assert {"id", "serie_id", "serie_folder", "serie_name", "episode", "status", "progress"} <= set(item)
        assert item["serie_folder"] != "ignored folder"  # the key decides, not what the client sent

    status, queue = await api.call("GET", "/api/queue/status")
    assert status == 200
    assert {
        "is_running",
        "is_paused",
        "active_downloads",
        "pending_queue",
        "completed_downloads",
        "failed_downloads",
    } <= set(queue)
    assert [i["id"] for i in queue["pending_queue"]] == data["added_items"]

    status, detail = await api.call("GET", f"/api/anime/{KAGUYA}")
    queued = {(e["season"], e["episode"]) for e in detail["episodes"] if e["status"] == "queued"}
    assert queued == {(1, 1), (1, 2)}


async def test_add_duplicate_is_409_and_adds_nothing(with_series: Api) -> None:
    api = with_series
    await api.call("POST", "/api/queue/add", json=_request(episodes=[{"season": 1, "episode": 1}]))
    status, data = await api.call("POST", "/api/queue/add", json=_request())
    assert status == 409 and data["error"]["code"] == "conflict"
    status, queue = await api.call("GET", "/api/queue/status")
    assert len(queue["pending_queue"]) == 1


async def test_add_unknown_series_or_episode_is_404(with_series: Api) -> None:
    api = with_series
    status, _ = await api.call("POST", "/api/queue/add", json=_request(serie_id="not-known"))
    assert status == 404
    status, _ = await api.call(
        "POST", "/api/queue/add", json=_request(episodes=[{"season": 1, "episode": 999}])
    )
    assert status == 404
    status, queue = await api.call("GET", "/api/queue/status")
    assert queue["pending_queue"] == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"serie_id": None}, "serie_id"),
        ({"serie_id": "Kaguya Sama"}, "serie_id"),
        ({"episodes": []}, "episodes"),
        ({"episodes": [{"season": True, "episode": 1}]}, "episodes[0].season"),
        ({"episodes": [{"season": 1}]}, "episodes[0].episode"),
        ({"episodes": [{"season": -1, "episode": 1}]}, "episodes[0].season"),
        ({"priority": "urgent"}, "priority"),
        ({"language": "klingon"}, "language"),
    ],
)
async def test_add_validation_errors_name_the_field(with_series: Api, change: dict, path: str) -> None:
    status, data = await with_series.call("POST", "/api/queue/add", json=_request(**change))
    assert status == 400
    assert path in [e["path"] for e in data["error"]["details"]["errors"]]


async def test_remove_item(with_series: Api) -> None:
    api = with_series
    _, data = await api.call("POST", "/api/queue/add", json=_request())
    first = data["added_items"][0]
    status, body = await api.call("DELETE", f"/api/queue/{first}")
    assert status == 200 and body["status"] == "success"
    _, queue = await api.call("GET", "/api/queue/status")
    assert [i["id"] for i in queue["pending_queue"]] == data["added_items"][1:]
    status, _ = await api.call("DELETE", f"/api/queue/{first}")
    assert status == 404
    status, body = await api.call("DELETE", "/api/queue/not-a-number")
    assert status == 400 and body["error"]["details"]["errors"][0]["path"] == "item_id"


async def test_controls_change_state(with_series: Api) -> None:
    api = with_series
    status, body = await api.call("POST", "/api/queue/start")
    assert status == 200 and body["queue"]["is_running"] is True
    status, body = await api.call("POST", "/api/queue/pause")
    assert status == 200 and body["queue"]["is_paused"] is True
    _, queue = await api.call("GET", "/api/queue/status")
    assert queue["is_paused"] is True  # the cached status followed the change
    status, body = await api.call("POST", "/api/queue/resume")
    assert status == 200 and body["queue"]["is_paused"] is False
    status, body = await api.call("POST", "/api/queue/stop")
    assert status == 200 and body["queue"]["is_running"] is False


async def test_retry_and_clear_completed(with_series: Api) -> None:
    api = with_series
    _, data = await api.call("POST", "/api/queue/add", json=_request())
    failed_id, done_id = data["added_items"]

    def settle() -> None:
        e = api.ctx.store.e
        e.DownloadQueueItem[failed_id].status = "failed"
        e.DownloadQueueItem[failed_id].error = "all hosters failed"
        e.DownloadQueueItem[done_id].status = "completed"

    api.ctx.store.run_sync(settle)
    api.ctx.bus.publish("queue_status", {})  # what the service does after a change
    _, queue = await api.call("GET", "/api/queue/status")
    assert [i["id"] for i in queue["failed_downloads"]] == [failed_id]
    assert [i["id"] for i in queue["completed_downloads"]] == [done_id]

    status, body = await api.call("POST", "/api/queue/retry", json={"item_ids": [failed_id]})
    assert status == 200 and body["count"] == 1
    status, body = await api.call("POST", "/api/queue/retry")
    assert status == 200 and body["count"] == 0
    status, body = await api.call("POST", "/api/queue/retry", json={"item_ids": [123456]})
    assert status == 404
    status, body = await api.call("POST", "/api/queue/retry", json={"item_ids": ["x"]})
    assert status == 400

    status, body = await api.call("DELETE", "/api/queue/completed")
    assert status == 200 and body["count"] == 1
    _, queue = await api.call("GET", "/api/queue/status")
    assert queue["completed_downloads"] == [] and [i["id"] for i in queue["pending_queue"]] == [failed_id]


async def test_set_priority_of_pending_item(with_series: Api) -> None:
    api = with_series
    _, data = await api.call("POST", "/api/queue/add", json=_request())
    first, second = data["added_items"]
    status, item = await api.call("PATCH", f"/api/queue/{second}", json={"priority": "high"})
    assert status == 200
    assert item["id"] == second and item["priority"] == "high" and item["status"] == "pending"
    _, queue = await api.call("GET", "/api/queue/status")
    assert [i["id"] for i in queue["pending_queue"]] == [second, first]  # the cached status followed
    assert queue["pending_queue"][0]["priority"] == "high"


async def test_set_priority_unknown_item_is_404(with_series: Api) -> None:
    status, data = await with_series.call("PATCH", "/api/queue/123456", json={"priority": "low"})
    assert status == 404 and data["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("payload", "path"),
    [({"priority": "urgent"}, "priority"), ({}, "priority"), ({"priority": None}, "priority")],
)
async def test_set_priority_bad_body_is_400_and_changes_nothing(
    with_series: Api, payload: dict, path: str
) -> None:
    api = with_series
    _, data = await api.call("POST", "/api/queue/add", json=_request(episodes=[{"season": 1, "episode": 1}]))
    item_id = data["added_items"][0]
    status, body = await api.call("PATCH", f"/api/queue/{item_id}", json=payload)
    assert status == 400
    assert path in [e["path"] for e in body["error"]["details"]["errors"]]
    status, body = await api.call("PATCH", "/api/queue/not-a-number", json={"priority": "high"})
    assert status == 400 and body["error"]["details"]["errors"][0]["path"] == "item_id"
    _, queue = await api.call("GET", "/api/queue/status")
    assert queue["pending_queue"][0]["priority"] == "normal"


@pytest.mark.parametrize("state", ["downloading", "completed", "failed", "cancelled"])
async def test_set_priority_of_item_not_pending_is_409(with_series: Api, state: str) -> None:
    api = with_series
    _, data = await api.call("POST", "/api/queue/add", json=_request(episodes=[{"season": 1, "episode": 1}]))
    item_id = data["added_items"][0]

    def settle() -> None:
        api.ctx.store.e.DownloadQueueItem[item_id].status = state

    api.ctx.store.run_sync(settle)
    status, body = await api.call("PATCH", f"/api/queue/{item_id}", json={"priority": "high"})
    assert status == 409 and body["error"]["code"] == "conflict"
    assert body["error"]["details"]["status"] == state

    def priority() -> str:
        return api.ctx.store.e.DownloadQueueItem[item_id].priority

    assert api.ctx.store.run_sync(priority) == "normal"
