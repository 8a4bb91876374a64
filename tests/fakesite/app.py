"""The fake site application: aniworld.to + s.to + the video hosters, all at one origin."""

from __future__ import annotations

from aiohttp import web

from .hosters import add_routes as add_hoster_routes
from .sites import add_site_routes
from .state import FakeSiteState

STATE_KEY = web.AppKey("fakesite_state", FakeSiteState)


def make_app(state: FakeSiteState | None = None) -> web.Application:
    """Site routes first (they own `/media/images/...`), then the hoster routes."""
    state = state or FakeSiteState()
    app = web.Application()
    app[STATE_KEY] = state
    add_site_routes(app, state)
    add_hoster_routes(app, state)
    return app


async def start_fakesite(
    state: FakeSiteState | None = None, port: int = 0, host: str = "127.0.0.1"
) -> tuple[web.AppRunner, str]:
    """Start the fake site; returns (runner, origin). Stop it with `await runner.cleanup()`."""
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # noqa: SLF001 - the bound port when port=0
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, f"http://{host}:{bound}"
