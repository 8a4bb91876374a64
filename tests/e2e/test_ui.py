"""The bundled web UI in real headless Chromium, against a real daemon process and the fake provider site.

Flow: first-run setup -> log out / log in -> search -> add -> queue the missing episodes -> watch a progress
bar reach 100 % -> the library shows the episodes on disk; and the config page showing a validation error
next to its field (then saving, and restoring the backup). Screenshots of each page go to tests/artifacts/.

Then the library upkeep controls: the series page's "Monitored" switch and "Refresh from provider" button
(a new episode appears on the fake site), and matching an unmatched library folder by pasting a link.
Toasts hide by themselves and never pile up (at most three at once).

Progress is made observable without timing assumptions: the fake hoster sends the media slowly until the
test has seen a bar between 0 and 100 %, then at full speed.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml

from tests.e2e.harness import ARTIFACTS, DaemonProcess, FakeSiteThread, remember_login, shot
from tests.fakesite.catalog import ANIWORLD, GER_SUB, make_series

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery"
KEY = "kiseki-no-testfolge"
TITLE = "Kiseki no Testfolge"
SLOW_BPS = 4_000  # the media trickles in until the test has watched a bar move
FAST_BPS = 2_000_000
REFRESH_KEY = "hoshi-no-neuigkeiten"
REFRESH_TITLE = "Hoshi no Neuigkeiten"
MQTT_SECRET = "mqtt-pw-never-shown"
HEALTH_KEY = "kaputto-no-hoster"  # offered only by a hoster the site takes down (system page test)
HEALTH_TITLE = "Kaputto no Hoster"
TOAST_MAX = 3


@pytest.fixture(scope="module")
def site(chromium: str) -> Iterator[FakeSiteThread]:
    fake = FakeSiteThread()
    series = make_series(
        ANIWORLD, KEY, TITLE, {1: 2}, languages=[GER_SUB], hosters=["Vidoza"], start_year=2024
    )
    for ep in series.seasons[1]:
        # An 8 s video (~0.5 MB) per episode, so there is a download to watch.
        ep.codes[(GER_SUB, "Vidoza")] = f"kiseki{ep.number}-8s"
    fake.state.catalog.add(series)
    # A second series for monitoring/refresh (episode 3 is listed later, mid-test).
    fake.state.catalog.add(
        make_series(ANIWORLD, REFRESH_KEY, REFRESH_TITLE, {1: 2}, languages=[GER_SUB], hosters=["Vidoza"])
    )
    fake.state.catalog.add(
        make_series(ANIWORLD, HEALTH_KEY, HEALTH_TITLE, {1: 1}, languages=[GER_SUB], hosters=["Streamtape"])
    )
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def daemon(site: FakeSiteThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(
        tmp_path_factory.mktemp("ui-daemon"),
        site.origin,
        "downloads:\n  language: [ger-sub]\n  hosters: [Vidoza]\n  retry_backoff: 1\n  min_free_gb: 0\n"
        f"mqtt:\n  password: {MQTT_SECRET}\n",  # MQTT stays off (no host); the secret must not reach the UI
    )
    proc.start()
    yield proc
    proc.stop()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(proc.log_path, ARTIFACTS / "e2e-daemon.log")


class PageProblems:
    """Uncaught script errors and CSP violations: the UI must run clean under the daemon's CSP."""

    def __init__(self, page: object) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: object) -> None:
        text = msg.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.errors.append(f"csp: {text}")


@pytest.fixture
def page(browser: object, daemon: DaemonProcess) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    problems = PageProblems(pg)
    yield pg
    context.close()
    assert problems.errors == []


# Records the largest number of toasts shown at once, for the whole page life.
RECORD_TOASTS = """() => {
  window.__maxToasts = 0;
  const box = document.getElementById("toasts");
  new MutationObserver(() => {
    window.__maxToasts = Math.max(window.__maxToasts, box.querySelectorAll(".toast").length);
  }).observe(box, {childList: true});
}"""

# Records every value the queue's progress bars take, per item and list, for the whole page life.
RECORD_PROGRESS = """() => {
  window.__progress = {};
  const view = document.querySelector("[data-view=queue]");
  const record = () => view.querySelectorAll(".queue-item").forEach((row) => {
    const bar = row.querySelector(".progress");
    const list = row.parentElement.id.replace("queue-", "");
    if (!bar && list !== "completed") return;  // completed rows are one line, without a bar
    const value = bar ? Number(bar.getAttribute("aria-valuenow")) : 100;
    (window.__progress[row.dataset.itemId] ||= []).push([list, value]);
  });
  new MutationObserver(record).observe(view, {subtree: true, childList: true, attributes: true,
                                              attributeFilter: ["aria-valuenow"]});
  record();
}"""


def test_setup_login_search_add_download(page: object, daemon: DaemonProcess, site: FakeSiteThread) -> None:
    # --- first run: no password yet -> the setup page; mismatched passwords are caught in the form
    page.goto(daemon.url + "/")
    page.evaluate(RECORD_TOASTS)
    expect(page.locator("[data-view=setup]")).to_be_visible()
    expect(page.locator("#setup-password")).to_be_focused()
    page.fill("#setup-password", PASSWORD)
    page.fill("#setup-password2", PASSWORD + "!")
    page.click("#setup-form button[type=submit]")
    expect(page.locator("#setup-password2")).to_have_class(re.compile(r"\bis-invalid\b"))
    shot(page, "01-setup")
    page.fill("#setup-password2", PASSWORD)
    page.click("#setup-form button[type=submit]")
    expect(page.locator("[data-view=library]")).to_be_visible()
    assert daemon.request("GET", "/api/auth/status")[1]["configured"] is True

    # --- log out (the token is revoked and forgotten), then log in: a wrong password first
    page.click("#logout-btn")
    expect(page.locator("[data-view=login]")).to_be_visible()
    assert page.evaluate("localStorage.getItem('aniworldd.token')") is None
    page.fill("#login-password", "not the password")
    page.press("#login-password", "Enter")
    expect(page.locator("#login-error")).to_have_text("Wrong password.")
    shot(page, "02-login")
    page.fill("#login-password", PASSWORD)
    page.press("#login-password", "Enter")
    expect(page.locator("[data-view=library]")).to_be_visible()
    page.wait_for_selector("html[data-ready=library]")
    expect(page.locator("#library-empty")).to_be_visible()
    token = page.evaluate("localStorage.getItem('aniworldd.token')")
    assert daemon.request("GET", "/api/queue/status", token=token)[0] == 200
    shot(page, "03-library-empty")

    # --- search the provider and add the series by clicking the result
    page.click("[data-nav=search]")
    page.fill("#search-q", "kiseki")
    page.press("#search-q", "Enter")
    result = page.locator(f".search-result[data-key={KEY}]")
    expect(result).to_be_visible()
    expect(result).to_contain_text(TITLE)
    shot(page, "04-search")
    result.get_by_role("button", name=f"Add {TITLE}").click()
    expect(page).to_have_url(re.compile(rf"#/series/{KEY}$"), timeout=30_000)
    rows = page.locator(".episode-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(".episode-table tbody tr[data-status=missing]")).to_have_count(2)
    expect(page.locator("#series-title")).to_have_text(TITLE)
    shot(page, "05-series-missing")

    # --- drop the live connection: the client must reconnect and re-join its rooms by itself,
    #     or the progress below never arrives
    page.evaluate("""() => { window.__connects = 0; const s = App.socket();
                      s.on("connect", () => { window.__connects += 1; }); s.ws.close(4000, "test"); }""")
    page.wait_for_function("() => window.__connects >= 1")

    # --- queue the missing episodes of season 1 and watch them download
    site.state.media_rate_bps = SLOW_BPS
    page.click("[data-download-season='1']")
    expect(page.locator(".episode-table tbody tr[data-status=missing]")).to_have_count(0, timeout=15_000)
    page.click("[data-nav=queue]")
    page.wait_for_selector("html[data-ready=queue]")
    page.evaluate(RECORD_PROGRESS)
    # A bar is moving but not done: that is what the user watches.
    moving = page.locator("#queue-active .progress:not([aria-valuenow='0'])")
    expect(moving.first).to_be_visible(timeout=60_000)
    value = int(moving.first.get_attribute("aria-valuenow"))
    assert 0 < value < 100
    expect(page.locator("#queue-active .progress-text").first).to_contain_text("%")
    shot(page, "06-queue-progress")
    site.state.media_rate_bps = FAST_BPS
    done = page.locator("#queue-completed .queue-item[data-status=completed]")
    expect(done).to_have_count(2, timeout=90_000)
    shot(page, "07-queue-done")
    # every notice so far (set up, logged out, added, queued) has hidden by itself; never more than 3 shown
    expect(page.locator("#toasts .toast")).to_have_count(0, timeout=10_000)
    assert 1 <= page.evaluate("window.__maxToasts") <= TOAST_MAX
    progress = page.evaluate("window.__progress")
    assert len(progress) == 2
    progress = {item_id: [(where, value) for where, value in seen] for item_id, seen in progress.items()}
    for item_id, seen in progress.items():
        active = [v for where, v in seen if where == "active"]
        assert active == sorted(active), f"progress of item {item_id} went backwards: {active}"
        assert ("completed", 100) in seen
    assert any(0 < v < 100 for seen in progress.values() for where, v in seen if where == "active")

    # --- the library shows the episodes present: on disk in the series view, nothing missing in the list
    page.click(f"#queue-completed a[href='#/series/{KEY}'] >> nth=0")
    expect(page.locator(".episode-table tbody tr[data-status=on_disk]")).to_have_count(2, timeout=15_000)
    shot(page, "08-series-on-disk")
    files = sorted(p.name for p in daemon.library.rglob("*.mp4"))
    assert len(files) == 2, files
    page.click("[data-nav=library]")
    page.wait_for_selector("html[data-ready=library]")
    row = page.locator(f".series-row[data-key={KEY}]")  # complete series are shown by default
    expect(row).to_be_visible()
    expect(row.locator(".missing-badge")).to_have_text("complete")
    # keyboard: "/" jumps to the filter, typing filters the list
    page.locator("body").press("/")
    expect(page.locator("#library-q")).to_be_focused()
    page.keyboard.type("no such series")
    expect(row).to_have_count(0)
    page.fill("#library-q", "kiseki")
    expect(row).to_be_visible()
    shot(page, "09-library-complete")

    # --- the same library on a phone in dark mode
    phone = page.context.browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True
    )
    remember_login(phone, token)
    ph = phone.new_page()
    problems = PageProblems(ph)
    ph.goto(daemon.url + "/#/library")
    ph.wait_for_selector("html[data-ready=library]")
    assert ph.evaluate("document.documentElement.getAttribute('data-bs-theme')") == "dark"
    assert ph.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "horizontal scroll on a phone"
    )
    expect(ph.locator("#nav-menu")).to_be_hidden()  # collapsed behind the menu button
    expect(ph.locator(f".series-row[data-key={KEY}]")).to_be_visible()
    ph.click(".navbar-toggler")
    ph.wait_for_selector("#nav-menu.show:not(.collapsing)")
    expect(ph.locator("[data-nav=queue]")).to_be_visible()
    shot(ph, "10-phone-dark-menu", full_page=False)
    ph.click("[data-nav=queue]")
    ph.wait_for_selector("html[data-ready=queue]")
    ph.wait_for_selector("#nav-menu:not(.show):not(.collapsing)", state="attached")
    expect(ph.locator("[data-nav=queue]")).to_be_hidden()  # the menu closes after navigating
    shot(ph, "11-phone-dark-queue")
    phone.close()
    assert problems.errors == []


def test_config_validation_error_shown_next_to_field(page: object, daemon: DaemonProcess) -> None:
    token = daemon.ensure_login(PASSWORD)
    remember_login(page.context, token)
    page.goto(daemon.url + "/#/config")
    field = page.locator("#cfg-downloads-max_concurrent")
    expect(field).to_be_visible()
    # the MQTT password is shown as the placeholder only; the page never holds the secret
    expect(page.locator("#cfg-mqtt-password")).to_have_value("********")
    assert MQTT_SECRET not in page.content()
    before = daemon.config_path.read_bytes()
    shown_before = field.input_value()

    # --- an invalid value: the server's message appears under the field, nothing is written
    field.fill("0")
    page.click("#config-save")
    expect(field).to_have_class(re.compile(r"\bis-invalid\b"))
    feedback = page.locator("#cfg-downloads-max_concurrent-error")
    expect(feedback).to_be_visible()
    expect(feedback).not_to_be_empty()
    assert field.get_attribute("aria-invalid") == "true"
    assert "cfg-downloads-max_concurrent-error" in field.get_attribute("aria-describedby").split()
    expect(field).to_be_focused()
    expect(page.locator("#config-errors")).to_contain_text("nothing was saved")
    assert daemon.config_path.read_bytes() == before
    field.evaluate("el => el.scrollIntoView({block: 'center', behavior: 'instant'})")
    shot(page, "12-config-error", full_page=False)

    # --- a valid value is saved; the user's other settings stay as written; the old file is a backup
    field.fill("3")
    page.click("#config-save")
    expect(page.locator("#config-saved")).to_be_visible()
    expect(field).not_to_have_class(re.compile(r"\bis-invalid\b"))
    saved = yaml.safe_load(daemon.config_path.read_text())
    old = yaml.safe_load(before)
    assert saved["downloads"]["max_concurrent"] == 3
    assert saved["data_dir"] == old["data_dir"] and saved["provider"] == old["provider"]
    assert saved["mqtt"] == {"password": MQTT_SECRET}  # the placeholder sent back kept the secret
    backups = page.locator("#config-backups [data-backup]")
    expect(backups).to_have_count(1)
    shot(page, "13-config-saved")

    # --- restore that backup (confirmed in a dialog): the file is the original one again
    backups.first.get_by_role("button").click()
    expect(page.locator("#confirm-modal")).to_be_visible()
    page.click("#confirm-ok")
    expect(field).to_have_value(shown_before)
    assert yaml.safe_load(daemon.config_path.read_text()) == old

    # --- download settings apply at once; others say they wait for a restart, and which
    saved_note = page.locator("#config-saved")

    def save_and_expect(text: str) -> None:
        page.click("#config-save")
        # the note of the previous save is emptied at once, so this waits for the new answer
        expect(saved_note).to_be_visible()
        expect(saved_note).to_contain_text(text)
        expect(page.locator("#config-fields")).to_be_enabled()

    field.fill("3")
    save_and_expect("Saved and applied")
    page.locator("#config-advanced > summary").click()  # provider settings are under "Advanced"
    timeout = page.locator("#cfg-provider-timeout")
    first = timeout.input_value()
    timeout.fill("42")
    save_and_expect("Restart the daemon to apply: provider.timeout.")
    assert yaml.safe_load(daemon.config_path.read_text())["provider"]["timeout"] in (42, "42")
    timeout.fill(first)  # back to what the daemon runs with: nothing waits any more
    field.fill(shown_before)
    save_and_expect("Saved and applied")


def test_add_by_link_queue_controls_priority_remove_and_scan(
    page: object, daemon: DaemonProcess, site: FakeSiteThread
) -> None:
    token = daemon.ensure_login(PASSWORD)
    remember_login(page.context, token)

    # --- add by pasting a link: a movie-only series (season 0 is shown as "Movies")
    page.goto(daemon.url + "/#/search")
    page.fill("#add-link", f"{site.origin}/anime/stream/die-legende-der-prinzessin-kaguya")
    page.press("#add-link", "Enter")
    expect(page).to_have_url(re.compile(r"#/series/die-legende-der-prinzessin-kaguya$"), timeout=30_000)
    movies = page.locator(".season-card[data-season='0']")
    expect(movies.locator("h2")).to_contain_text("Movies")
    expect(movies.locator("tbody tr[data-status=missing]")).to_have_count(1)

    # --- queue controls: pause / resume / stop / start, each reflected in the page
    page.click("[data-nav=queue]")
    state = page.locator("#queue-state")
    for action, shown in (
        ("pause", "Paused"),
        ("resume", "Running"),
        ("stop", "Stopped"),
        ("start", "Running"),
        ("pause", "Paused"),
    ):
        page.click(f"[data-queue-action={action}]")
        expect(state).to_have_text(shown)
    expect(page.locator("[data-queue-action=resume]")).to_be_enabled()
    expect(page.locator("[data-queue-action=pause]")).to_be_disabled()

    # --- queue the movie with high priority while paused: it waits, shows its priority, can be removed
    page.go_back()  # the series page
    page.select_option("#series-priority", "high")
    page.click("[data-download-season='0']")
    expect(movies.locator("tbody tr[data-status=queued]")).to_have_count(1)
    expect(movies.locator("h2")).to_be_focused()  # keyboard users stay in the card they acted on
    page.click("[data-nav=queue]")
    waiting = page.locator("#queue-pending .queue-item")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("high priority")
    expect(waiting).to_contain_text("Movie 1")
    shot(page, "14-queue-paused-priority")
    priority = waiting.get_by_role("combobox", name=re.compile("^Priority of"))
    expect(priority).to_have_value("high")
    priority.focus()
    priority.select_option("low")  # still paused: the item waits, its badge follows the change
    expect(waiting).to_contain_text("low priority")
    expect(page.locator("#toasts")).to_contain_text("set to low")
    expect(priority).to_have_value("low")
    expect(priority).to_be_focused()  # keyboard users keep their place after the re-render
    waiting.get_by_role("button", name=re.compile("^Remove")).click()
    expect(waiting).to_have_count(0)
    expect(page.locator("#queue-title")).to_be_focused()  # the emptied list is hidden with its heading
    expect(page.locator("#queue-pending-section")).to_be_hidden()
    page.click("[data-queue-action=resume]")
    expect(state).to_have_text("Running")

    # --- scan: live progress over the scan_progress room ends with the summary
    page.click("#scan-btn")
    expect(page.locator("#toasts")).to_contain_text("Scan finished", timeout=30_000)
    expect(page.locator("#scan-btn")).to_be_enabled()


def test_toasts_monitor_refresh_and_match_unmatched(
    page: object, daemon: DaemonProcess, site: FakeSiteThread
) -> None:
    token = daemon.ensure_login(PASSWORD)
    remember_login(page.context, token)
    status, added = daemon.request(
        "POST", "/api/anime/add", {"link": f"{site.origin}/anime/stream/{REFRESH_KEY}"}, token=token
    )
    assert status == 200, added
    stray = daemon.library / "Meine Serie (2019)"  # a folder the scanner cannot place: no marker
    stray.mkdir(parents=True)

    page.goto(daemon.url + f"/#/series/{REFRESH_KEY}")
    rows = page.locator(".episode-table tbody tr")
    expect(rows).to_have_count(2)

    # --- toasts: at most three; a notice gives way before an error; the same text is not stacked;
    #     errors close with their button, notices go by themselves
    toasts = page.locator("#toasts .toast")
    page.evaluate("""() => { App.toast("Boom", "danger");
                             for (const m of ["a", "b", "c", "a", "a"]) App.toast(m, "success"); }""")
    expect(toasts).to_have_text(["Boom", "c", "a"])
    toasts.first.get_by_role("button", name="Close").click()
    expect(toasts).to_have_text(["c", "a"])
    expect(toasts).to_have_count(0, timeout=10_000)

    # --- monitoring: on by default; the switch turns it off and on, the server agrees each time
    switch = page.locator("#series-monitored")
    expect(switch).to_be_checked()
    for wanted, notice in ((False, "Stopped monitoring"), (True, "Monitoring")):
        switch.click()
        expect(page.locator("#toasts")).to_contain_text(notice)
        expect(switch).to_be_enabled()
        expect(switch).to_be_checked(checked=wanted)
        assert daemon.request("GET", f"/api/anime/{REFRESH_KEY}", token=token)[1]["monitored"] is wanted
    # the second notice replaced the first (one toast per switch), it did not stack
    expect(toasts).to_have_text([re.compile(rf"^Monitoring {REFRESH_TITLE}")])

    # --- refresh from the provider: the site lists episode 3 now; the toast counts it, the table shows it
    series = site.state.catalog.get(ANIWORLD, REFRESH_KEY)
    series.seasons[1].append(
        make_series(
            ANIWORLD, REFRESH_KEY, REFRESH_TITLE, {1: 3}, languages=[GER_SUB], hosters=["Vidoza"]
        ).seasons[1][2]
    )
    page.click("#series-refresh")
    expect(page.locator("#toasts")).to_contain_text(f"{REFRESH_TITLE}: 1 new episode (S01E03)")
    expect(rows).to_have_count(3)
    expect(page.locator(".episode-table tbody tr[data-episode='3'][data-status=missing]")).to_have_count(1)
    expect(page.locator("#series-refresh")).to_be_enabled()
    shot(page, "15-series-refreshed")

    # --- the library lists the folder without a marker, with a form to match it
    page.click("[data-nav=library]")
    page.wait_for_selector("html[data-ready=library]")
    item = page.locator(".unmatched-item[data-folder='Meine Serie (2019)']")
    expect(item).to_be_visible()
    expect(page.locator("#unmatched-count")).to_have_text("1")
    ref = item.locator("input[name=ref]")
    match = item.get_by_role("button", name="Match Meine Serie (2019)")
    feedback = item.locator(".invalid-feedback")
    # not a link or key: said next to the field, nothing sent
    ref.fill("Meine Serie")
    match.click()
    expect(ref).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(feedback).to_contain_text("Not a provider link or series key")
    # the server refuses a key that already owns a folder: its message next to the field, nothing written
    ref.fill(REFRESH_KEY)
    expect(ref).not_to_have_class(re.compile(r"\bis-invalid\b"))
    match.click()
    expect(feedback).to_contain_text("already has the folder")
    expect(ref).to_be_focused()
    assert not (stray / ".aniworld.json").exists()
    shot(page, "16-library-unmatched")
    # a s.to link: the site comes from the link
    ref.fill(f"{site.origin}/serie/stream/the-office-us")
    expect(item.locator("select[name=site]")).to_have_value("sto")
    match.click()
    expect(page.locator("#toasts")).to_contain_text("Matched Meine Serie (2019)")
    expect(page.locator("#unmatched")).to_be_hidden()
    marker = json.loads((stray / ".aniworld.json").read_text(encoding="utf-8"))
    assert (marker["key"], marker["site"]) == ("the-office-us", "sto")
    expect(page.locator(".series-row[data-key=the-office-us]")).to_be_visible()
    assert daemon.request("GET", "/api/library/unmatched", token=token)[1] == []


def test_system_page_shows_a_failing_hoster(
    page: object, daemon: DaemonProcess, site: FakeSiteThread
) -> None:
    """A hoster that fails shows in the hoster health table: state, tries, 24 h rate and its last error."""
    token = daemon.ensure_login(PASSWORD)
    remember_login(page.context, token)
    site.state.down_hosters.add("streamtape")
    item_id = None
    try:
        status, added = daemon.request(
            "POST", "/api/anime/add", {"link": f"{site.origin}/anime/stream/{HEALTH_KEY}"}, token=token
        )
        assert status == 200, added
        request = {
            "serie_id": HEALTH_KEY,
            "serie_folder": "",
            "serie_name": HEALTH_TITLE,
            "episodes": [{"season": 1, "episode": 1}],
            "priority": "high",
        }
        status, queued = daemon.request("POST", "/api/queue/add", request, token=token)
        assert status == 201, queued
        [item_id] = queued["added_items"]
        daemon.request("POST", "/api/queue/start", {}, token=token)
        health: dict = {}
        for _ in range(300):
            health = daemon.request("GET", "/api/system/status", token=token)[1]["hosters"]
            if health.get("Streamtape", {}).get("attempts"):
                break
            time.sleep(0.1)
        streamtape = health["Streamtape"]
        assert streamtape["successes"] == 0 and streamtape["last_error"], health

        page.goto(daemon.url + "/#/system")
        page.wait_for_selector("html[data-ready=system]")
        expect(page.locator("#system-summary")).to_contain_text("aniworldd")
        row = page.locator("#hoster-health tbody tr[data-hoster=Streamtape]")
        expect(row).to_be_visible()
        expect(row).to_have_attribute("data-state", re.compile(r"^(failing|cooling_down)$"))
        expect(row.locator("td").nth(0)).to_contain_text(re.compile("Failing|Cooling down"))
        expect(row.locator("td").nth(3)).to_have_text("0 %")  # success rate over the last 24 h
        expect(row.locator("td").nth(4)).to_contain_text(streamtape["last_error"])
        # configured hosters are listed too, in the configured order (here: Vidoza only, first)
        expect(page.locator("#hoster-health tbody tr").first).to_have_attribute("data-hoster", "Vidoza")
        shot(page, "20-system-hoster-health")
    finally:
        site.state.down_hosters.discard("streamtape")
        if item_id is not None:
            daemon.request("DELETE", f"/api/queue/{item_id}", token=token)


def test_queue_page_with_a_big_queue_says_how_many_more(page: object, daemon: DaemonProcess) -> None:
    """Issue 16 item 11: the status carries the first 50 pending items and `pending_queue_total`; the page
    lists those, says "… and N more" for the rest, counts them all, and follows changes over the socket."""
    token = daemon.ensure_login(PASSWORD)
    remember_login(page.context, token)
    before = daemon.request("GET", "/api/queue/status", token=token)[1]
    daemon.request("POST", "/api/queue/stop", {}, token=token)  # nothing may start on the rows below
    db = sqlite3.connect(daemon.data_dir / "aniworldd.db", timeout=30)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    extra = 130
    try:
        with db:
            series = db.execute(
                "INSERT INTO anime_series (key, name, site, alt_titles, genres, monitored, matched,"
                " created_at, updated_at)"
                " VALUES ('big-queue-show', 'Big Queue Show', 'aniworld', '[]', '[]', 0, 1, ?, ?)",
                (now, now),
            ).lastrowid
            db.executemany(
                "INSERT INTO download_queue_item (series, season, episode, status, priority, priority_rank,"
                " progress, downloaded_bytes, attempts, created_at, updated_at)"
                " VALUES (?, 1, ?, 'pending', 'low', 2, 0, 0, 0, ?, ?)",
                [(series, n, now, now) for n in range(1, extra + 1)],
            )
        daemon.request("POST", "/api/queue/stop", {}, token=token)  # a change: the cached status is dropped
        pending = before["statistics"]["pending"] + extra
        page.goto(daemon.url + "/#/queue")
        page.wait_for_selector("html[data-ready=queue]")
        rows = page.locator("#queue-pending .queue-item")
        more = page.locator("#queue-pending .queue-more")
        expect(rows).to_have_count(50)
        expect(more).to_have_text(f"… and {pending - 50} more")
        expect(page.locator("#queue-stats")).to_contain_text(f"Waiting{pending}")
        shot(page, "21-queue-big")
        # a change arrives over the socket as a bounded queue_status; the page follows it
        first = rows.first.get_attribute("data-item-id")
        assert daemon.request("DELETE", f"/api/queue/{first}", token=token)[0] == 200
        expect(more).to_have_text(f"… and {pending - 51} more")
        expect(rows).to_have_count(50)
    finally:
        with db:
            db.execute(
                "DELETE FROM download_queue_item WHERE series IN"
                " (SELECT id FROM anime_series WHERE key = 'big-queue-show')"
            )
            db.execute("DELETE FROM anime_series WHERE key = 'big-queue-show'")
        db.close()
        if before.get("is_running"):
            daemon.request("POST", "/api/queue/start", {}, token=token)
            if before.get("is_paused"):
                daemon.request("POST", "/api/queue/pause", {}, token=token)
        else:
            daemon.request("POST", "/api/queue/stop", {}, token=token)  # a change: caches forget the rows
