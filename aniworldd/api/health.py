"""GET /health: the one unauthenticated probe (Docker HEALTHCHECK, uptime monitors)."""

from __future__ import annotations

from aiohttp import web

from aniworldd import __version__
from aniworldd.api.common import CTX

__all__ = ["CTX", "health"]


async def health(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    db_ok = await ctx.store.aping()
    body = {
        "status": "ok" if db_ok else "degraded",
        "version": __version__,
        "uptime_s": ctx.uptime_s,
        "database": "ok" if db_ok else "error",
    }
    cluster = ctx.extras.get("cluster")
    if cluster is not None:  # several processes: which one answered, and whether it reaches Redis
        state = await cluster.state()
        body.update(role=state["role"], node=state["node"], leader=state["leader"])
        body["redis"] = "ok" if state["redis"]["connected"] else "error"
        if body["redis"] != "ok" and db_ok:  # it goes on working; events wait in its buffer
            body["status"] = "degraded"
    return web.json_response(body, status=200 if db_ok else 503)
