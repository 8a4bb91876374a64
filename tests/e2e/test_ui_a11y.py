"""Accessibility of every page of the web UI, checked by axe-core (vendored) in real Chromium, in light
and dark mode and at phone width: no violation of serious or critical impact.

axe-core's own rule set (WCAG 2.x A/AA plus best practices) decides; the test only drives the pages into
a state with real content (a series in the library, queue rows, a history entry) so the checked markup
is what a user sees, not empty shells.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import ARTIFACTS, CHROMIUM_ARGS, DaemonProcess, FakeSiteThread, remember_login

pytestmark = [pytest.mark.slow, pytest.mark.browser]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (Python package) not installed"
)

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core-4.14.1" / "axe.min.js"
PASSWORD = "correct horse battery a11y"
SERIES_KEY = "die-legende-der-prinzessin-kaguya"  # in the fake site's default catalog
#: Hash routes and the view each one shows (pages another module adds are checked once they exist).
ROUTES = [
    ("#/library", "library"),
    (f"#/series/{SERIES_KEY}", "series"),
    ("#/search", "search"),
    ("#/queue", "queue"),
    ("#/config", "config"),
    ("#/system", "system"),
    ("#/calendar", "calendar"),
    ("#/history", "history"),
    ("#/apikeys", "apikeys"),
]
BLOCKING = ("serious", "critical")


def run_axe(page) -> list[dict]:
    """axe's violations of serious/critical impact on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary)}));
        }"""
    )
    return [v for v in result if v["impact"] in BLOCKING]


def describe(found: dict[str, list[dict]]) -> str:
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']}")
            lines += [f"    {n}" for n in v["nodes"]]
    return "\n".join(lines)


def test_no_serious_or_critical_violation_on_any_page(chromium: str, tmp_path) -> None:
    site = FakeSiteThread().start()
    daemon = DaemonProcess(tmp_path, site.origin, "downloads:\n  autostart: false\n")
    daemon.start()
    found: dict[str, list[dict]] = {}
    checked: list[str] = []
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            # Before the first start's setup: the setup page.
            # The daemon's CSP forbids injected scripts, rightly; the test context lets axe in.
            page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
            page.goto(daemon.url + "/#/setup")
            page.wait_for_selector('[data-view="setup"]:not([hidden])')
            found["setup"] = run_axe(page)
            page.close()

            token = daemon.ensure_login(PASSWORD)
            status, added = daemon.request(
                "POST", "/api/anime/add", {"link": f"{site.origin}/anime/stream/{SERIES_KEY}"}, token=token
            )
            assert status == 200, added
            request = {
                "serie_id": SERIES_KEY,
                "serie_folder": "",
                "serie_name": "Kaguya",
                "episodes": [{"season": 0, "episode": 1}],
            }
            status, queued = daemon.request("POST", "/api/queue/add", request, token=token)
            assert status == 201, queued

            page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
            page.goto(daemon.url + "/#/login")
            page.wait_for_selector('[data-view="login"]:not([hidden])')
            found["login"] = run_axe(page)
            page.close()

            for scheme, viewport in (("light", (1280, 800)), ("dark", (1280, 800)), ("light", (390, 844))):
                context = browser.new_context(
                    viewport={"width": viewport[0], "height": viewport[1]},
                    color_scheme=scheme,
                    bypass_csp=True,
                )
                remember_login(context, token)
                page = context.new_page()
                page.goto(daemon.url + "/#/library")
                page.wait_for_selector('[data-view="library"]:not([hidden])')
                for route, view in ROUTES:
                    if not page.locator(f'[data-view="{view}"]').count():
                        continue  # a page this build does not have
                    page.goto(daemon.url + "/" + route)
                    page.wait_for_selector(f'[data-view="{view}"]:not([hidden])')
                    page.wait_for_load_state("networkidle")
                    where = f"{view} ({scheme}, {viewport[0]}px)"
                    found[where] = run_axe(page)
                    checked.append(where)
                page.goto(daemon.url + "/api/docs")
                page.wait_for_load_state("networkidle")
                found[f"api-docs ({scheme}, {viewport[0]}px)"] = run_axe(page)
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.goto(daemon.url + "/#/library")
                page.wait_for_selector('[data-view="library"]:not([hidden])')
                page.screenshot(path=str(ARTIFACTS / f"a11y-library-{scheme}-{viewport[0]}.png"))
                context.close()
            browser.close()
    finally:
        daemon.stop()
        site.stop()
    assert len(checked) >= 3 * 6  # library, series, search, queue, config, system at least, in each mode
    bad = {where: v for where, v in found.items() if v}
    assert not bad, "axe-core found serious/critical violations:\n" + describe(bad)
