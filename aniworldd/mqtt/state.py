"""The bridge's picture of the daemon, built from bus events, and the JSON each state topic carries.

Kept apart from the MQTT client so the same picture survives a broker outage: events keep flowing into
it while disconnected, and a reconnect simply republishes whatever it holds now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aniworldd import events as ev
from aniworldd.events import Event, iso_timestamp, to_json

#: Bus events the bridge listens to.
SUBSCRIBED = frozenset(
    {
        ev.QUEUE_STATUS,
        ev.DOWNLOAD_PROGRESS,
        ev.DOWNLOAD_COMPLETE,
        ev.DOWNLOAD_FAILED,
        ev.SCAN_PROGRESS,
        ev.SCAN_COMPLETE,
        ev.SCAN_FAILED,
        ev.NEW_EPISODES,
    }
)
#: Bus events forwarded verbatim (seed envelope) to `<base>/event`; new_episodes beyond the seed's four
#: because "a new episode was found" is what an automation most often wants to announce.
FORWARDED = frozenset(
    {ev.DOWNLOAD_COMPLETE, ev.DOWNLOAD_FAILED, ev.SCAN_COMPLETE, ev.SCAN_FAILED, ev.NEW_EPISODES}
)

#: Dirty flags the bridge's publishers watch.
QUEUE_STATE = "queue_state"
QUEUE_ACTIVE = "queue_active"
SCAN_STATE = "scan_state"


def dumps(payload: Any) -> str:
    """JSON for the wire; DB rows carry datetimes, which become ISO strings instead of breaking publish."""
    return to_json(payload, lenient=True)


def empty_queue_status() -> dict:
    """What `queue/state` says before the queue service has said anything (or when it is absent)."""
    return {
        "is_running": False,
        "is_paused": False,
        "active_downloads": [],
        "pending_queue": [],
        "completed_downloads": [],
        "failed_downloads": [],
        "statistics": {"pending": 0, "active": 0, "completed": 0, "failed": 0, "speed_mbps": 0.0},
    }


def empty_scan_state() -> dict:
    return {
        "running": False,
        "percent": 0.0,
        "last_scan": None,
        "series": None,
        "episodes": None,
        "missing_episodes": None,
        "unmatched": None,
        "error": None,
    }


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _active_from_item(item: dict) -> dict:
    """A DownloadItem (queue_status) in the shape of a `queue/active` entry."""
    return {
        "download_id": item.get("id"),
        "key": item.get("key") or item.get("serie_id"),
        "folder": item.get("serie_folder"),
        "season": item.get("season"),
        "episode": item.get("episode"),
        "language": item.get("language"),
        "percent": round(_num(item.get("progress")), 2),
        "downloaded_bytes": item.get("downloaded_bytes"),
        "total_bytes": item.get("total_bytes"),
        "speed_mbps": round(_num(item.get("speed")), 3),
        "eta_seconds": item.get("eta"),
    }


def _active_from_progress(data: dict) -> dict:
    """A download_progress payload in the shape of a `queue/active` entry."""
    return {
        "download_id": data.get("download_id"),
        "key": data.get("key"),
        "folder": data.get("folder"),
        "season": data.get("season"),
        "episode": data.get("episode"),
        "language": data.get("language"),
        "percent": round(_num(data.get("percent")), 2),
        "downloaded_bytes": data.get("downloaded_bytes"),
        "total_bytes": data.get("total_bytes"),
        "speed_mbps": round(_num(data.get("speed_mbps")), 3),
        "eta_seconds": data.get("eta_seconds"),
    }


@dataclass
class MirrorState:
    """Latest queue status, active downloads and scan state; `apply()` says which topics changed."""

    queue: dict = field(default_factory=empty_queue_status)
    active: dict[Any, dict] = field(default_factory=dict)
    scan: dict = field(default_factory=empty_scan_state)

    # --- updates -------------------------------------------------------------------------------
    def set_queue_status(self, status: dict) -> set[str]:
        """Take a full QueueStatus; the active set follows it (progress already known is kept)."""
        if not isinstance(status, dict):
            return set()
        self.queue = status
        active: dict[Any, dict] = {}
        for item in status.get("active_downloads") or []:
            if not isinstance(item, dict):
                continue
            item_id = item.get("id")
            known = self.active.get(item_id)
            active[item_id] = known if known is not None else _active_from_item(item)
        self.active = active
        return {QUEUE_STATE, QUEUE_ACTIVE}

    def set_scan_state(self, state: dict) -> set[str]:
        if not isinstance(state, dict):
            return set()
        merged = empty_scan_state()
        merged.update({k: state[k] for k in state if k in merged or k == "duration_s"})
        self.scan = merged
        return {SCAN_STATE}

    def apply(self, event: Event) -> set[str]:
        """Fold one bus event in; return the dirty flags it raised."""
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == ev.QUEUE_STATUS:
            return self.set_queue_status(data)
        if event.type == ev.DOWNLOAD_PROGRESS:
            entry = _active_from_progress(data)
            self.active[entry["download_id"]] = entry
            return {QUEUE_ACTIVE}
        if event.type in (ev.DOWNLOAD_COMPLETE, ev.DOWNLOAD_FAILED):
            self.active.pop(data.get("download_id"), None)
            return {QUEUE_ACTIVE}
        if event.type == ev.SCAN_PROGRESS:
            self.scan = {
                **self.scan,
                "running": True,
                "percent": round(_num(data.get("percent")), 1),
                "error": None,
            }
            return {SCAN_STATE}
        if event.type == ev.SCAN_COMPLETE:
            self.scan = {
                **self.scan,
                "running": False,
                "percent": 100.0,
                "last_scan": iso_timestamp(event.timestamp),
                "error": None,
                **{
                    k: data[k]
                    for k in ("series", "episodes", "missing_episodes", "unmatched", "duration_s")
                    if k in data
                },
            }
            return {SCAN_STATE}
        if event.type == ev.SCAN_FAILED:
            self.scan = {**self.scan, "running": False, "error": str(data.get("error") or "scan failed")}
            return {SCAN_STATE}
        return set()

    # --- payloads ------------------------------------------------------------------------------
    def speed_mbps(self) -> float:
        """Total download speed in MB/s: live progress when downloads run, else what the queue said."""
        if self.active:
            return round(sum(_num(a.get("speed_mbps")) for a in self.active.values()), 3)
        return round(_num((self.queue.get("statistics") or {}).get("speed_mbps")), 3)

    def queue_payload(self) -> dict:
        """`queue/state`: the seed's QueueStatus plus the current total speed."""
        return {**self.queue, "speed_mbps": self.speed_mbps()}

    def active_payload(self) -> dict:
        downloads = list(self.active.values())  # in the order downloads started
        return {"count": len(downloads), "speed_mbps": self.speed_mbps(), "downloads": downloads}

    def scan_payload(self) -> dict:
        return dict(self.scan)
