"""What every browser test shares: the Debian Chromium (and ffmpeg, which the fake hosters' videos need),
and one launched Playwright browser per test module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.harness import CHROMIUM_ARGS, chromium_path


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (the fake hosters make their test videos with it)")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[object]:
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright (Python package) not installed"
    )
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
