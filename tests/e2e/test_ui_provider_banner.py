"""The provider banner in real Chromium: s.to answers its hoster redirect with the Turnstile captcha, the
queued episode waits, and every page shows "... asks for a captcha" with what the user can do; when the
captcha is gone and the episode goes through, the banner goes away by itself."""

from __future__ import annotations

import time

import pytest

from tests.e2e.harness import ARTIFACTS, CHROMIUM_ARGS, DaemonProcess, FakeSiteThread, remember_login
from tests.fakesite.catalog import GER_DUB, STO, make_series

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery banner"
KEY = "leuchtturm-nord"


def test_a_captcha_on_s_to_shows_a_banner_until_it_is_gone(chromium: str, tmp_path) -> None:
    site = FakeSiteThread()
    site.state.catalog.add(
        make_series(STO, KEY, "Leuchtturm Nord", {1: 1}, languages=[GER_DUB], hosters=["Vidoza"])
    )
    site.state.turnstile_after = 0  # every /r?t= answers with "Stream wird vorbereitet..."
    site.start()
    daemon = DaemonProcess(
        tmp_path, site.origin, "downloads:\n  language: [ger-dub]\n  hosters: [Vidoza]\n  min_free_gb: 0\n"
    )
    daemon.start()
    try:
        token = daemon.ensure_login(PASSWORD)
        status, _ = daemon.request("POST", "/api/anime/add", {"link": f"{site.origin}/serie/{KEY}"}, token)
        assert status in (200, 201)
        body = {
            "serie_id": KEY,
            "serie_folder": "",
            "serie_name": KEY,
            "episodes": [{"season": 1, "episode": 1}],
        }
        status, _ = daemon.request("POST", "/api/queue/add", body, token)
        assert status in (200, 201)
        daemon.request("POST", "/api/queue/start", None, token)

        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            remember_login(page, token)
            page.goto(daemon.url + "/")
            banner = page.locator("#provider-banner")
            expect(banner).to_be_visible(timeout=30_000)
            expect(banner).to_contain_text("asks for a captcha")
            expect(banner).to_contain_text("provider.proxy")  # what the user can do
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "provider-banner.png"))

            # The captcha is solved elsewhere; a retry now (instead of in 15 min) lets the item through.
            site.state.turnstile_after = None
            daemon.request("POST", "/api/queue/retry", None, token)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                _, queue = daemon.request("GET", "/api/queue/status", None, token)
                if queue["completed_downloads"]:
                    break
                time.sleep(0.2)
            assert queue["completed_downloads"], daemon.log_text()
            expect(banner).to_be_hidden(timeout=15_000)
            browser.close()
    finally:
        daemon.stop()
        site.stop()
