"""The fake hosters on their own (no provider pages), for the hoster and source-finder tests.

state    what the hosters do: down hosters, dead codes, where the media lives, a request log
origin   "http://127.0.0.1:<port>" of a running hoster app with that state
client   the provider HTTP client (curl_cffi) the resolvers fetch through
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp import web

from aniworldd.providers.http import HttpClient
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
async def client():
    async with HttpClient(timeout=20, retries=0, min_interval=0, max_concurrent=8) as c:
        yield c


@pytest.fixture
def session(client):
    """The older name of `client` (the resolvers took an aiohttp session before curl_cffi)."""
    return client
