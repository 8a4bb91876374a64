"""GET /api/queue/completed: the download history (completed and failed items), filtered and paged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aniworldd.db.models import utcnow
from tests.api.conftest import Api

KAGUYA = "kaguya-sama-love-is-war"


@pytest.fixture
async def history(logged_in: Api, fakesite: str) -> tuple[Api, dict[str, int]]:
    """Kaguya-sama with four items: E1 completed, E2 failed (with a reason), E3 completed, E4 pending."""
    api = logged_in
    status, data = await api.call(
        "POST", "/api/anime/add", json={"link": f"{fakesite}/anime/stream/{KAGUYA}"}
    )
    assert status == 200, data
    episodes = [{"season": 1, "episode": n} for n in (1, 2, 3, 4)]
    status, data = await api.call("POST", "/api/queue/add", json={"serie_id": KAGUYA, "episodes": episodes})
    assert status == 201, data
    e1, e2, e3, e4 = data["added_items"]
    now = utcnow()

    def settle() -> None:
        e = api.ctx.store.e
        for n, (item_id, state) in enumerate(((e1, "completed"), (e2, "failed"), (e3, "completed"))):
            row = e.DownloadQueueItem[item_id]
            row.status = state
            if state == "completed":
                row.completed_at = now - timedelta(minutes=10 - n)
            else:
                row.error = "all hosters failed: VOE 404, Vidoza timed out"
        api.ctx.store.db.flush()
        # updated_at orders the history (before_update stamps "now"): a completed row's is its completion
        api.ctx.store.db.execute(
            f"UPDATE download_queue_item SET updated_at = completed_at WHERE id IN ({e1}, {e3})"
        )

    api.ctx.store.run_sync(settle)
    return api, {"e1": e1, "e2": e2, "e3": e3, "e4": e4}


async def test_lists_finished_items_newest_first_with_the_reason(history) -> None:
    api, ids = history
    status, data = await api.call("GET", "/api/queue/completed")
    assert status == 200, data
    assert [i["id"] for i in data["items"]] == [ids["e2"], ids["e3"], ids["e1"]]  # the pending one is not
    assert data["total"] == 3 and data["counts"] == {"completed": 2, "failed": 1}
    assert data["status"] == "all" and data["limit"] == 50 and data["offset"] == 0
    failed = data["items"][0]
    assert failed["status"] == "failed" and failed["error"] == "all hosters failed: VOE 404, Vidoza timed out"
    assert failed["key"] == KAGUYA and failed["season"] == 1 and failed["episode"] == 2
    assert all(i["finished_at"] for i in data["items"])


async def test_status_text_and_paging(history) -> None:
    api, ids = history
    status, data = await api.call("GET", "/api/queue/completed", params={"status": "failed"})
    assert status == 200 and [i["id"] for i in data["items"]] == [ids["e2"]] and data["total"] == 1
    status, data = await api.call("GET", "/api/queue/completed", params={"status": "completed", "limit": "1"})
    assert [i["id"] for i in data["items"]] == [ids["e3"]] and data["total"] == 2
    status, data = await api.call(
        "GET", "/api/queue/completed", params={"status": "completed", "limit": "1", "offset": "1"}
    )
    assert [i["id"] for i in data["items"]] == [ids["e1"]]
    # text filter: series name or key, case-insensitive; SQL wildcards are plain text
    for text in ("KAGUYA", "love-is", "Kaguya"):
        status, data = await api.call("GET", "/api/queue/completed", params={"q": text})
        assert status == 200 and data["total"] == 3, text
    for text in ("naruto", "%", "_aguya"):
        status, data = await api.call("GET", "/api/queue/completed", params={"q": text})
        assert status == 200 and data["items"] == [] and data["counts"] == {"completed": 0, "failed": 0}, text


async def test_cleared_items_leave_the_history(history) -> None:
    api, ids = history
    status, _ = await api.call("DELETE", "/api/queue/completed")
    assert status == 200
    status, data = await api.call("GET", "/api/queue/completed")
    assert [i["id"] for i in data["items"]] == [ids["e2"]]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "pending"},
        {"limit": "0"},
        {"limit": "201"},
        {"offset": "-1"},
        {"limit": "abc"},
        {"q": "x" * 201},
    ],
)
async def test_bad_query_is_400(logged_in: Api, params: dict) -> None:
    status, data = await logged_in.call("GET", "/api/queue/completed", params=params)
    assert status == 400
    assert data["error"]["details"]["errors"][0]["path"] == next(iter(params))


async def test_works_without_a_running_queue(api_factory) -> None:
    api = await api_factory(with_services=False)
    await api.setup_and_login()
    status, data = await api.call("GET", "/api/queue/completed")
    assert status == 200 and data["items"] == [] and data["total"] == 0


async def test_needs_auth(api: Api) -> None:
    resp = await api.client.get("/api/queue/completed")
    assert resp.status == 401
