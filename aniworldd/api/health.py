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
    return web.json_response(body, status=200 if db_ok else 503)
