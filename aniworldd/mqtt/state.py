"""The bridge's picture of the daemon, built from bus events, and the JSON each state topic carries.

Kept apart from the MQTT client so the same picture survives a broker outage: events keep flowing into
it while disconnected, and a reconnect simply republishes whatever it holds now.

Every retained topic is bounded by construction (Home Assistant stores attributes only up to 16 KB, and a
retained topic is resent to every subscriber): `queue/state` holds counts and flags only, lists are capped
(`queue/failed`: the newest FAILED_LIMIT), and the unmatched folders of a scan are a count (the list is in
the REST API, /api/library/unmatched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aniworldd import events as ev
from aniworldd.events import Event, iso_timestamp, to_json

#: Bus event type of component health changes (services.refresh_service.HEALTH; not in events.py).
HEALTH_EVENT = "health"
#: Bus event type the hoster-health tracker may publish; the bridge re-reads its snapshot on it.
HOSTER_HEALTH_EVENT = "hoster_health"

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
        ev.SERIES_REMOVED,
        ev.CONFIG_CHANGED,
        HEALTH_EVENT,
        HOSTER_HEALTH_EVENT,
    }
)
#: Bus events forwarded verbatim (seed envelope) to `<base>/event`; new_episodes beyond the seed's four
#: because "a new episode was found" is what an automation most often wants to announce, series_removed so
#: a dashboard can drop the series.
FORWARDED = frozenset(
    {
        ev.DOWNLOAD_COMPLETE,
        ev.DOWNLOAD_FAILED,
        ev.SCAN_COMPLETE,
        ev.SCAN_FAILED,
        ev.NEW_EPISODES,
        ev.SERIES_REMOVED,
    }
)

#: Dirty flags the bridge's publishers watch (one per retained state topic).
QUEUE_STATE = "queue_state"
QUEUE_ACTIVE = "queue_active"
QUEUE_FAILED = "queue_failed"
SCAN_STATE = "scan_state"
HEALTH = "health"
#: `queue/failed` keeps the newest failures only (each with its reason): enough for a notification card.
FAILED_LIMIT = 20
_REASON_MAX = 300


def dumps(payload: Any) -> str:
    """JSON for the wire; DB rows carry datetimes, which become ISO strings instead of breaking publish."""
    return to_json(payload, lenient=True)


def forwarded_envelope(event: Event) -> dict:
    """The envelope `<base>/event` carries: the bus event as is, except that a scan's `unmatched` folder list
    becomes its count (as in `scan/state`; 400 folder names made a 27 KB message per scan)."""
    envelope = event.envelope()
    data = envelope["data"]
    if event.type == ev.SCAN_COMPLETE and isinstance(data, dict) and isinstance(data.get("unmatched"), list):
        envelope["data"] = {**data, "unmatched": len(data["unmatched"])}
    return envelope


def empty_queue_status() -> dict:
    """The counts and flags `queue/state` carries before the queue service has said anything."""
    return {
        "is_running": False,
        "is_paused": False,
        "statistics": {"pending": 0, "active": 0, "completed": 0, "failed": 0, "speed_mbps": 0.0},
    }


def empty_last_full() -> dict:
    """What the last *full* scan found; partial rescans (after a download) never change it."""
    return {
        "at": None,
        "duration_s": None,
        "series": None,
        "episodes": None,
        "missing_episodes": None,
        "unmatched": None,
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
        "library_updated": None,
        "library_changes": 0,
        "last_full": empty_last_full(),
    }


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _count(value: Any) -> int | None:
    """`unmatched` is a number at start and a folder list in scan_complete: always a number here."""
    if isinstance(value, list | tuple | set):
        return len(value)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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


def _failed_entry(item: dict) -> dict:
    reason = item.get("error")
    if isinstance(reason, str) and len(reason) > _REASON_MAX:
        reason = reason[: _REASON_MAX - 1] + "…"
    return {
        "id": item.get("id"),
        "key": item.get("key") or item.get("serie_id"),
        "folder": item.get("serie_folder"),
        "season": item.get("season"),
        "episode": item.get("episode"),
        "language": item.get("language"),
        "reason": reason,
        "attempts": item.get("attempts"),
        "failed_at": item.get("updated_at") or item.get("completed_at"),
    }


def _statistics(status: dict) -> dict:
    stats = status.get("statistics") if isinstance(status.get("statistics"), dict) else {}
    lists = {
        "pending": "pending_queue",
        "active": "active_downloads",
        "completed": "completed_downloads",
        "failed": "failed_downloads",
    }
    out: dict[str, Any] = {}
    for name, list_key in lists.items():
        value = stats.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            listed = status.get(list_key)
            value = len(listed) if isinstance(listed, list) else 0
        out[name] = value
    out["speed_mbps"] = round(_num(stats.get("speed_mbps")), 3)
    return out


@dataclass
class MirrorState:
    """Latest queue counts, active downloads, failures, scan and health; `apply()` says what changed."""

    queue: dict = field(default_factory=empty_queue_status)
    active: dict[Any, dict] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    scan: dict = field(default_factory=empty_scan_state)
    health: dict[str, dict] = field(default_factory=dict)

    @property
    def paused(self) -> bool:
        return bool(self.queue.get("is_paused"))

    # --- updates -------------------------------------------------------------------------------
    def set_queue_status(self, status: dict) -> set[str]:
        """Take a full QueueStatus; keep only counts and flags, the active set and the newest failures."""
        if not isinstance(status, dict):
            return set()
        self.queue = {
            "is_running": bool(status.get("is_running")),
            "is_paused": bool(status.get("is_paused")),
            "statistics": _statistics(status),
        }
        active: dict[Any, dict] = {}
        for item in status.get("active_downloads") or []:
            if not isinstance(item, dict):
                continue
            item_id = item.get("id")
            known = self.active.get(item_id)
            active[item_id] = known if known is not None else _active_from_item(item)
        self.active = active
        failed = [i for i in status.get("failed_downloads") or [] if isinstance(i, dict)]
        self.failed = [_failed_entry(i) for i in failed[:FAILED_LIMIT]]
        return {QUEUE_STATE, QUEUE_ACTIVE, QUEUE_FAILED}

    def set_scan_state(self, state: dict) -> set[str]:
        """Seed from ScanService.state(): a partial rescan running right now is not a "scan running"."""
        if not isinstance(state, dict):
            return set()
        merged = {**empty_scan_state(), "library_changes": self.scan.get("library_changes", 0)}
        for key in ("percent", "series", "episodes", "missing_episodes", "error"):
            if key in state:
                merged[key] = state[key]
        merged["unmatched"] = _count(state.get("unmatched"))
        merged["running"] = bool(state.get("running")) and not state.get("partial")
        full_at = state.get("last_full_scan", state.get("last_scan"))
        known = self.scan.get("last_full") or empty_last_full()
        if known.get("at") and known["at"] == full_at:
            merged["last_full"] = known
        elif full_at:
            merged["last_full"] = {
                **empty_last_full(),
                "at": full_at,
                **{k: merged[k] for k in ("series", "episodes", "missing_episodes", "unmatched")},
            }
        merged["last_scan"] = merged["last_full"]["at"]
        merged["library_updated"] = self.scan.get("library_updated") or state.get("last_scan")
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
            if data.get("partial"):
                return set()  # a few folders after a download: not a "scan running" for HA
            self.scan = {
                **self.scan,
                "running": True,
                "percent": round(_num(data.get("percent")), 1),
                "error": None,
            }
            return {SCAN_STATE}
        if event.type == ev.SCAN_COMPLETE:
            return self._scan_complete(event, data)
        if event.type == ev.SCAN_FAILED:
            self.scan = {**self.scan, "running": False, "error": str(data.get("error") or "scan failed")}
            return {SCAN_STATE}
        if event.type == HEALTH_EVENT:
            # One entry per component and host: a wall at one provider site is not cleared by another.
            component = str(data.get("component") or "daemon")
            name = f"{component} {data['host']}" if data.get("host") else component
            self.health[name] = {
                "status": str(data.get("status") or "unknown"),
                "message": data.get("message"),
                "hint": data.get("hint"),
                "since": iso_timestamp(event.timestamp),
            }
            return {HEALTH}
        return set()

    def _scan_complete(self, event: Event, data: dict) -> set[str]:
        at = iso_timestamp(event.timestamp)
        counts = {k: data[k] for k in ("series", "episodes", "missing_episodes") if k in data}
        if "unmatched" in data:
            counts["unmatched"] = _count(data["unmatched"])
        changed = data.get("changes")
        scan = {**self.scan, **counts, "error": None}
        if changed is None or changed:
            scan["library_updated"] = at
            scan["library_changes"] = int(self.scan.get("library_changes") or 0) + 1
        if data.get("scope") != "partial":
            scan["running"] = False
            scan["percent"] = 100.0
            scan["last_scan"] = at
            scan["last_full"] = {
                **empty_last_full(),
                "at": at,
                "duration_s": data.get("duration_s"),
                **{k: scan.get(k) for k in ("series", "episodes", "missing_episodes", "unmatched")},
            }
        self.scan = scan
        return {SCAN_STATE}

    # --- payloads ------------------------------------------------------------------------------
    def speed_mbps(self) -> float:
        """Total download speed in MiB/s: 0 while paused (suspended downloads move no bytes), live progress
        while downloads run, else what the queue said."""
        if self.paused:
            return 0.0
        if self.active:
            return round(sum(_num(a.get("speed_mbps")) for a in self.active.values()), 3)
        return round(_num(self.queue["statistics"].get("speed_mbps")), 3)

    def queue_payload(self) -> dict:
        """`queue/state`: counts and flags only, a fixed set of keys (~200 bytes at any queue size)."""
        speed = self.speed_mbps()
        return {
            **self.queue,
            "statistics": {**self.queue["statistics"], "speed_mbps": speed},
            "speed_mbps": speed,
        }

    def _downloads(self) -> list[dict]:
        downloads = list(self.active.values())  # in the order downloads started
        if self.paused:
            downloads = [{**d, "speed_mbps": 0.0, "eta_seconds": None} for d in downloads]
        return downloads

    def active_payload(self) -> dict:
        """`queue/active`: the running downloads (at most downloads.max_concurrent) and the current one,
        the most advanced, for the "Current download" sensor."""
        downloads = self._downloads()
        current = max(downloads, key=lambda d: _num(d.get("percent")), default=None)
        return {
            "count": len(downloads),
            "speed_mbps": self.speed_mbps(),
            "paused": self.paused,
            "current": current,
            "downloads": downloads,
        }

    def failed_payload(self) -> dict:
        return {"count": self.queue["statistics"]["failed"], "items": list(self.failed)}

    def scan_payload(self) -> dict:
        return dict(self.scan)

    def health_payload(self) -> dict:
        """`health`: problem when any component reports something other than ok (provider blocked ...)."""
        bad = {name: c for name, c in self.health.items() if c["status"] != "ok"}
        first = next(iter(bad.values()), None)
        return {
            "problem": bool(bad),
            "status": first["status"] if first else "ok",
            "message": first["message"] if first else None,
            "components": dict(self.health),
        }
