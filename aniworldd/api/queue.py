"""/api/queue: status (paginated), history (finished items), add, remove, priority, start/stop/pause/resume,
retry, clear completed."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aniworldd.api.cache import CACHE, cached_response
from aniworldd.api.common import body, ctx_of, json_response, params, query, service
from aniworldd.services.errors import NotFound
from aniworldd.services.history import HistoryService


async def status(request: web.Request) -> web.Response:
    """The first page (every UI and the WebSocket snapshot ask for it) comes from the response cache; other
    pages are built per request (cheap: one page of rows) so arbitrary offsets cannot fill the cache."""
    queue = service(request, "queue")
    page = query(request)
    limit, offset = page.get("limit"), page.get("offset", 0)
    if limit is None and offset == 0:
        entry = await request.app[CACHE].queue.get("status", queue.status)
        return cached_response(request, entry)
    return json_response(await queue.status(limit=limit, offset=offset))


def _changed(request: web.Request) -> None:
    request.app[CACHE].queue.invalidate()


async def add(request: web.Request) -> web.Response:
    queue = service(request, "queue")
    data = body(request)
    episodes = [{"season": e["season"], "episode": e["episode"]} for e in data["episodes"]]
    items = await queue.add(
        data["serie_id"], episodes, priority=data["priority"], language=data.get("language")
    )
    _changed(request)
    items = list(items or [])
    return json_response(
        {
            "status": "success",
            "message": f"{len(items)} episode(s) of {data['serie_id']} queued",
            "items": items,
            "added_items": [i["id"] for i in items if isinstance(i, dict) and "id" in i],
        },
        status=201,
    )


async def history(request: web.Request) -> web.Response:
    """Finished items for the history page; the database answers, so no running queue is needed."""
    q = query(request)
    svc = HistoryService(ctx_of(request).store)
    return json_response(await svc.page(q["status"], q.get("q"), q["limit"], q["offset"]))


async def _action(request: web.Request, method: str, message: str) -> web.Response:
    queue = service(request, "queue")
    await getattr(queue, method)()
    _changed(request)
    return json_response({"status": "success", "message": message, "queue": await queue.status()})


async def start(request: web.Request) -> web.Response:
    return await _action(request, "start", "queue started")


async def stop(request: web.Request) -> web.Response:
    return await _action(request, "stop", "queue stopped")


async def pause(request: web.Request) -> web.Response:
    return await _action(request, "pause", "queue paused")


async def resume(request: web.Request) -> web.Response:
    return await _action(request, "resume", "queue resumed")


def _count(result: Any) -> int:
    if isinstance(result, bool) or result is None:
        return int(bool(result))
    if isinstance(result, int):
        return result
    if isinstance(result, dict):
        for name in ("count", "retried", "cleared", "removed"):
            if isinstance(result.get(name), int):
                return result[name]
        return 0
    try:
        return len(result)
    except TypeError:
        return 0


async def retry(request: web.Request) -> web.Response:
    queue = service(request, "queue")
    item_ids = (body(request) or {}).get("item_ids")
    result = await queue.retry(item_ids)
    _changed(request)
    count = _count(result)
    return json_response({"status": "success", "message": f"{count} item(s) queued again", "count": count})


async def clear_completed(request: web.Request) -> web.Response:
    queue = service(request, "queue")
    count = _count(await queue.clear_completed())
    _changed(request)
    return json_response(
        {"status": "success", "message": f"{count} completed item(s) cleared", "count": count}
    )


async def remove(request: web.Request) -> web.Response:
    queue = service(request, "queue")
    item_id = params(request)["item_id"]
    removed = await queue.remove(item_id)
    _changed(request)
    if removed is False:
        raise NotFound(f"no queue item with id {item_id}", {"id": item_id})
    return json_response({"status": "success", "message": f"item {item_id} removed"})


async def set_priority(request: web.Request) -> web.Response:
    queue = service(request, "queue")
    item = await queue.set_priority(params(request)["item_id"], body(request)["priority"])
    _changed(request)
    return json_response(item)
