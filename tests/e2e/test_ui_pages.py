"""The issue 17 pages in real Chromium against a real daemon: History, Calendar, API keys, the System page's
free space and live log, and /api/docs in dark mode.

One daemon for the module: it downloads one episode (completed) and fails another (its only hoster is down,
no retries), so History and Calendar show real data. Each test opens one page.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.e2e.harness import ARTIFACTS, DaemonProcess, FakeSiteThread, remember_login, shot
from tests.fakesite.catalog import ANIWORLD, GER_SUB, make_series

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery pages"
KEY = "rekishi-no-testfolge"
TITLE = "Rekishi no Testfolge"


@pytest.fixture(scope="module")
def site(chromium: str) -> Iterator[FakeSiteThread]:
    fake = FakeSiteThread()
    series = make_series(ANIWORLD, KEY, TITLE, {1: 2}, languages=[GER_SUB], hosters=["Vidoza"])
    series.seasons[1][1].links = {GER_SUB: ["Streamtape"]}  # E2 only on a hoster that is down
    fake.state.catalog.add(series)
    fake.state.down_hosters.add("streamtape")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def daemon(site: FakeSiteThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(
        tmp_path_factory.mktemp("pages-daemon"),
        site.origin,
        "downloads:\n  language: [ger-sub]\n  hosters: [Vidoza, Streamtape]\n  max_retries: 0\n"
        "  min_free_gb: 0\n",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def token(daemon: DaemonProcess, site: FakeSiteThread) -> str:
    """Logged in, with E1 downloaded and E2 failed (waits for the queue to finish both)."""
    token = daemon.ensure_login(PASSWORD)
    status, added = daemon.request(
        "POST", "/api/anime/add", {"link": f"{site.origin}/anime/stream/{KEY}"}, token
    )
    assert status == 200, added
    episodes = [{"season": 1, "episode": 1}, {"season": 1, "episode": 2}]
    status, queued = daemon.request("POST", "/api/queue/add", {"serie_id": KEY, "episodes": episodes}, token)
    assert status == 201, queued
    daemon.request("POST", "/api/queue/start", {}, token)
    counts: dict = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        counts = daemon.request("GET", "/api/queue/completed", token=token)[1]["counts"]
        if counts == {"completed": 1, "failed": 1}:
            break
        time.sleep(0.2)
    assert counts == {"completed": 1, "failed": 1}, daemon.log_text()
    return token


@pytest.fixture
def page(browser: object, daemon: DaemonProcess, token: str) -> Iterator[object]:
    """A logged-in page; fails the test on a script error or a CSP violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.set_default_timeout(15_000)
    remember_login(context, token)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    pg.on("console", lambda msg: errors.append(msg.text) if "Refused to" in msg.text else None)
    yield pg
    context.close()
    assert errors == []


def test_history_shows_completed_and_failed_with_the_reason(
    page: object, daemon: DaemonProcess, token: str
) -> None:
    failed = daemon.request("GET", "/api/queue/completed?status=failed", token=token)[1]["items"][0]
    assert failed["error"]
    page.goto(daemon.url + "/#/history")
    page.wait_for_selector("html[data-ready=history]")
    items = page.locator("#history-list .history-item")
    expect(items).to_have_count(2)
    done = page.locator(".history-item[data-status=completed]")
    expect(done.locator(".episode-label")).to_have_text("S01E01")
    expect(done).to_contain_text(TITLE)
    bad = page.locator(".history-item[data-status=failed]")
    expect(bad.locator(".episode-label")).to_have_text("S01E02")
    expect(bad.locator(".history-reason")).to_have_text(failed["error"])
    expect(page.locator("#history-status [data-count=failed]")).to_have_text("1")
    shot(page, "30-history")

    page.locator("label[for=history-status-failed]").click()
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-status", "failed")
    page.fill("#history-q", "no such series")
    expect(page.locator("#history-empty")).to_have_text("No finished downloads match the filter.")
    expect(items).to_have_count(0)
    page.fill("#history-q", "REKISHI")
    expect(items).to_have_count(1)


def test_calendar_shows_the_downloaded_episode(page: object, daemon: DaemonProcess) -> None:
    page.goto(daemon.url + "/#/calendar")
    page.wait_for_selector("html[data-ready=calendar]")
    entry = page.locator(f".calendar-entry[data-key={KEY}][data-type=downloaded]")
    expect(entry).to_have_count(1)
    expect(entry.locator(".episode-label")).to_have_text("S01E01")
    expect(entry.locator("a")).to_have_attribute("href", f"#/series/{KEY}")
    expect(entry).to_contain_text("Downloaded")
    expect(page.locator(".calendar-day h2").first).to_have_text("Today")
    expect(page.locator("[data-nav=calendar]")).to_have_attribute("aria-current", "page")
    shot(page, "31-calendar")


def _with_key(daemon: DaemonProcess, key: str) -> int:
    req = urllib.request.Request(daemon.url + "/api/anime", headers={"X-Api-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_api_key_create_shows_it_once_and_revoke_asks(page: object, daemon: DaemonProcess) -> None:
    page.goto(daemon.url + "/#/apikeys")
    page.wait_for_selector("html[data-ready=apikeys]")
    expect(page.locator("#apikeys-empty")).to_be_visible()
    page.fill("#apikey-name", "Home Assistant")
    page.select_option("#apikey-scope", "read")
    page.locator("#apikey-form button[type=submit]").click()
    secret = page.locator("#apikey-secret")
    expect(secret).to_have_value(re.compile(r"^awd_"))
    key = secret.input_value()
    assert _with_key(daemon, key) == 200
    row = page.locator("#apikeys-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Home Assistant")
    expect(row).to_contain_text("read")
    assert key not in page.locator("#apikeys-table").inner_text()
    page.locator("#apikey-copy").click()  # clipboard or the select-and-copy fallback: no error either way
    shot(page, "32-apikeys-new")
    page.locator("#apikey-done").click()
    expect(page.locator("#apikey-new")).to_be_hidden()
    expect(secret).to_have_value("")

    row.locator(".apikey-revoke").click()
    modal = page.locator("#confirm-modal")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("Home Assistant")
    page.locator("#confirm-ok").click()
    expect(row).to_have_count(0)
    expect(page.locator("#apikeys-empty")).to_be_visible()
    assert _with_key(daemon, key) == 401


def test_system_page_free_space_and_live_log(page: object, daemon: DaemonProcess) -> None:
    page.goto(daemon.url + "/#/system")
    page.wait_for_selector("html[data-ready=system]")
    storage = page.locator("#system-storage tbody tr")
    expect(storage).to_have_count(3)  # the library root, the data dir and the temp dir
    expect(page.locator("#system-storage tr[data-storage='Data dir']")).to_contain_text(str(daemon.data_dir))
    lines = page.locator("#system-logs .log-line")
    expect(lines.filter(has_text=re.compile(f"download of {KEY} S01E0+2 failed"))).to_have_count(1)

    # a line logged after the page opened shows up without reloading (the page polls for new lines)
    status, _ = daemon.request("POST", "/api/auth/login", {"password": "not the password"})
    assert status == 401
    fresh = lines.filter(has_text="failed login from")
    expect(fresh).to_have_count(1)
    expect(fresh).to_have_attribute("data-level", "WARNING")
    shot(page, "33-system-log")


def test_api_docs_follow_dark_mode(browser: object, daemon: DaemonProcess) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    try:
        pg = context.new_page()
        refused: list[str] = []
        pg.on("console", lambda msg: refused.append(msg.text) if "Refused to" in msg.text else None)
        pg.goto(daemon.url + "/api/docs")
        expect(pg.locator("html")).to_have_attribute("data-bs-theme", "dark")
        expect(pg.locator("section[aria-labelledby=queue] code.op-path").first).to_be_visible()
        rgb = pg.evaluate("() => getComputedStyle(document.body).backgroundColor")
        r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
        assert max(r, g, b) < 80, rgb  # dark, from Bootstrap's dark theme
        pg.locator("#queue_history > summary").click()
        expect(pg.locator("#queue_history")).to_contain_text("status")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "34-api-docs-dark.png"))
        assert refused == []
    finally:
        context.close()
