"""Home Assistant MQTT discovery: one device, its entities, and the bookkeeping to remove old ones.

Why the files in data_dir:
- `install_id` makes every unique_id stable across restarts, config edits and client-id changes, so HA
  keeps entity history and user renames.
- `mqtt_discovery.json` remembers which discovery topics this install published, so an entity that is
  no longer offered (or discovery switched off) is removed from HA with an empty retained payload
  instead of lingering as "unavailable" forever.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aniworldd.fileio import atomic_write

log = logging.getLogger(__name__)

INSTALL_ID_FILE = "install_id"
REGISTRY_FILE = "mqtt_discovery.json"
_INSTALL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_NODE_RE = re.compile(r"[^A-Za-z0-9_-]+")


def load_install_id(data_dir: str | Path) -> str:
    """The persistent id of this installation (created once, mode 0600)."""
    path = Path(data_dir) / INSTALL_ID_FILE
    try:
        value = path.read_text(encoding="utf-8").strip()
        if _INSTALL_ID_RE.match(value):
            return value
        log.warning("%s is not a valid install id; creating a new one (HA entities get new ids)", path)
    except FileNotFoundError:
        pass
    value = uuid.uuid4().hex
    atomic_write(path, value + "\n")
    return value


def configuration_url(server: dict) -> str:
    """Where HA's "Visit" link points: the public URL, else this host and port."""
    if server.get("public_url"):
        return str(server["public_url"])
    host = server.get("host") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()  # a wildcard bind is not an address anybody can open
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{server.get('port', 8080)}"


@dataclass(frozen=True)
class EntitySpec:
    """One HA entity: its platform, a stable object id and the platform-specific options."""

    component: str
    object_id: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)


def entity_specs(base: str) -> list[EntitySpec]:
    """Every entity the daemon offers; topics are relative to the bridge's own topic tree."""
    queue_state = f"{base}/queue/state"
    scan_state = f"{base}/scan/state"
    active = f"{base}/queue/active"

    def count(object_id: str, name: str, field_name: str, icon: str) -> EntitySpec:
        return EntitySpec(
            "sensor",
            object_id,
            name,
            {
                "state_topic": queue_state,
                "value_template": f"{{{{ value_json.statistics.{field_name} | int(0) }}}}",
                "state_class": "measurement",
                "icon": icon,
            },
        )

    def request(command: str) -> str:
        return f"{base}/request/{command}"

    return [
        count("pending_downloads", "Pending downloads", "pending", "mdi:playlist-clock"),
        count("active_downloads", "Active downloads", "active", "mdi:download"),
        count("completed_downloads", "Completed downloads", "completed", "mdi:check-circle-outline"),
        count("failed_downloads", "Failed downloads", "failed", "mdi:alert-circle-outline"),
        EntitySpec(
            "sensor",
            "download_speed",
            "Download speed",
            {
                "state_topic": active,
                "value_template": "{{ value_json.speed_mbps | float(0) }}",
                "device_class": "data_rate",
                "unit_of_measurement": "MB/s",
                "state_class": "measurement",
                "suggested_display_precision": 2,
                "json_attributes_topic": active,
            },
        ),
        EntitySpec(
            "sensor",
            "series",
            "Series",
            {
                "state_topic": scan_state,
                "value_template": "{{ value_json.series if value_json.series is not none else 'None' }}",
                "state_class": "measurement",
                "icon": "mdi:television-classic",
            },
        ),
        EntitySpec(
            "sensor",
            "missing_episodes",
            "Missing episodes",
            {
                "state_topic": scan_state,
                "value_template": (
                    "{{ value_json.missing_episodes if value_json.missing_episodes is not none else 'None' }}"
                ),
                "state_class": "measurement",
                "icon": "mdi:filmstrip-off",
            },
        ),
        EntitySpec(
            "sensor",
            "last_scan",
            "Last scan",
            {
                "state_topic": scan_state,
                "value_template": "{{ value_json.last_scan or 'None' }}",
                "device_class": "timestamp",
                "json_attributes_topic": scan_state,
            },
        ),
        EntitySpec(
            "binary_sensor",
            "queue_running",
            "Queue running",
            {
                "state_topic": queue_state,
                "value_template": "{{ 'ON' if value_json.is_running else 'OFF' }}",
                "device_class": "running",
            },
        ),
        EntitySpec(
            "binary_sensor",
            "scan_running",
            "Scan running",
            {
                "state_topic": scan_state,
                "value_template": "{{ 'ON' if value_json.running else 'OFF' }}",
                "device_class": "running",
            },
        ),
        EntitySpec(
            "switch",
            "queue_paused",
            "Queue paused",
            {
                "state_topic": queue_state,
                "value_template": "{{ 'ON' if value_json.is_paused else 'OFF' }}",
                "command_topic": request("queue/paused"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "icon": "mdi:pause-circle-outline",
            },
        ),
        EntitySpec(
            "button",
            "start_queue",
            "Start queue",
            {"command_topic": request("queue/start"), "payload_press": "{}", "icon": "mdi:play"},
        ),
        EntitySpec(
            "button",
            "stop_queue",
            "Stop queue",
            {"command_topic": request("queue/stop"), "payload_press": "{}", "icon": "mdi:stop"},
        ),
        EntitySpec(
            "button",
            "rescan_library",
            "Rescan library",
            {"command_topic": request("scan/rescan"), "payload_press": "{}", "icon": "mdi:folder-refresh"},
        ),
        EntitySpec(
            "button",
            "retry_failed",
            "Retry failed",
            {"command_topic": request("queue/retry"), "payload_press": "{}", "icon": "mdi:restart"},
        ),
        EntitySpec(
            "button",
            "clear_completed",
            "Clear completed",
            {
                "command_topic": request("queue/clear_completed"),
                "payload_press": "{}",
                "icon": "mdi:playlist-remove",
            },
        ),
    ]


def node_id(install_id: str) -> str:
    return _NODE_RE.sub("_", f"aniworldd_{install_id[:12]}")


def build_discovery(mqtt: dict, install_id: str, version: str, config_url: str) -> dict[str, dict]:
    """Map of discovery topic -> config payload for every entity (empty when discovery is off)."""
    if not mqtt.get("discovery", True):
        return {}
    base = mqtt["base_topic"].rstrip("/")
    prefix = mqtt["discovery_prefix"].rstrip("/")
    node = node_id(install_id)
    # The device name becomes the entity-id prefix in HA (sensor.<client_id>_pending_downloads ...).
    device = {
        "identifiers": [f"aniworldd_{install_id}"],
        "name": mqtt.get("client_id") or "aniworldd",
        "manufacturer": "aniworldd",
        "model": "aniworldd daemon",
        "sw_version": version,
        "configuration_url": config_url,
    }
    origin = {"name": "aniworldd", "sw_version": version}
    out: dict[str, dict] = {}
    for spec in entity_specs(base):
        payload = {
            "name": spec.name,
            "unique_id": f"aniworldd_{install_id}_{spec.object_id}",
            "availability_topic": f"{base}/status",
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            "origin": origin,
            **spec.options,
        }
        out[f"{prefix}/{spec.component}/{node}/{spec.object_id}/config"] = payload
    return out


class DiscoveryRegistry:
    """The set of discovery topics last published by this install (data_dir/mqtt_discovery.json)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / REGISTRY_FILE

    def load(self) -> set[str]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return set()
        topics = doc.get("topics") if isinstance(doc, dict) else None
        return {t for t in topics or [] if isinstance(t, str) and t and "#" not in t and "+" not in t}

    def save(self, topics: set[str]) -> None:
        atomic_write(self.path, json.dumps({"topics": sorted(topics)}, indent=2) + "\n")
