"""The series page in real headless Chromium (issue 17 item 5), against a real daemon and the fake site.

One daemon and one page for the module: the language choice reaches the queue items, a season whose
missing episodes are all queued says so (not "Complete"), every season table has the same column grid,
and "Remove series" asks first (with "Also delete the files") and then goes back to the library.
The queue is not started (autostart off), so queued items stay queued while the test looks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    CHROMIUM_ARGS,
    REPO,
    DaemonProcess,
    FakeSiteThread,
    remember_login,
    shot,
)
from tests.fakesite.catalog import ANIWORLD, ENG_SUB, GER_SUB, make_series

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery series"
KEY = "raihen-no-sekai"
TITLE = "Raihen no Sekai"


@pytest.fixture(scope="module")
def site(chromium: str) -> Iterator[FakeSiteThread]:
    fake = FakeSiteThread()
    series = make_series(ANIWORLD, KEY, TITLE, {1: 2, 2: 2}, languages=[GER_SUB, ENG_SUB], start_year=2025)
    for ep in series.seasons[2]:  # season 2: German sub only, and long titles (columns must not move)
        ep.links = {GER_SUB: ["VOE", "Vidoza"]}
        ep.title_de = f"Eine sehr lange Episodenüberschrift, die in der Tabelle umbrechen muss {ep.number}"
    fake.state.catalog.add(series)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def daemon(site: FakeSiteThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(
        tmp_path_factory.mktemp("ui-series"),
        site.origin,
        "downloads:\n  autostart: false\n  language: [ger-sub, eng-sub]\n  min_free_gb: 0\n",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def token(daemon: DaemonProcess) -> str:
    return daemon.ensure_login(PASSWORD)


@pytest.fixture(scope="module")
def page(chromium: str, daemon: DaemonProcess, token: str) -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
        context.set_default_timeout(15_000)
        remember_login(context, token)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        browser.close()
        assert errors == []


def queue_items(daemon: DaemonProcess, token: str) -> list[dict]:
    status, data = daemon.request("GET", "/api/queue/status", token=token)
    assert status == 200, data
    return data["pending_queue"] + data["active_downloads"]


def test_series_page_language_wording_grid_and_remove(
    page: object, daemon: DaemonProcess, site: FakeSiteThread, token: str
) -> None:
    status, added = daemon.request(
        "POST", "/api/anime/add", {"link": f"{site.origin}/anime/stream/{KEY}"}, token=token
    )
    assert status == 200, added
    folder = Path(daemon.library) / added["folder"]
    assert folder.is_dir()

    page.goto(f"{daemon.url}/#/series/{KEY}")
    expect(page.locator("#series-title")).to_have_text(TITLE)
    season1 = page.locator(".season-card[data-season='1']")
    season2 = page.locator(".season-card[data-season='2']")

    # The language select: the preference as the default, then what the series offers.
    language = page.locator("#series-language")
    expect(language.locator("option")).to_have_count(3)
    expect(language).to_have_value("")
    expect(language.locator("option").first).to_contain_text("preferred (DE sub")
    language.select_option(ENG_SUB)
    season1.get_by_role("button", name="Download the missing episodes of Season 1").click()
    expect(page.locator(".toast", has_text="in English sub")).to_be_visible()
    queued = queue_items(daemon, token)
    assert sorted((i["season"], i["episode"], i["language"]) for i in queued) == [
        (1, 1, ENG_SUB),
        (1, 2, ENG_SUB),
    ]

    # Every missing episode of season 1 is queued: that is what the season says, not "Complete".
    button1 = season1.locator("[data-download-season]")
    expect(button1).to_have_text("All missing episodes queued")
    expect(button1).to_be_disabled()
    expect(season1.locator("tr[data-status='queued']")).to_have_count(2)
    expect(page.locator("#series-download-all")).to_have_text("Download all missing (2)")
    expect(language).to_have_value(ENG_SUB)  # the choice survives the re-render

    # Season 2 is not offered in English sub: nothing is queued, the user is told.
    season2.locator("[data-download-season]").click()
    expect(page.locator(".toast", has_text="Not offered in English sub")).to_be_visible()
    assert len(queue_items(daemon, token)) == 2
    language.select_option("")
    season2.locator("[data-download-season]").click()
    expect(season2.locator("[data-download-season]")).to_have_text("All missing episodes queued")
    expect(page.locator("#series-download-all")).to_have_text("All missing episodes queued")
    assert {(i["season"], i["language"]) for i in queue_items(daemon, token)} == {
        (1, ENG_SUB),
        (2, None),
    }

    # One column grid: every season table has the same column edges.
    def edges(card: object) -> list[tuple[float, float]]:
        boxes = [th.bounding_box() for th in card.locator("thead th").all()]
        return [(round(b["x"]), round(b["width"])) for b in boxes]

    assert edges(season1) == edges(season2)
    shot(page, "series-queued-grid")

    # Remove, with the confirmation and "Also delete the files".
    page.locator("#series-remove").click()
    modal = page.locator("#confirm-modal")
    expect(modal).to_be_visible()
    expect(page.locator("#confirm-title")).to_have_text(f"Remove {TITLE}?")
    also = modal.get_by_label("Also delete the files")
    expect(also).not_to_be_checked()
    also.check()
    shot(page, "series-remove-confirm")
    modal.get_by_role("button", name="Remove series").click()
    expect(page).to_have_url(f"{daemon.url}/#/library")
    expect(page.locator(".toast", has_text=f"{TITLE} removed and its files deleted")).to_be_visible()
    shot(page, "series-removed-library")
    expect(page.locator(".toast", has_text="was removed from the library")).to_have_count(0)
    status, _ = daemon.request("GET", f"/api/anime/{KEY}", token=token)
    assert status == 404
    assert not folder.exists()
    assert queue_items(daemon, token) == []

    # Removed elsewhere (here: `aniworldd remove`) while this page shows it: back to the library.
    status, added = daemon.request(
        "POST", "/api/anime/add", {"link": f"{site.origin}/anime/stream/{KEY}"}, token=token
    )
    assert status == 200, added
    page.goto(f"{daemon.url}/#/series/{KEY}")
    expect(page.locator("#series-title")).to_have_text(TITLE)
    expect(page.locator("#ws-state")).to_contain_text("live")
    cli = subprocess.run(
        [sys.executable, "-m", "aniworldd", "remove", KEY, "--url", daemon.url, "--token", token, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")},
    )
    assert cli.returncode == 0, cli.stderr
    answer = json.loads(cli.stdout)
    assert answer["key"] == KEY and answer["files_kept"] is True and answer["files_deleted"] is False
    expect(page).to_have_url(f"{daemon.url}/#/library")
    expect(page.locator(".toast", has_text=f"{TITLE} was removed from the library")).to_be_visible()
