"""Prometheus metrics, counted from the event bus.

The daemon's services never call into this module: `Metrics` is one more listener on the EventBus, so what
Prometheus sees is exactly what the WebSocket and MQTT see. The text exposition format (version 0.0.4) is
rendered by hand because prometheus_client is not a runtime dependency; tests parse the output with
prometheus_client's parser to keep this honest.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from aniworldd import __version__
from aniworldd.events import (
    DOWNLOAD_COMPLETE,
    DOWNLOAD_FAILED,
    NEW_EPISODES,
    QUEUE_STATUS,
    SCAN_COMPLETE,
    SCAN_FAILED,
    Event,
    EventBus,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Scan durations range from a second (small library, warm cache) to many minutes (NAS, cold disks).
SCAN_BUCKETS: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
QUEUE_STATES = ("pending", "active", "completed", "failed")


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class Histogram:
    """Cumulative buckets + sum + count, the Prometheus histogram type."""

    def __init__(self, buckets: Iterable[float]) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1

    def samples(self, name: str) -> list[str]:
        pairs = zip(self.bounds, self.counts, strict=True)
        lines = [f'{name}_bucket{{le="{_fmt(b)}"}} {c}' for b, c in pairs]
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {_fmt(self.total)}")
        lines.append(f"{name}_count {self.count}")
        return lines


class Metrics:
    """Counters and gauges fed by bus events; `render()` produces the /metrics body."""

    def __init__(self, bus: EventBus | None = None) -> None:
        self._lock = threading.Lock()
        self.downloads_completed = 0
        self.downloads_failed = {"true": 0, "false": 0}  # by will_retry
        self.downloaded_bytes = 0
        self.queue: dict[str, float] = dict.fromkeys(QUEUE_STATES, 0.0)
        self.queue_seen = False
        self.queue_running = 0.0
        self.queue_paused = 0.0
        self.speed_mbps = 0.0
        self.scans = {"complete": 0, "failed": 0}
        self.scan_duration = Histogram(SCAN_BUCKETS)
        self.library: dict[str, float] = {}
        self.new_episodes = 0
        if bus is not None:
            bus.add_listener(self.handle)

    # -- event side -------------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Bus listener: cheap, never raises on odd payloads (a bad event must not break the publisher)."""
        data = event.data if isinstance(event.data, dict) else {}
        with self._lock:
            if event.type == DOWNLOAD_COMPLETE:
                self.downloads_completed += 1
                size = _number(data.get("size_bytes"))
                if size and size > 0:
                    self.downloaded_bytes += int(size)
            elif event.type == DOWNLOAD_FAILED:
                self.downloads_failed["true" if data.get("will_retry") else "false"] += 1
            elif event.type == QUEUE_STATUS:
                self._queue_status(data)
            elif event.type == SCAN_COMPLETE:
                self.scans["complete"] += 1
                duration = _number(data.get("duration_s"))
                if duration is not None and duration >= 0:
                    self.scan_duration.observe(duration)
                for field in ("series", "episodes", "missing_episodes", "unmatched"):
                    value = data.get(field)
                    if isinstance(value, list):  # some summaries carry the list itself
                        value = len(value)
                    number = _number(value)
                    if number is not None:
                        self.library[field] = number
            elif event.type == SCAN_FAILED:
                self.scans["failed"] += 1
            elif event.type == NEW_EPISODES:
                episodes = data.get("episodes")
                self.new_episodes += len(episodes) if isinstance(episodes, list) else 0

    def _queue_status(self, data: dict) -> None:
        stats = data.get("statistics") if isinstance(data.get("statistics"), dict) else {}
        lists = {
            "pending": "pending_queue",
            "active": "active_downloads",
            "completed": "completed_downloads",
            "failed": "failed_downloads",
        }
        for state, list_name in lists.items():
            value = _number(stats.get(state))
            if value is None and isinstance(data.get(list_name), list):
                value = float(len(data[list_name]))
            if value is not None:
                self.queue[state] = value
        speed = _number(stats.get("speed_mbps"))
        self.speed_mbps = speed if speed is not None else self.speed_mbps
        self.queue_running = 1.0 if data.get("is_running") else 0.0
        self.queue_paused = 1.0 if data.get("is_paused") else 0.0
        self.queue_seen = True

    def seed_queue(self, status: dict) -> None:
        """Fill the queue gauges from DownloadService.status() before the first queue_status event."""
        with self._lock:
            self._queue_status(status)

    # -- exposition ---------------------------------------------------------------------------------------

    def render(
        self,
        uptime_s: float,
        mqtt_connected: bool | None = None,
        hosters: Mapping[str, Mapping] | None = None,
        cluster: Mapping[str, Any] | None = None,
    ) -> str:
        """The whole /metrics body in the Prometheus text format, ending with a newline.

        `hosters` is HosterHealth.snapshot(): read at scrape time (it is the download service's record,
        not counted from events), one sample per hoster and family. `cluster` (several processes: role,
        node, the elections it holds) says which process a scrape came from: each counts its own work.
        """
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[str]) -> None:
            out.append(f"# HELP {name} {_escape_help(help_text)}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)

        def one(name: str, value: float, labels: Mapping[str, str] | None = None) -> str:
            return f"{name}{_labels(labels or {})} {_fmt(value)}"

        with self._lock:
            family(
                "aniworldd_build_info",
                "gauge",
                "Version of the running daemon (always 1).",
                [one("aniworldd_build_info", 1, {"version": __version__})],
            )
            if cluster is not None:
                family(
                    "aniworldd_cluster_node_info",
                    "gauge",
                    "This process in a cluster: its role and node name (always 1).",
                    [
                        one(
                            "aniworldd_cluster_node_info",
                            1,
                            {"role": cluster["role"], "node": cluster["node"]},
                        )
                    ],
                )
                family(
                    "aniworldd_cluster_leader",
                    "gauge",
                    "1 while this process holds the election (jobs: scheduled refresh and watcher; mqtt).",
                    [
                        one("aniworldd_cluster_leader", int(name in cluster["leader"]), {"election": name})
                        for name in ("jobs", "mqtt")
                    ],
                )
            family(
                "aniworldd_uptime_seconds",
                "gauge",
                "Seconds since the daemon started.",
                [one("aniworldd_uptime_seconds", uptime_s)],
            )
            family(
                "aniworldd_downloads_completed_total",
                "counter",
                "Episodes downloaded and moved into the library.",
                [one("aniworldd_downloads_completed_total", self.downloads_completed)],
            )
            family(
                "aniworldd_downloads_failed_total",
                "counter",
                "Failed download attempts; will_retry=false means the item gave up.",
                [
                    one("aniworldd_downloads_failed_total", n, {"will_retry": k})
                    for k, n in sorted(self.downloads_failed.items())
                ],
            )
            family(
                "aniworldd_downloaded_bytes_total",
                "counter",
                "Bytes of completed episode files written to the library.",
                [one("aniworldd_downloaded_bytes_total", self.downloaded_bytes)],
            )
            family(
                "aniworldd_queue_items",
                "gauge",
                "Queue items by state (completed/failed: as counted by the queue).",
                [one("aniworldd_queue_items", self.queue[s], {"state": s}) for s in QUEUE_STATES],
            )
            family(
                "aniworldd_queue_running",
                "gauge",
                "1 while the queue takes items.",
                [one("aniworldd_queue_running", self.queue_running)],
            )
            family(
                "aniworldd_queue_paused",
                "gauge",
                "1 while the queue is paused.",
                [one("aniworldd_queue_paused", self.queue_paused)],
            )
            family(
                "aniworldd_download_speed_mbps",
                "gauge",
                "Current total download speed in MB/s.",
                [one("aniworldd_download_speed_mbps", self.speed_mbps)],
            )
            family(
                "aniworldd_scans_total",
                "counter",
                "Library scans by result.",
                [one("aniworldd_scans_total", n, {"result": k}) for k, n in sorted(self.scans.items())],
            )
            family(
                "aniworldd_scan_duration_seconds",
                "histogram",
                "Duration of completed library scans.",
                self.scan_duration.samples("aniworldd_scan_duration_seconds"),
            )
            family(
                "aniworldd_new_episodes_total",
                "counter",
                "Episodes the provider newly listed.",
                [one("aniworldd_new_episodes_total", self.new_episodes)],
            )
            if self.library:
                family(
                    "aniworldd_library",
                    "gauge",
                    "Library totals from the last completed scan.",
                    [one("aniworldd_library", v, {"kind": k}) for k, v in sorted(self.library.items())],
                )
        if hosters:
            _hoster_families(hosters, family, one)
        if mqtt_connected is not None:
            family(
                "aniworldd_mqtt_connected",
                "gauge",
                "1 while connected to the MQTT broker.",
                [one("aniworldd_mqtt_connected", 1 if mqtt_connected else 0)],
            )
        return "\n".join(out) + "\n"


def _timestamp(iso: object) -> float | None:
    if not isinstance(iso, str) or not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _hoster_families(hosters: Mapping[str, Mapping], family: Callable, one: Callable) -> None:
    """Per-hoster health: attempts, successes, failures in a row, 24 h success rate, cool-down, last error."""

    def samples(name: str, value_of: Callable[[Mapping], float | None]) -> list[str]:
        out = []
        for hoster, entry in hosters.items():
            value = value_of(entry)
            if value is not None:
                out.append(one(name, value, {"hoster": hoster}))
        return out

    family(
        "aniworldd_hoster_attempts_total",
        "counter",
        "Hoster tries (resolve + download) by the queue.",
        samples("aniworldd_hoster_attempts_total", lambda e: _number(e.get("attempts"))),
    )
    family(
        "aniworldd_hoster_successes_total",
        "counter",
        "Hoster tries that gave a downloaded file.",
        samples("aniworldd_hoster_successes_total", lambda e: _number(e.get("successes"))),
    )
    family(
        "aniworldd_hoster_failures_in_a_row",
        "gauge",
        "Failures since the hoster last worked.",
        samples("aniworldd_hoster_failures_in_a_row", lambda e: _number(e.get("failures_in_a_row"))),
    )
    family(
        "aniworldd_hoster_success_rate_24h",
        "gauge",
        "Share of the hoster's tries in the last 24 h that worked (absent: no tries).",
        samples("aniworldd_hoster_success_rate_24h", lambda e: _number(e.get("success_rate_24h"))),
    )
    family(
        "aniworldd_hoster_cooling_down",
        "gauge",
        "1 while the hoster is skipped after failing too often in a row.",
        samples("aniworldd_hoster_cooling_down", lambda e: 1.0 if e.get("cooling_down_until") else 0.0),
    )
    family(
        "aniworldd_hoster_last_error_timestamp_seconds",
        "gauge",
        "Unix time of the hoster's last failure (absent: none).",
        samples(
            "aniworldd_hoster_last_error_timestamp_seconds", lambda e: _timestamp(e.get("last_error_at"))
        ),
    )
