"""/api/anime and /api/library: missing episodes, series detail, provider search, add by link, rescan,
remove."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from aniworldd.api.cache import CACHE, cached_response
from aniworldd.api.common import body, ctx_of, json_response, params, query, service
from aniworldd.api.context import AppContext
from aniworldd.api.schemas import KEY_RE
from aniworldd.services.errors import BadRequest, NotFound, Unavailable


async def summaries(ctx: AppContext, only_missing: bool) -> list[dict]:
    """LibraryService.summaries, or AnimeService.list_missing (same shape) while the library is not wired."""
    if ctx.library is not None:
        return await ctx.library.summaries(only_missing=only_missing)
    if ctx.anime is not None:
        return await ctx.anime.list_missing(include_complete=not only_missing)
    raise Unavailable("the library component is not available", {"component": "library"})


async def list_anime(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    only_missing = not query(request)["all"]
    entry = await request.app[CACHE].anime.get(only_missing, lambda: summaries(ctx, only_missing))
    return cached_response(request, entry)


async def resolve_anime_id(request: web.Request, anime_id: str) -> str:
    """A key stays a key; a folder name (backward compatibility) is resolved once to its series' key."""
    ctx = ctx_of(request)
    is_key = KEY_RE.match(anime_id) is not None and len(anime_id) <= 200
    if is_key and ctx.series is not None and await ctx.series.get_by_key(anime_id) is not None:
        return anime_id

    def by_folder() -> str | None:
        row = ctx.store.e.AnimeSeries.select(lambda s: s.folder == anime_id and s.deleted_at is None).first()
        return row.key if row is not None else None

    key = await ctx.store.run(by_folder)
    if key is not None:
        return key
    if is_key:
        raise NotFound(f"no series with key {anime_id!r}", {"key": anime_id})
    raise BadRequest(
        f"invalid series key {anime_id!r}: expected lowercase letters, digits and single hyphens "
        "(or the folder name of a known series)",
        {"anime_id": anime_id},
    )


def _detail_shape(data: dict) -> dict:
    """AnimeDetail: key, title, folder, description; episodes {season, episode, title, languages, status}."""
    data = dict(data)
    data.setdefault("title", data.get("name") or data.get("key"))
    data.setdefault("name", data["title"])
    data.setdefault("description", None)
    episodes = []
    for e in data.get("episodes") or []:
        e = dict(e)
        e.setdefault("title", "")
        e["languages"] = list(e.get("languages") or [])
        episodes.append(e)
    data["episodes"] = episodes
    return data


async def detail(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    key = await resolve_anime_id(request, params(request)["anime_id"])
    source = ctx.library if ctx.library is not None else ctx.anime
    if source is None:
        raise Unavailable("the library component is not available", {"component": "library"})
    data = _detail_shape(await source.detail(key))
    # The download language the queue picks when none is chosen (the series page's default choice).
    data.setdefault("preferred_languages", list(ctx.config.get("downloads", {}).get("language") or []))
    return json_response(data)


def _search_item(item: object) -> dict:
    data = item.to_dict() if hasattr(item, "to_dict") else dict(item)  # type: ignore[call-overload]
    return {
        "key": data.get("key"),
        "name": data.get("name"),
        "site": data.get("site"),
        "link": data.get("link"),
        "year": data.get("year"),
    }


async def search(request: web.Request) -> web.Response:
    anime = service(request, "anime")
    data = body(request)
    results = await anime.search(data["query"], site=data.get("site"))
    return json_response([_search_item(r) for r in results])


async def add(request: web.Request) -> web.Response:
    """The service takes the key from the link (real hosts or the configured provider URLs), validates it."""
    anime = service(request, "anime")
    link = body(request)["link"]
    try:  # a link the URL parser cannot even split ("a]") is bad input, not a server error
        urlsplit(link)
        urlsplit("https://" + link)
    except ValueError as exc:
        raise BadRequest(f"invalid link: {exc}", {"link": link}, code="invalid_link") from None
    series = dict(await anime.add(link))
    request.app[CACHE].anime.invalidate()
    name = series.get("name") or series.get("key")
    return json_response({"status": "success", "message": f"{name} added", **series})


async def rescan(request: web.Request) -> web.Response:
    scan = service(request, "scan")
    key = (body(request) or {}).get("key")
    if key is not None:
        series = ctx_of(request).series
        if series is not None and await series.get_by_key(key) is None:
            raise NotFound(f"no series with key {key!r}", {"key": key})
        scan.request_scan([key])
    else:
        scan.request_scan(None)
    return json_response({"status": "started", "key": key}, status=202)


async def unmatched(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    if ctx.library is not None:
        return json_response(await ctx.library.unmatched())
    return json_response(service(request, "scan").unmatched_folders())


async def match(request: web.Request) -> web.Response:
    library = service(request, "library")
    data = body(request)
    result = await library.match(data["folder"], data["key"], data["site"], root=data.get("root"))
    request.app[CACHE].anime.invalidate()
    response = {"status": "success", "message": f"{data['folder']} matched to {data['key']}"}
    if isinstance(result, dict):
        response = {**result, **response}
    return json_response(response)


async def remove(request: web.Request) -> web.Response:
    """DELETE /api/anime/{key}[?delete_files=true]: the AnimeService removes; the queue cancels the series'
    downloads; a kept folder is rescanned at once so it shows up as unmatched (not re-added)."""
    ctx = ctx_of(request)
    anime = service(request, "anime")
    key = params(request)["key"]
    delete_files = query(request)["delete_files"]
    result = await anime.remove(key, delete_files=delete_files, queue=ctx.queue)
    request.app[CACHE].anime.invalidate()
    request.app[CACHE].queue.invalidate()
    if result.get("files_kept") and result.get("root") and ctx.scan is not None:
        ctx.scan.request_folders([(result["root"], result["folder"])])
    name = result.get("name") or key
    message = f"{name} removed" + (" and its folder deleted" if result["files_deleted"] else "")
    if result.get("files_kept"):
        message += "; its files were kept"
    return json_response({"status": "success", "message": message, **result})
