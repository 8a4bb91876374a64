"""Builds the aiohttp application from an AppContext."""

from __future__ import annotations

from aiohttp import web

from aniworldd.api.context import AppContext
from aniworldd.api.health import CTX, health


def create_app(ctx: AppContext) -> web.Application:
    app = web.Application(client_max_size=ctx.config["server"]["max_body_bytes"])
    app[CTX] = ctx
    app.router.add_get("/health", health)
    return app
