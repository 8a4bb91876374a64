"""Shared fixtures: a real SQLite store, an event bus, a validated config in a temp data dir."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aniworldd.config import load_text
from aniworldd.db import Store
from aniworldd.events import EventBus

# The look-alike provider site's fixtures, registered here so every test folder can use them.
from tests.fakesite.fixtures import *  # noqa: F403


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
