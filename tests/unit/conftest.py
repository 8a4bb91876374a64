"""The fake hosters on their own (no provider pages), for the hoster and source-finder tests.

state    what the hosters do: down hosters, dead codes, where the media lives, a request log
origin   "http://127.0.0.1:<port>" of a running hoster app with that state
session  an aiohttp client session for the resolvers
"""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web

from tests.fakesite.hosters import add_routes
from tests.fakesite.media import default_cache_dir


@pytest.fixture
def state():
    return SimpleNamespace(
        down_hosters=set(), dead_codes=set(), media_dir=default_cache_dir(), request_log=[]
    )


@pytest.fixture
async def origin(aiohttp_server, state) -> str:
    app = web.Application()
    add_routes(app, state)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def session():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
        yield s
