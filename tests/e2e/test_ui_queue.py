"""Queue page and download notices in real Chromium (phone size, 390x844), against a real daemon that watches
its library (so every finished download is followed by a partial rescan) and the fake site.

- Downloading several episodes of one series gives ONE toast ("Downloaded 6 episodes of …"), and the
  partial rescans after each download give none; a scan the user starts gives one "Scan finished" with
  the right counts. Toasts leave the queue's buttons uncovered.
- Completed downloads are one line each, with the episode title, in a section that starts collapsed when
  long; empty lists are hidden; a running download shows its speed and time left.
- The confirm dialog takes an OK clicked while it still fades in (the restore flake of test_ui.py).
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.harness import ARTIFACTS, CHROMIUM_ARGS, DaemonProcess, FakeSiteThread, remember_login, shot
from tests.fakesite.catalog import ANIWORLD, GER_SUB, make_series

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery queue"
KEY = "batch-no-folge"
TITLE = "Batch no Folge"
EPISODES = 6
SLOW_KEY = "yukkuri-no-folge"
SLOW_TITLE = "Yukkuri no Folge"
SLOW_BPS = 30_000  # the slow episode's media trickles, so its speed and time left can be read

# Every toast the page ever shows, kept after it hides: [tag, message] (a batch toast's last message).
RECORD_TOASTS = """() => {
  window.__toastEls = [];
  const box = document.getElementById("toasts");
  new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) => {
    if (n.classList && n.classList.contains("toast")) window.__toastEls.push(n);
  }))).observe(box, {childList: true});
  window.__toasts = () => window.__toastEls.map((el) => [el.dataset.tag || "", el.dataset.message || ""]);
  window.__scans = [];
  App.socket().on("scan_complete", (d) => window.__scans.push(d));
}"""

# Whether a visible toast overlaps a visible button of the queue page.
COVERED_BUTTONS = """() => {
  const toasts = [...document.querySelectorAll("#toasts .toast")].map((t) => t.getBoundingClientRect());
  const buttons = [...document.querySelectorAll("[data-view=queue] button, [data-view=queue] select")]
    .filter((b) => b.offsetParent !== null).map((b) => [b.textContent.trim(), b.getBoundingClientRect()]);
  const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  return buttons.filter(([, b]) => toasts.some((t) => hit(t, b))).map(([name]) => name);
}"""


@pytest.fixture(scope="module")
def site(chromium: str) -> Iterator[FakeSiteThread]:
    fake = FakeSiteThread()
    fake.state.catalog.add(
        make_series(ANIWORLD, KEY, TITLE, {1: EPISODES}, languages=[GER_SUB], hosters=["Vidoza"])
    )
    slow = make_series(ANIWORLD, SLOW_KEY, SLOW_TITLE, {1: 1}, languages=[GER_SUB], hosters=["Vidoza"])
    slow.seasons[1][0].codes[(GER_SUB, "Vidoza")] = "yukkuri1-8s"  # an 8 s video (~0.5 MB)
    fake.state.catalog.add(slow)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def daemon(site: FakeSiteThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(
        tmp_path_factory.mktemp("ui-queue"),
        site.origin,
        "downloads:\n  language: [ger-sub]\n  hosters: [Vidoza]\n  min_free_gb: 0\n  max_concurrent: 2\n",
    )
    # The library is watched, as by default: each finished download is followed by a partial rescan.
    proc.config_path.write_text(proc.config_path.read_text().replace("watch: false", "watch: true"))
    proc.start()
    yield proc
    proc.stop()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(proc.log_path, ARTIFACTS / "e2e-queue-daemon.log")


@pytest.fixture(scope="module")
def token(daemon: DaemonProcess) -> str:
    return daemon.ensure_login(PASSWORD)


@pytest.fixture(scope="module")
def page(chromium: str, daemon: DaemonProcess, token: str) -> Iterator[object]:
    """One phone-sized page for the module; uncaught script errors fail the test that caused them."""
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        context.set_default_timeout(15_000)
        remember_login(context, token)
        pg = context.new_page()
        pg.errors = []
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        pg.goto(daemon.url + "/#/queue")
        pg.wait_for_selector("html[data-ready=queue]")
        pg.evaluate(RECORD_TOASTS)
        yield pg
        browser.close()


def add_and_queue(daemon: DaemonProcess, site: FakeSiteThread, token: str, key: str, episodes: int) -> None:
    status, added = daemon.request(
        "POST", "/api/anime/add", {"link": f"{site.origin}/anime/stream/{key}"}, token=token
    )
    assert status == 200, added
    request = {"serie_id": key, "episodes": [{"season": 1, "episode": n} for n in range(1, episodes + 1)]}
    status, queued = daemon.request("POST", "/api/queue/add", request, token=token)
    assert status == 201, queued


def test_one_toast_per_series_batch_and_compact_completed_rows(
    page: object, daemon: DaemonProcess, site: FakeSiteThread, token: str
) -> None:
    expect(page.locator("#queue-empty")).to_be_visible()  # nothing queued: one line, no empty boxes
    for section in ("active", "pending", "failed", "completed"):
        expect(page.locator(f"#queue-{section}-section")).to_be_hidden()

    add_and_queue(daemon, site, token, KEY, EPISODES)
    batch = page.locator(f"#toasts .toast[data-downloaded={KEY}]")
    expect(batch).to_have_text(f"Downloaded {EPISODES} episodes of {TITLE}.", timeout=120_000)
    batch.hover()  # holds the toast while it is checked
    assert page.evaluate(COVERED_BUTTONS) == []
    shot(page, "queue-batch-toast-phone", full_page=False)
    page.mouse.move(200, 100)  # and lets it go

    # the watcher rescanned the series after the downloads (partial scans), and none said so in a toast
    page.wait_for_function("() => window.__scans.some((s) => s.scope === 'partial' && !s.requested)")
    toasts = page.evaluate("window.__toasts()")
    assert [t for t in toasts if t[0] == f"downloaded:{KEY}"] == [
        [f"downloaded:{KEY}", f"Downloaded {EPISODES} episodes of {TITLE}."]
    ], toasts
    assert not [t for t in toasts if "Scan" in t[1]], toasts

    # completed: a long list starts collapsed (on the next visit: it never folds away under the reader);
    # opened, each row is one line with the episode's title
    completed = page.locator("#queue-completed .queue-item")
    expect(completed).to_have_count(EPISODES)
    page.reload()
    page.wait_for_selector("html[data-ready=queue]")
    page.evaluate(RECORD_TOASTS)
    toggle = page.locator("#queue-completed-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_contain_text(str(EPISODES))
    expect(page.locator("#queue-completed")).to_be_hidden()
    toggle.click()
    expect(page.locator("#queue-completed")).to_be_visible()
    expect(completed.first).to_contain_text(re.compile(rf"{TITLE} · S01E0\d · \S"))
    line = page.evaluate("""() => { const el = document.querySelector("#queue-completed .queue-item");
        return [el.getBoundingClientRect().height, parseFloat(getComputedStyle(el).lineHeight) || 24]; }""")
    assert line[0] < 2 * max(line[1], 31), f"a completed row is taller than one line: {line}"
    for section in ("active", "pending", "failed"):
        expect(page.locator(f"#queue-{section}-section")).to_be_hidden()
    expect(page.locator("#queue-empty")).to_be_hidden()
    shot(page, "queue-completed-compact-phone", full_page=False)

    # a scan the user starts ends with one summary toast, with the right counts
    page.click(".navbar-toggler")
    page.wait_for_selector("#nav-menu.show:not(.collapsing)")
    page.click("#scan-btn")
    summary = page.locator("#toasts .toast", has_text="Scan finished")
    expect(summary).to_have_text(f"Scan finished: 1 series, {EPISODES} episodes, 0 missing.", timeout=30_000)
    assert len([t for t in page.evaluate("window.__toasts()") if "Scan finished" in t[1]]) == 1
    page.click(".navbar-toggler")
    page.wait_for_selector("#nav-menu:not(.show):not(.collapsing)", state="attached")
    # the page keeps room below its end for the toasts: at the end no button is under one
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    assert page.evaluate(COVERED_BUTTONS) == []
    assert page.errors == []


def test_a_running_download_shows_speed_and_time_left(
    page: object, daemon: DaemonProcess, site: FakeSiteThread, token: str
) -> None:
    site.state.media_rate_bps = SLOW_BPS
    try:
        add_and_queue(daemon, site, token, SLOW_KEY, 1)
        text = page.locator("#queue-active .queue-item .progress-text")
        expect(text).to_contain_text(re.compile(r"\d+ %.*\d+(\.\d)? [KM]B/s.*ETA \d+:\d\d"), timeout=60_000)
        expect(page.locator("#queue-active .queue-item")).to_contain_text(f"{SLOW_TITLE} · S01E01 · ")
        expect(page.locator("#queue-stats [data-stat=speed]")).to_have_text(re.compile(r"[KM]B/s$"))
        expect(page.locator("#queue-pending-section")).to_be_hidden()
        expect(page.locator("#queue-failed-section")).to_be_hidden()
        shot(page, "queue-active-speed-eta-phone", full_page=False)
    finally:
        site.state.media_rate_bps = None
    expect(page.locator("#queue-active-section")).to_be_hidden(timeout=60_000)
    assert page.errors == []


def test_confirm_dialog_takes_an_ok_clicked_while_it_opens(page: object, daemon: DaemonProcess) -> None:
    """Bootstrap ignores hide() during the fade-in: an early OK used to leave the dialog open and the backup
    unrestored (test_ui.py's restore then still showed the saved value, about 1 run in 4)."""
    page.goto(daemon.url + "/#/config")
    field = page.locator("#cfg-downloads-max_concurrent")
    expect(field).to_have_value("2")
    field.fill("3")
    page.click("#config-save")
    expect(page.locator("#config-saved")).to_contain_text("Saved")
    backups = page.locator("#config-backups [data-backup]")
    expect(backups).to_have_count(1)
    # OK is clicked the moment the dialog is displayed, while it still fades in
    page.evaluate("""() => { const m = document.getElementById("confirm-modal");
        new MutationObserver((_, obs) => { if (m.style.display === "block") { obs.disconnect();
          document.getElementById("confirm-ok").click(); } }).observe(m, {attributes: true}); }""")
    backups.first.get_by_role("button").click()
    expect(field).to_have_value("2")
    expect(page.locator("#confirm-modal")).to_be_hidden()
    assert "max_concurrent: 2" in daemon.config_path.read_text()
    assert page.errors == []
