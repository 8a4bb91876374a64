"""Metrics counted from real bus events, rendered text checked with prometheus_client's parser."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from aniworldd import events as ev
from aniworldd.events import EventBus
from aniworldd.metrics import SCAN_BUCKETS, Metrics

SAMPLE_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="(\\.|[^"\\])*",?)*\})? \S+$')


def parse(text: str) -> dict[str, dict[tuple, float]]:
    """{family name: {(sample name, sorted labels): value}} via the reference parser."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in out, f"duplicate family {family.name}"
        out[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return out


def assert_well_formed(text: str) -> None:
    """What the lenient parser lets through: HELP/TYPE before samples, one block per family, valid lines."""
    assert text.endswith("\n")
    typed: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            assert name not in typed
            typed.append(name)
        elif line.startswith("# HELP "):
            continue
        else:
            assert SAMPLE_RE.match(line), line
            sample = line.split("{")[0].split()[0]
            assert typed and sample.startswith(typed[-1].removesuffix("_total")), line


def _complete(bus: EventBus, size: int) -> None:
    bus.publish(
        ev.DOWNLOAD_COMPLETE,
        {
            "download_id": 1,
            "key": "k",
            "folder": "F",
            "season": 1,
            "episode": 1,
            "language": "ger-dub",
            "path": "/x",
            "size_bytes": size,
        },
    )


async def test_counts_downloads_failures_and_bytes() -> None:
    bus = EventBus()
    metrics = Metrics(bus)
    _complete(bus, 1000)
    _complete(bus, 2500)
    bus.publish(
        ev.DOWNLOAD_FAILED,
        {"download_id": 2, "key": "k", "reason": "hoster down", "attempts": 1, "will_retry": True},
    )
    bus.publish(
        ev.DOWNLOAD_FAILED,
        {"download_id": 2, "key": "k", "reason": "gone", "attempts": 4, "will_retry": False},
    )
    bus.publish(ev.DOWNLOAD_PROGRESS, {"download_id": 3, "percent": 50})  # not counted anywhere
    text = metrics.render(uptime_s=12.5)
    assert_well_formed(text)
    fams = parse(text)
    assert fams["aniworldd_downloads_completed"][("aniworldd_downloads_completed_total", ())] == 2
    assert fams["aniworldd_downloaded_bytes"][("aniworldd_downloaded_bytes_total", ())] == 3500
    failed = fams["aniworldd_downloads_failed"]
    assert failed[("aniworldd_downloads_failed_total", (("will_retry", "true"),))] == 1
    assert failed[("aniworldd_downloads_failed_total", (("will_retry", "false"),))] == 1
    assert fams["aniworldd_uptime_seconds"][("aniworldd_uptime_seconds", ())] == 12.5


async def test_queue_gauges_follow_queue_status_events() -> None:
    bus = EventBus()
    metrics = Metrics(bus)
    bus.publish(
        ev.QUEUE_STATUS,
        {
            "is_running": True,
            "is_paused": False,
            "active_downloads": [{}],
            "pending_queue": [{}, {}],
            "completed_downloads": [],
            "failed_downloads": [],
            "statistics": {"pending": 7, "active": 1, "completed": 120, "failed": 3, "speed_mbps": 4.25},
        },
    )
    fams = parse(metrics.render(uptime_s=1))
    queue = {dict(labels)["state"]: v for (_, labels), v in fams["aniworldd_queue_items"].items()}
    assert queue == {
        "pending": 7,
        "active": 1,
        "completed": 120,
        "failed": 3,
    }  # statistics win over list sizes
    assert fams["aniworldd_queue_running"][("aniworldd_queue_running", ())] == 1
    assert fams["aniworldd_download_speed_mbps"][("aniworldd_download_speed_mbps", ())] == 4.25
    # a later status without statistics falls back to the list lengths
    bus.publish(
        ev.QUEUE_STATUS,
        {
            "is_running": False,
            "is_paused": True,
            "active_downloads": [],
            "pending_queue": [{}, {}],
            "completed_downloads": [{}],
            "failed_downloads": [],
        },
    )
    fams = parse(metrics.render(uptime_s=1))
    queue = {dict(labels)["state"]: v for (_, labels), v in fams["aniworldd_queue_items"].items()}
    assert queue == {"pending": 2, "active": 0, "completed": 1, "failed": 0}
    assert fams["aniworldd_queue_paused"][("aniworldd_queue_paused", ())] == 1


async def test_scan_duration_histogram_and_library_totals() -> None:
    bus = EventBus()
    metrics = Metrics(bus)
    for duration in (0.2, 3.0, 45.0, 5000.0):
        bus.publish(
            ev.SCAN_COMPLETE,
            {"series": 40, "episodes": 900, "missing_episodes": 12, "unmatched": 2, "duration_s": duration},
        )
    bus.publish(ev.SCAN_FAILED, {"error": "root missing"})
    bus.publish(ev.NEW_EPISODES, {"key": "k", "folder": "F", "episodes": [{"season": 1, "episode": 2}] * 3})
    text = metrics.render(uptime_s=1, mqtt_connected=True)
    assert_well_formed(text)
    fams = parse(text)
    hist = fams["aniworldd_scan_duration_seconds"]
    buckets = sorted(
        ((float(dict(lab)["le"]), v) for (name, lab), v in hist.items() if name.endswith("_bucket")),
    )
    assert [le for le, _ in buckets] == [*SCAN_BUCKETS, float("inf")]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    assert dict(buckets)[0.5] == 1 and dict(buckets)[5] == 2 and dict(buckets)[60] == 3
    assert dict(buckets)[float("inf")] == 4 == hist[("aniworldd_scan_duration_seconds_count", ())]
    assert hist[("aniworldd_scan_duration_seconds_sum", ())] == 5048.2
    scans = fams["aniworldd_scans"]
    assert scans[("aniworldd_scans_total", (("result", "complete"),))] == 4
    assert scans[("aniworldd_scans_total", (("result", "failed"),))] == 1
    library = {dict(lab)["kind"]: v for (_, lab), v in fams["aniworldd_library"].items()}
    assert library == {"series": 40, "episodes": 900, "missing_episodes": 12, "unmatched": 2}
    assert fams["aniworldd_new_episodes"][("aniworldd_new_episodes_total", ())] == 3
    assert fams["aniworldd_mqtt_connected"][("aniworldd_mqtt_connected", ())] == 1


async def test_odd_payloads_never_break_the_bus() -> None:
    bus = EventBus()
    metrics = Metrics(bus)
    sub = bus.subscribe()
    bus.publish(ev.DOWNLOAD_COMPLETE, {"size_bytes": "many"})
    bus.publish(ev.SCAN_COMPLETE, {"duration_s": None, "series": [1, 2, 3]})
    bus.publish(ev.QUEUE_STATUS, {"statistics": "broken"})
    bus.publish(ev.NEW_EPISODES, {"episodes": None})
    assert [(await sub.get()).type for _ in range(4)]  # the other subscribers still get every event
    fams = parse(metrics.render(uptime_s=0))
    assert fams["aniworldd_downloads_completed"][("aniworldd_downloads_completed_total", ())] == 1
    assert fams["aniworldd_downloaded_bytes"][("aniworldd_downloaded_bytes_total", ())] == 0
    assert fams["aniworldd_scan_duration_seconds"][("aniworldd_scan_duration_seconds_count", ())] == 0
    assert {dict(lab)["kind"]: v for (_, lab), v in fams["aniworldd_library"].items()} == {"series": 3}


def test_label_values_are_escaped() -> None:
    import aniworldd.metrics as m

    original = m.__version__
    m.__version__ = 'weird "1.0"\\build\nline'
    try:
        text = Metrics().render(uptime_s=0)
    finally:
        m.__version__ = original
    assert_well_formed(text)
    fams = parse(text)
    (labels,) = [dict(lab) for (_, lab) in fams["aniworldd_build_info"]]
    assert labels["version"] == 'weird "1.0"\\build\nline'


def test_a_cluster_process_says_which_one_it_is_and_what_it_leads() -> None:
    m = Metrics(EventBus())
    alone = parse(m.render(uptime_s=1.0))
    assert "aniworldd_cluster_node_info" not in alone and "aniworldd_cluster_leader" not in alone
    text = m.render(uptime_s=1.0, cluster={"role": "worker", "node": "nas-1", "leader": ["jobs"]})
    assert_well_formed(text)
    families = parse(text)
    info = families["aniworldd_cluster_node_info"]
    assert info == {("aniworldd_cluster_node_info", (("node", "nas-1"), ("role", "worker"))): 1.0}
    assert families["aniworldd_cluster_leader"] == {
        ("aniworldd_cluster_leader", (("election", "jobs"),)): 1.0,
        ("aniworldd_cluster_leader", (("election", "mqtt"),)): 0.0,
    }
