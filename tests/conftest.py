"""Shared fixtures: a real SQLite store, an event bus, a validated config in a temp data dir."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aniworldd.config import load_text
from aniworldd.db import Store
from aniworldd.events import EventBus

# The look-alike provider site's fixtures, registered here so every test folder can use them.
from tests.fakesite.fixtures import *  # noqa: F403


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_answers() -> bool:
    """Whether a PostgreSQL server listens on 127.0.0.1:5432 (the postgres tests skip without one)."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def webhook_receiver(fail_first: int = 0) -> tuple[TestServer, list[dict]]:
    """A running local webhook endpoint at /hook and the JSON bodies it got; the first `fail_first`
    posts are answered 503. Close the server when done."""
    received: list[dict] = []
    state = {"fail": fail_first}

    async def hook(request: web.Request) -> web.Response:
        if state["fail"] > 0:
            state["fail"] -= 1
            return web.Response(status=503)
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app)
    await server.start_server()
    return server, received


@pytest.fixture
def config_factory(tmp_path: Path):
    """Build a validated config whose data dir and library live under tmp_path."""

    def make(text: str = "", **env: str) -> dict:
        base = f"data_dir: {tmp_path / 'data'}\n"
        if "library:" not in text:
            base += f"library:\n  roots: [{tmp_path / 'library'}]\n"
        return load_text(base + text, "config.yaml", env=env, base_dir=tmp_path)

    return make


@pytest.fixture
def config(config_factory) -> dict:
    return config_factory()


@pytest.fixture
def store(config) -> Store:
    s = Store(config["database"]["url"], config["data_dir"])
    yield s
    s.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()
