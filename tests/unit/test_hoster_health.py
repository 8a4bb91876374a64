"""HosterHealth: counters, the 24 h window, cool-down and its reason, adaptive order, the JSON file, events,
and the /metrics families built from its snapshot. A settable clock stands in for time passing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from aniworldd.metrics import Metrics
from aniworldd.providers.base import HosterLink
from aniworldd.providers.sources import order_links
from aniworldd.services.hoster_health import HOSTER_HEALTH, HosterHealth

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make(tmp_path, clock=None, events=None, n=3, cooldown=1800.0) -> HosterHealth:
    return HosterHealth(
        tmp_path / "hoster_health.json",
        failures_before_cooldown=n,
        cooldown_s=cooldown,
        hosters=["VOE", "Vidoza"],
        publish=(lambda kind, data: events.append((kind, data))) if events is not None else None,
        clock=clock or Clock(),
    )


def test_counts_last_error_and_rate(tmp_path) -> None:
    clock = Clock()
    h = make(tmp_path, clock)
    h.record_success("VOE")
    clock.now += 60
    h.record_failure("voe", "HTTP 503")  # the page's spelling does not split the record
    clock.now += 60
    h.record_success("VOE")
    h.record_failure("VOE", "no media URL")
    snap = h.snapshot()
    voe = snap["VOE"]
    assert (voe["attempts"], voe["successes"], voe["failures_in_a_row"]) == (4, 2, 1)
    assert voe["last_error"] == "no media URL"
    assert voe["last_error_at"] == utc_iso(T0 + 120)
    assert voe["last_success_at"] == utc_iso(T0 + 120)
    assert voe["success_rate_24h"] == 0.5 and voe["attempts_24h"] == 4
    assert voe["state"] == "failing" and voe["cooling_down_until"] is None
    # Configured hosters are listed even before their first try, in the configured order.
    assert list(snap) == ["VOE", "Vidoza"]
    assert snap["Vidoza"]["attempts"] == 0 and snap["Vidoza"]["success_rate_24h"] is None
    assert snap["Vidoza"]["state"] == "unknown"


def test_rate_covers_only_the_last_24_hours(tmp_path) -> None:
    clock = Clock()
    h = make(tmp_path, clock)
    for _ in range(3):
        h.record_failure("VOE", "down")
    clock.now += 25 * 3600
    h.record_success("VOE")
    voe = h.snapshot()["VOE"]
    assert voe["success_rate_24h"] == 1.0 and voe["attempts_24h"] == 1
    assert voe["attempts"] == 4  # all-time counters keep everything


def test_cooldown_after_n_failures_in_a_row_with_reason(tmp_path) -> None:
    clock = Clock()
    h = make(tmp_path, clock, n=3, cooldown=1800)
    h.record_failure("Vidoza", "a")
    h.record_failure("Vidoza", "b")
    assert h.cooling_down("Vidoza") is None
    h.record_failure("Vidoza", "c")
    until = datetime.fromtimestamp(T0 + 1800).strftime("%H:%M")
    assert h.cooling_down("Vidoza") == f"Vidoza skipped: cooling down after 3 failures until {until}"
    assert h.cooldown_ends("Vidoza") == T0 + 1800
    assert h.snapshot()["Vidoza"]["state"] == "cooling_down"
    assert h.snapshot()["Vidoza"]["cooling_down_until"] is not None
    clock.now += 1801
    assert h.cooling_down("Vidoza") is None and h.snapshot()["Vidoza"]["state"] == "failing"
    h.record_success("Vidoza")
    assert h.snapshot()["Vidoza"]["failures_in_a_row"] == 0
    assert h.snapshot()["Vidoza"]["state"] == "ok"


def test_zero_means_never_cool_down(tmp_path) -> None:
    h = make(tmp_path, n=0)
    for _ in range(10):
        h.record_failure("VOE", "down")
    assert h.cooling_down("VOE") is None


def test_state_changes_are_published_once(tmp_path) -> None:
    events: list = []
    h = make(tmp_path, events=events, n=2)
    h.record_success("VOE")
    h.record_success("VOE")
    h.record_failure("VOE", "x")
    h.record_failure("VOE", "y")
    h.record_failure("VOE", "z")
    states = [(kind, data["hoster"], data["state"]) for kind, data in events]
    assert states == [
        (HOSTER_HEALTH, "VOE", "ok"),
        (HOSTER_HEALTH, "VOE", "failing"),
        (HOSTER_HEALTH, "VOE", "cooling_down"),
    ]


def test_persisted_across_restarts_and_broken_file_starts_fresh(tmp_path) -> None:
    clock = Clock()
    h = make(tmp_path, clock)
    h.record_failure("Vidoza", "HTTP 503")
    h.record_success("VOE")
    h.save()
    again = make(tmp_path, clock)
    assert again.snapshot() == h.snapshot()
    (tmp_path / "hoster_health.json").write_text("{not json")
    fresh = make(tmp_path, clock)
    assert fresh.snapshot()["Vidoza"]["attempts"] == 0
    (tmp_path / "hoster_health.json").write_text(json.dumps({"hosters": {"VOE": {"attempts": "x"}}}))
    assert make(tmp_path, clock).snapshot()["VOE"]["attempts"] == 0


def link(hoster: str, language: str = "ger-dub") -> HosterLink:
    return HosterLink(hoster=hoster, language=language, redirect_url=f"/redirect/{hoster}-{language}")


def test_adaptive_order_puts_recent_failures_last_but_keeps_language_first(tmp_path) -> None:
    h = make(tmp_path)
    links = [link("Vidoza"), link("VOE"), link("Streamtape"), link("Vidoza", "ger-sub")]
    pref = ["Vidoza", "VOE", "Streamtape"]
    fixed, _ = order_links(links, ["ger-dub", "ger-sub"], pref)
    assert [(x.hoster, x.language) for x in fixed] == [
        ("Vidoza", "ger-dub"), ("VOE", "ger-dub"), ("Streamtape", "ger-dub"), ("Vidoza", "ger-sub"),
    ]  # fmt: skip
    h.record_failure("Vidoza", "down")
    h.record_success("Streamtape")
    adaptive, _ = order_links(links, ["ger-dub", "ger-sub"], pref, h.rank)
    assert [(x.hoster, x.language) for x in adaptive] == [
        ("Streamtape", "ger-dub"), ("VOE", "ger-dub"), ("Vidoza", "ger-dub"), ("Vidoza", "ger-sub"),
    ]  # fmt: skip
    h.record_success("Vidoza")  # works again: back to its configured place among the working ones
    adaptive, _ = order_links(links, ["ger-dub", "ger-sub"], pref, h.rank)
    assert [x.hoster for x in adaptive][:3] == ["Vidoza", "Streamtape", "VOE"]


def test_metrics_families_from_the_snapshot(tmp_path) -> None:
    h = make(tmp_path, n=1)
    h.record_failure("Vidoza", 'HTTP 503 "down"')
    h.record_success("VOE")
    text = Metrics().render(uptime_s=1.0, hosters=h.snapshot())
    samples = {
        (s.name, s.labels.get("hoster")): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name.startswith("aniworldd_hoster_")
    }
    assert samples[("aniworldd_hoster_attempts_total", "Vidoza")] == 1
    assert samples[("aniworldd_hoster_successes_total", "Vidoza")] == 0
    assert samples[("aniworldd_hoster_failures_in_a_row", "Vidoza")] == 1
    assert samples[("aniworldd_hoster_success_rate_24h", "Vidoza")] == 0
    assert samples[("aniworldd_hoster_success_rate_24h", "VOE")] == 1
    assert samples[("aniworldd_hoster_cooling_down", "Vidoza")] == 1
    assert samples[("aniworldd_hoster_cooling_down", "VOE")] == 0
    assert samples[("aniworldd_hoster_last_error_timestamp_seconds", "Vidoza")] > 0
    assert ("aniworldd_hoster_last_error_timestamp_seconds", "VOE") not in samples
