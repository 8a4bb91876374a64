"""The library page in real Chromium: every series as a poster card with "on disk / listed", missing and
queued counts; "Missing only" hides the complete one; the compact list view is remembered; a long title wraps
on a 390 px phone. One daemon and one browser for the module; screenshots in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from aniworldd.core.markers import write_marker
from aniworldd.db import Store
from tests.e2e.harness import CHROMIUM_ARGS, DaemonProcess, chromium_path, remember_login, shot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)
expect = playwright_api.expect

PASSWORD = "correct horse battery library"
COMPLETE = "complete-show"
GAPPY = "gappy-show"
LONG = "long-title-show"
LONG_TITLE = (
    "The Unbelievably Long-Winded Chronicles of Somebody Who Never Finishes a Sentence (Director's Cut)"
)


def seed(daemon: DaemonProcess) -> None:
    """Three series straight into the daemon's database (before it starts), one with a poster.jpg."""
    folder = daemon.library / "Complete Show (2020)"
    folder.mkdir(parents=True)
    write_marker(folder, COMPLETE, name="Complete Show")  # a matched folder (not listed as unmatched)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=teal:s=600x900"]
        + ["-frames:v", "1", str(folder / "poster.jpg")],
        check=True,
    )
    store = Store(None, daemon.data_dir)
    root = str(daemon.library)

    def fill() -> None:
        e = store.e
        done = e.AnimeSeries(key=COMPLETE, name="Complete Show", root=root, folder=folder.name)
        gappy = e.AnimeSeries(key=GAPPY, name="Gappy Show", folder="Gappy Show (2021)")
        long = e.AnimeSeries(key=LONG, name=LONG_TITLE)
        for n in (1, 2, 3):
            e.Episode(
                series=done, season=1, number=n, on_disk_path=f"{folder}/{n}.mp4", on_disk_language="ger-sub"
            )
            e.Episode(series=gappy, season=1, number=n, on_disk_path="/g/1.mp4" if n == 1 else None)
            e.Episode(series=long, season=1, number=n)

    async def run() -> None:
        try:
            await store.run(fill)
        finally:
            await asyncio.to_thread(store.close)

    asyncio.run(run())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[DaemonProcess, str, str]:
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("Debian chromium is needed")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed for the poster thumbnails")
    daemon = DaemonProcess(
        tmp_path_factory.mktemp("library"), "http://127.0.0.1:9", "downloads:\n  autostart: false\n"
    )
    seed(daemon)
    daemon.start()
    try:
        token = daemon.ensure_login(PASSWORD)  # before any queue item: those would make setup refuse
        episodes = [{"season": 1, "episode": 2}]
        body = {"serie_id": GAPPY, "serie_name": "Gappy Show", "episodes": episodes}
        assert daemon.request("POST", "/api/queue/add", body, token=token)[0] == 201
        yield daemon, token, chromium
    finally:
        daemon.stop()


def test_library_cards_filter_and_views(served: tuple[DaemonProcess, str, str]) -> None:
    daemon, token, chromium = served
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        remember_login(context, token)
        page = context.new_page()
        page.goto(daemon.url + "/#/library")
        page.wait_for_selector("html[data-ready=library]")

        # --- every series by default, the complete one too, with its poster and "3/3"
        done = page.locator(f".series-card[data-key={COMPLETE}]")
        gappy = page.locator(f".series-card[data-key={GAPPY}]")
        expect(page.locator(".series-card")).to_have_count(3)
        expect(done.locator(".series-counts")).to_have_text("3/3")
        expect(done.locator(".missing-badge")).to_have_text("complete")
        expect(done.locator(".lang-badge")).to_have_text("DE sub")
        expect(gappy.locator(".series-counts")).to_have_text("1/3")
        expect(gappy.locator(".missing-badge")).to_have_text("2 missing")
        expect(gappy.locator(".queued-badge")).to_have_text("1 queued")
        poster = done.locator("img.poster")
        expect(poster).to_have_attribute("loading", "lazy")
        src = poster.get_attribute("src")
        assert src.startswith(f"/api/anime/{COMPLETE}/poster?t=") and token not in src
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=poster.element_handle(), timeout=30_000
        )
        assert poster.evaluate("(img) => img.naturalWidth") == 240  # the thumbnail, not the 600 px original
        placeholder = gappy.locator("img.poster")
        page.wait_for_function("(img) => img.complete", arg=placeholder.element_handle(), timeout=30_000)
        assert placeholder.evaluate("(img) => img.naturalWidth") > 0  # the SVG placeholder rendered
        shot(page, "library-grid-1280")

        # --- "Missing only" hides the complete series; a filter matching nothing says so
        page.check("#library-missing")
        expect(done).to_have_count(0)
        expect(gappy).to_be_visible()
        expect(page.locator("#library-summary")).to_contain_text("2 of 3 series")
        page.fill("#library-q", "no such series")
        expect(page.locator("#library-empty")).to_have_text("No series match the filter.")
        page.fill("#library-q", "")
        page.uncheck("#library-missing")
        expect(done).to_be_visible()

        # --- the compact list: no posters, same counts; remembered across a reload
        page.click("label[for=library-view-list]")
        row = page.locator(f"#library-list.list-group .series-row[data-key={COMPLETE}]")
        expect(row.locator(".series-counts")).to_have_text("3/3")
        expect(page.locator("#library-list img")).to_have_count(0)
        page.reload()
        page.wait_for_selector("html[data-ready=library]")
        expect(page.locator("#library-view-list")).to_be_checked()
        expect(row).to_be_visible()
        shot(page, "library-list-1280")
        page.click("label[for=library-view-grid]")
        expect(done.locator("img.poster")).to_have_count(1)
        context.close()

        # --- a phone: two columns, the long title wraps instead of being cut off, no sideways scroll
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        remember_login(phone, token)
        ph = phone.new_page()
        ph.goto(daemon.url + "/#/library")
        ph.wait_for_selector("html[data-ready=library]")
        name = ph.locator(f".series-card[data-key={LONG}] .series-name")
        expect(name).to_have_text(LONG_TITLE)
        assert name.evaluate(
            "(el) => el.scrollWidth <= el.clientWidth && el.scrollHeight <= el.clientHeight + 1"
        )
        assert ph.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        columns = ph.evaluate(
            "getComputedStyle(document.querySelector('#library-list')).gridTemplateColumns.split(' ').length"
        )
        assert columns == 2
        shot(ph, "library-grid-390")
        phone.close()
        browser.close()


def test_poster_route_needs_a_credential(served: tuple[DaemonProcess, str, str]) -> None:
    """The image URL without its poster token is refused; the token from the API opens it (no browser)."""
    daemon, token, _ = served
    assert daemon.request("GET", f"/api/anime/{COMPLETE}/poster")[0] == 401
    status, issued = daemon.request("GET", "/api/library/poster-token", token=token)
    assert status == 200
    status, _ = daemon.request("GET", "/api/anime/no-such-show/poster?t=" + issued["token"])
    assert status == 404
