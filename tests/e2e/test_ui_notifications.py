"""The Config page's "Send test notification" button in real Chromium: the daemon (a real process) sends
through Apprise's json:// plugin to a receiver on 127.0.0.1, and the page says it worked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.harness import ARTIFACTS, CHROMIUM_ARGS, DaemonProcess, chromium_path, remember_login

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery notify"


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict]]]:
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append({"path": self.path, **json.loads(body or b"{}")})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], got
    finally:
        server.shutdown()
        server.server_close()


def test_test_notification_button(receiver: tuple[int, list[dict]], tmp_path) -> None:
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("Debian chromium is needed")
    port, got = receiver
    daemon = DaemonProcess(
        tmp_path,
        "http://127.0.0.1:9",  # the provider is never asked in this test
        f"notifications:\n  apprise:\n    - url: json://127.0.0.1:{port}/hook\n"
        "      events: [download_failed]\ndownloads:\n  autostart: false\n",
    )
    daemon.start()
    try:
        token = daemon.ensure_login(PASSWORD)
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            remember_login(page, token)
            page.goto(daemon.url + "/#/config")
            button = page.locator("#notify-test-btn")
            expect(button).to_be_visible()
            button.click()
            expect(page.locator("#toasts")).to_contain_text("Test notification sent to 1 target(s).")
            assert [(g["path"], g["title"]) for g in got] == [("/hook", "aniworldd test notification")]
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "notify-test.png"))
            browser.close()
    finally:
        daemon.stop()
