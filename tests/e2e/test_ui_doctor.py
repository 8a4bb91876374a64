"""The "Run doctor" button on the system page, in real Chromium: the table shows each step, and a hoster
that is down shows as a failing row with its fix."""

from __future__ import annotations

import pytest

from tests.e2e.harness import ARTIFACTS, CHROMIUM_ARGS, DaemonProcess, FakeSiteThread, remember_login

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery doctor"


def test_run_doctor_shows_the_steps_and_the_failing_one(chromium: str, tmp_path) -> None:
    site = FakeSiteThread()
    site.state.down_hosters.add("vidmoly")
    site.start()
    daemon = DaemonProcess(tmp_path, site.origin, "downloads:\n  autostart: false\n")
    daemon.start()
    try:
        token = daemon.ensure_login(PASSWORD)
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            remember_login(page, token)
            page.goto(daemon.url + "/#/system")
            page.locator("#doctor-run").click()
            summary = page.locator("#doctor-summary")
            expect(summary).to_have_text("1 of 21 steps failed", timeout=60_000)
            rows = page.locator("#doctor-table tbody tr")
            expect(rows).to_have_count(21)
            expect(rows.first).to_have_attribute("data-step", "config")
            failing = page.locator('#doctor-table tr[data-ok="false"]')
            expect(failing).to_have_count(1)
            expect(failing).to_contain_text("Vidmoly")
            expect(failing).to_contain_text("Fix: ")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "system-doctor.png"), full_page=True)
            browser.close()
    finally:
        daemon.stop()
        site.stop()
