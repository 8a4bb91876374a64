"""Pytest fixtures for the fake aniworld.to / s.to (registered by tests/conftest.py via `import *`).

fakesite_state          FakeSiteState with the default catalog (edit it in the test)
fakesite                origin ("http://127.0.0.1:<port>") of a running fake site using that state
fakesite_provider_cfg   a `provider` config section pointing both sites at the fake site (fast retries)
fakesite_providers      a ProviderSet built from it (closed after the test)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .app import start_fakesite
from .state import FakeSiteState

__all__ = ["fakesite", "fakesite_provider_cfg", "fakesite_providers", "fakesite_state"]


@pytest.fixture
def fakesite_state() -> FakeSiteState:
    return FakeSiteState()


@pytest.fixture
async def fakesite(fakesite_state: FakeSiteState) -> AsyncIterator[str]:
    runner, origin = await start_fakesite(fakesite_state)
    try:
        yield origin
    finally:
        await runner.cleanup()


@pytest.fixture
def fakesite_provider_cfg(fakesite: str) -> dict:
    return {
        "aniworld_url": fakesite,
        "sto_url": fakesite,
        "user_agent": "aniworldd-tests",
        "timeout": 5.0,
        "max_concurrent": 2,
        "min_interval": 0.0,
        "retries": 2,
        "cache_ttl": 600.0,
        "refresh_interval": 21600.0,
        "refresh_jitter": 0.1,
    }


@pytest.fixture
async def fakesite_providers(fakesite_provider_cfg: dict):
    from aniworldd.providers.http import HttpClient
    from aniworldd.providers.registry import build_providers

    client = HttpClient.from_config(fakesite_provider_cfg, backoff=0.01, jitter=0.0)
    providers = build_providers(fakesite_provider_cfg, client=client)
    try:
        yield providers
    finally:
        await providers.close()
