"""Payloads the bridge samples from the daemon instead of folding events: free space, hoster health,
the live download settings. Pure functions over plain values, so they are testable without a broker.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import UTC, datetime
from typing import Any

from aniworldd.mqtt.discovery import root_id

_GIB = 1024**3
_MIB = 1024**2
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)\s*$", re.IGNORECASE)
_RATE_UNITS = {"": 1, "K": 1024, "M": _MIB, "G": _GIB}


def storage_payload(roots: list[str]) -> dict:
    """`storage`: free/total bytes per library root, keyed by discovery.root_id (blocking: run in a thread).

    A root that cannot be read (unmounted NAS share) reports nulls rather than disappearing, so its
    sensor turns unknown instead of keeping a stale number."""
    out: dict[str, dict] = {}
    for root in roots:
        entry: dict[str, Any] = {"path": root, "free_bytes": None, "total_bytes": None, "free_gib": None}
        try:
            usage = shutil.disk_usage(root)
        except OSError as exc:
            entry["error"] = exc.strerror or type(exc).__name__
        else:
            used = round(100.0 * (usage.total - usage.free) / usage.total, 1) if usage.total else None
            entry.update(
                free_bytes=usage.free,
                total_bytes=usage.total,
                free_gib=round(usage.free / _GIB, 2),
                used_percent=used,
            )
        out[root_id(os.path.normpath(root))] = entry
    return {"roots": out}


def _cooling(until: Any, now: float) -> bool:
    """Whether a `cooling_down_until` value (epoch seconds, ISO string or datetime) lies in the future."""
    if until is None or until is False:
        return False
    if isinstance(until, int | float):
        return until > now
    if isinstance(until, str):
        try:
            until = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            return True
    if isinstance(until, datetime):
        moment = until if until.tzinfo else until.replace(tzinfo=UTC)
        return moment.timestamp() > now
    return bool(until)


def _usable(info: Any, now: float) -> bool:
    """A hoster worth trying now: not failing in a row and not cooling down (untried ones count)."""
    if not isinstance(info, dict):
        return True
    state = info.get("state")
    if isinstance(state, str):
        return state not in ("failing", "cooling_down")
    return not _cooling(info.get("cooling_down_until"), now)


def hosters_payload(snapshot: Any) -> dict:
    """`hosters`: DownloadService.hoster_health.snapshot() plus how many hosters are usable right now."""
    hosters = snapshot if isinstance(snapshot, dict) else {}
    now = time.time()
    healthy = sum(1 for info in hosters.values() if _usable(info, now))
    return {"healthy": healthy, "total": len(hosters), "hosters": hosters}


def rate_mibps(rate: Any) -> float:
    """A yt-dlp --limit-rate value (`500K`, `5M`, bytes) in MiB/s; 0 for no limit."""
    if rate in (None, "", 0):
        return 0.0
    m = _RATE_RE.match(str(rate))
    if not m:
        return 0.0
    return round(float(m.group(1)) * _RATE_UNITS[m.group(2).upper()] / _MIB, 2)


def rate_setting(mibps: float) -> str | None:
    """MiB/s from the HA number back to a `downloads.speed_limit` value (0: unlimited)."""
    if mibps <= 0:
        return None
    return f"{int(mibps)}M" if float(mibps).is_integer() else f"{round(mibps * 1024)}K"


def settings_payload(downloads: dict | None) -> dict:
    """`settings`: the live download settings the HA number/select entities show."""
    downloads = downloads or {}
    languages = list(downloads.get("language") or [])
    return {
        "max_concurrent": downloads.get("max_concurrent"),
        "speed_limit_mibps": rate_mibps(downloads.get("speed_limit")),
        "language": languages[0] if languages else None,
        "languages": languages,
    }
