"""The API against real services: SQLite store, bus, auth, config, anime (fake provider site), scan, queue.

Only the outside internet is faked (tests/fakesite plays aniworld.to / s.to). bcrypt runs with 4 rounds here
so the many logins stay fast; the algorithm is the same.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from aniworldd import logtail
from aniworldd.api.app import create_app
from aniworldd.api.context import AppContext
from aniworldd.api.posters import PosterTokens
from aniworldd.config import load_config
from aniworldd.db import Store
from aniworldd.db.services import AnimeSeriesService
from aniworldd.events import EventBus
from aniworldd.services.anime_service import AnimeService
from aniworldd.services.auth_service import AuthService
from aniworldd.services.config_service import ConfigService
from aniworldd.services.download_service import DownloadService
from aniworldd.services.library_service import LibraryService
from aniworldd.services.poster_service import PosterService
from aniworldd.services.scan_service import ScanService

PASSWORD = "correct horse battery"


def write_config(tmp_path: Path, origin: str, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"library:\n  roots: [{tmp_path / 'library'}]\n  watch: false\n  scan_on_start: false\n"
        "downloads:\n  autostart: false\n"
        f"provider:\n  aniworld_url: {origin}\n  sto_url: {origin}\n  min_interval: 0\n  retries: 1\n"
        "  timeout: 5\n" + extra
    )
    return path


class Api:
    """A test client plus the context behind it and helpers to log in."""

    def __init__(self, client: TestClient, ctx: AppContext) -> None:
        self.client = client
        self.ctx = ctx
        self.token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        assert self.token, "log in first"
        return {"Authorization": f"Bearer {self.token}"}

    async def setup_and_login(self, password: str = PASSWORD) -> str:
        if not self.ctx.auth.is_configured():
            resp = await self.client.post("/api/auth/setup", json={"password": password})
            assert resp.status == 201, await resp.text()
        resp = await self.client.post("/api/auth/login", json={"password": password})
        assert resp.status == 200, await resp.text()
        self.token = (await resp.json())["access_token"]
        return self.token

    async def call(self, method: str, path: str, **kwargs) -> tuple[int, object]:
        headers = {**(self.headers if self.token else {}), **kwargs.pop("headers", {})}
        resp = await self.client.request(method, path, headers=headers, **kwargs)
        ctype = resp.headers.get("Content-Type", "")
        data = await resp.json() if ctype.startswith("application/json") else await resp.text()
        return resp.status, data


async def build_context(config_path: Path, providers=None, **auth_kwargs) -> AppContext:
    cfg = load_config(config_path, env={})
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    bus = EventBus()
    ctx = AppContext(config=cfg, store=store, bus=bus, config_path=config_path)
    ctx.series = AnimeSeriesService(store)
    ctx.auth = AuthService.from_config(store, cfg, bcrypt_rounds=4, **auth_kwargs)
    ctx.extras["poster_tokens"] = PosterTokens(cfg["data_dir"], ctx.auth)
    ctx.extras["posters"] = PosterService(store, cfg["data_dir"])
    ctx.config_service = ConfigService(config_path, Path(cfg["data_dir"]), bus, running=cfg)
    if providers is not None:
        ctx.anime = AnimeService(
            store, providers, cfg["library"]["roots"], bus, languages=cfg["downloads"]["language"]
        )
    ctx.scan = ScanService(cfg, store, bus)
    ctx.library = LibraryService(cfg, store, ctx.scan)
    ctx.queue = DownloadService(cfg, store, bus)
    return ctx


@pytest.fixture
async def api_factory(
    aiohttp_client, tmp_path: Path, fakesite: str, fakesite_providers
) -> AsyncIterator[Callable]:
    """Build an Api for a config text fragment (each call: its own data dir under tmp_path)."""
    made: list[tuple[AppContext, AuthService]] = []

    async def make(extra: str = "", name: str = "main", with_services: bool = True, **auth_kwargs) -> Api:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        (folder / "library").mkdir(exist_ok=True)  # the daemon never creates a library root itself
        ctx = await build_context(write_config(folder, fakesite, extra), fakesite_providers, **auth_kwargs)
        if not with_services:
            ctx.anime = ctx.scan = ctx.queue = ctx.library = None
        # What the daemon wires for GET /api/system/logs: a LogTail on the root logger, detached after.
        ctx.extras["logtail"] = logtail.attach()
        made.append((ctx, ctx.auth))
        return Api(await aiohttp_client(create_app(ctx)), ctx)

    yield make
    for ctx, _ in made:
        logging.getLogger().removeHandler(ctx.extras["logtail"])
    for ctx, auth in made:
        if ctx.queue is not None:
            await ctx.queue.close()
        if ctx.scan is not None:
            await ctx.scan.close()
        await auth.close()
        ctx.store.close()


@pytest.fixture
async def api(api_factory) -> Api:
    return await api_factory()


@pytest.fixture
async def logged_in(api: Api) -> Api:
    await api.setup_and_login()
    return api
