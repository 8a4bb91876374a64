"""The config page in real Chromium, rendered from GET /api/config/schema (issue 17).

Essentials (library, downloads, notifications, MQTT host) come first with their descriptions as help texts,
everything else sits under a collapsed "Advanced". A select is changed, the hoster list reordered with the
keyboard, a hoster added and one removed, a webhook added in the row editor, and the save lands in the
daemon's own config file: new values and order, the user's comments still there, nothing else written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.harness import ARTIFACTS, CHROMIUM_ARGS, DaemonProcess, chromium_path, remember_login
from tests.e2e.test_ui_a11y import run_axe

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery config"
TOP_COMMENT = "# my downloads: favourites first"
INLINE_COMMENT = "# keep this comment"
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    proc = DaemonProcess(
        tmp_path_factory.mktemp("cfg-page"),
        "http://127.0.0.1:9",  # the provider is never asked here
        f"{TOP_COMMENT}\ndownloads:\n  autostart: false\n"
        f"  hosters: [Vidoza, VOE, Filemoon]  {INLINE_COMMENT}\n  quality: best\n",
    )
    proc.start()
    yield proc
    proc.stop()


def test_config_page_essentials_advanced_and_editors(daemon: DaemonProcess) -> None:
    token = daemon.ensure_login(PASSWORD)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # axe is injected
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        remember_login(page, token)
        page.goto(daemon.url + "/#/config")

        # --- essentials first (Library, then Downloads ...), the rest collapsed under Advanced
        essentials = page.locator("#config-essentials")
        expect(essentials).to_be_visible()
        legends = essentials.locator("legend.h6").all_text_contents()
        assert legends[:2] == ["Library", "Downloads"]
        assert "Server" not in legends
        advanced = page.locator("#config-advanced")
        expect(advanced).not_to_have_attribute("open", re.compile(".*"))
        expect(page.locator("#cfg-provider-timeout")).to_be_hidden()
        expect(page.locator("#cfg-server-port")).to_be_hidden()
        assert page.evaluate(
            "document.querySelector('#config-essentials').compareDocumentPosition("
            "document.querySelector('#config-advanced')) & Node.DOCUMENT_POSITION_FOLLOWING"
        )

        # --- a select with its description as help text (aria-describedby)
        quality = page.locator("#cfg-downloads-quality")
        expect(quality).to_have_value("best")
        assert quality.evaluate("el => el.tagName") == "SELECT"
        help_text = page.locator("#cfg-downloads-quality-help")
        expect(help_text).to_be_visible()
        expect(help_text).to_contain_text("Best, worst, 360p")  # its comment in config.example.yaml
        assert "cfg-downloads-quality-help" in quality.get_attribute("aria-describedby").split()
        quality.select_option("720p")

        # --- hosters: reorder from the keyboard, add one, remove one
        hosters = page.locator("#cfg-downloads-hosters-list li")
        expect(hosters).to_have_count(3)
        page.get_by_role("button", name="Move VOE up").focus()
        page.keyboard.press("Enter")
        expect(hosters.first).to_have_attribute("data-value", "VOE")
        # VOE is first now: its "up" is disabled, so the focus moved to its "down" button
        expect(page.get_by_role("button", name="Move VOE down")).to_be_focused()
        page.locator("#cfg-downloads-hosters-add").select_option("Luluvdo")
        page.locator("#cfg-downloads-hosters").get_by_role("button", name="Add", exact=True).click()
        page.get_by_role("button", name="Remove Filemoon").click()
        expect(hosters).to_have_count(3)
        assert [li.get_attribute("data-value") for li in hosters.all()] == ["VOE", "Vidoza", "Luluvdo"]

        # --- a webhook in the row editor (URL + events), not raw JSON
        page.locator("#cfg-notifications-webhooks-add").click()
        url = page.locator("#cfg-notifications-webhooks-0-url")
        expect(url).to_be_focused()
        url.fill(HOOK)
        page.locator("#cfg-notifications-webhooks-0-events-scan_complete").uncheck()

        # --- Advanced opens; its select changes too
        page.locator("#config-advanced > summary").click()
        expect(page.locator("#cfg-provider-timeout")).to_be_visible()
        page.locator("#cfg-downloads-hoster_order").select_option("fixed")
        assert run_axe(page) == []  # every control, Advanced open: labelled, described, no serious violation
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "config-page.png"), full_page=True)

        # --- a bad webhook URL: the server's message shows under the editor, nothing is written
        before = daemon.config_path.read_bytes()
        url.fill("not-a-url")
        page.click("#config-save")
        problem = page.locator("#cfg-notifications-webhooks-error")
        expect(problem).to_be_visible()
        expect(problem).to_contain_text("url")
        assert daemon.config_path.read_bytes() == before
        url.fill(HOOK)

        page.click("#config-save")
        expect(page.locator("#config-saved")).to_be_visible()
        text = daemon.config_path.read_text(encoding="utf-8")
        assert TOP_COMMENT in text and INLINE_COMMENT in text
        saved = yaml.safe_load(text)
        downloads = saved["downloads"]
        assert downloads["hosters"] == ["VOE", "Vidoza", "Luluvdo"]
        assert downloads["quality"] == "720p"
        assert downloads["hoster_order"] == "fixed"
        assert "max_concurrent" not in downloads  # untouched options are not written out
        events = ["download_complete", "download_failed", "new_episodes", "health"]
        assert saved["notifications"] == {"webhooks": [{"url": HOOK, "events": events}]}
        assert saved["provider"]["timeout"] == 10
        # the page shows what was saved, Advanced still open
        expect(page.locator("#config-advanced")).to_have_attribute("open", "")
        expect(page.locator("#cfg-downloads-quality")).to_have_value("720p")
        expect(hosters.first).to_have_attribute("data-value", "VOE")
        expect(page.locator("#cfg-notifications-webhooks-0-url")).to_have_value(HOOK)
        browser.close()
    assert errors == []
