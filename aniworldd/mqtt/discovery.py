"""Home Assistant MQTT discovery: one device, its entities, and the bookkeeping to remove old ones.

Why the files in data_dir:
- `install_id` makes every unique_id stable across restarts, config edits and client-id changes, so HA
  keeps entity history and user renames.
- `mqtt_discovery.json` remembers which discovery topics (and, for device discovery, which components)
  this install published, so an entity that is no longer offered (or discovery switched off) is removed
  from HA instead of lingering as "unavailable" forever.

Two forms (`mqtt.discovery_mode`): `device` publishes one `<prefix>/device/<node>/config` with every entity
under `cmps` (HA 2024.11+); `components` publishes one topic per entity (older HA). Both carry the same
unique ids, platforms and options, so switching between them (migrate_discovery, see the bridge) keeps
the entities, their history and the user's renames.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
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


#: Event entities: one per event type, each ignoring the other types on the shared `<base>/event` topic
#: (an empty rendering is dropped by HA without a warning).
EVENT_ENTITIES = (
    ("download_complete", "Download complete", "mdi:download-circle"),
    ("download_failed", "Download failed", "mdi:alert-circle-outline"),
    ("new_episodes", "New episodes", "mdi:new-box"),
)
DIAGNOSTIC = "diagnostic"
CONFIG = "config"
LANGUAGE_OPTIONS = ("ger-dub", "ger-sub", "eng-sub", "eng-dub")
#: The speed-limit number: MiB/s, 0 = unlimited.
SPEED_LIMIT_MAX = 1000


def root_id(root: str) -> str:
    """A stable short id for a library root (unique ids and topic keys must not contain the path)."""
    return hashlib.sha1(os.path.normpath(root).encode("utf-8")).hexdigest()[:10]


def _event_template(event_type: str) -> str:
    return (
        f"{{% if value_json.type == '{event_type}' %}}"
        f"{{{{ dict(value_json.data, event_type=value_json.type) | tojson }}}}"
        "{% endif %}"
    )


def entity_specs(
    base: str, roots: list[str] | tuple[str, ...] = (), hosters: bool = False
) -> list[EntitySpec]:
    """Every entity the daemon offers; topics are relative to the bridge's own topic tree.

    `roots`: one free-space sensor each. `hosters`: the hoster-health sensor (only when the queue tracks
    hoster health).
    """
    queue_state = f"{base}/queue/state"
    scan_state = f"{base}/scan/state"
    active = f"{base}/queue/active"
    failed = f"{base}/queue/failed"
    settings = f"{base}/settings"

    def count(object_id: str, name: str, field_name: str, icon: str, **extra: Any) -> EntitySpec:
        return EntitySpec(
            "sensor",
            object_id,
            name,
            {
                "state_topic": queue_state,
                "value_template": f"{{{{ value_json.statistics.{field_name} | int(0) }}}}",
                "state_class": "measurement",
                "icon": icon,
                **extra,
            },
        )

    def request(command: str) -> str:
        return f"{base}/request/{command}"

    def button(object_id: str, name: str, command: str, icon: str, **extra: Any) -> EntitySpec:
        return EntitySpec(
            "button",
            object_id,
            name,
            {"command_topic": request(command), "payload_press": "{}", "icon": icon, **extra},
        )

    specs = [
        count("pending_downloads", "Pending downloads", "pending", "mdi:timer-sand"),
        count("active_downloads", "Active downloads", "active", "mdi:download"),
        count("completed_downloads", "Completed downloads", "completed", "mdi:check-circle-outline"),
        # The newest failures with their reasons as attributes (queue/failed is capped, a few KB at most).
        count(
            "failed_downloads",
            "Failed downloads",
            "failed",
            "mdi:alert-circle-outline",
            json_attributes_topic=failed,
        ),
        EntitySpec(
            "sensor",
            "download_speed",
            "Download speed",
            {
                "state_topic": active,
                "value_template": "{{ value_json.speed_mbps | float(0) }}",
                "device_class": "data_rate",
                # The daemon measures bytes/s / 2^20: MiB/s (HA converts MB/s with 10^6, ~4.9 % off).
                "unit_of_measurement": "MiB/s",
                "state_class": "measurement",
                "suggested_display_precision": 2,
                "json_attributes_topic": active,
            },
        ),
        EntitySpec(
            "sensor",
            "current_download",
            "Current download",
            {
                "state_topic": active,
                "value_template": ("{{ value_json.current.percent if value_json.current else 'None' }}"),
                "unit_of_measurement": "%",
                "state_class": "measurement",
                "suggested_display_precision": 0,
                "icon": "mdi:progress-download",
                "json_attributes_topic": active,
                "json_attributes_template": "{{ (value_json.current or {}) | tojson }}",
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
                "entity_category": DIAGNOSTIC,
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
                # Full scans only: the partial rescan after each download changes neither state nor
                # attributes (no logbook entry per episode).
                "state_topic": scan_state,
                "value_template": "{{ value_json.last_full.at or 'None' }}",
                "device_class": "timestamp",
                "json_attributes_topic": scan_state,
                "json_attributes_template": "{{ value_json.last_full | tojson }}",
                "entity_category": DIAGNOSTIC,
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
            "binary_sensor",
            "problem",
            "Problem",
            {
                "state_topic": f"{base}/health",
                "value_template": "{{ 'ON' if value_json.problem else 'OFF' }}",
                "device_class": "problem",
                "json_attributes_topic": f"{base}/health",
                "entity_category": DIAGNOSTIC,
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
        button("start_queue", "Start queue", "queue/start", "mdi:play"),
        button("stop_queue", "Stop queue", "queue/stop", "mdi:stop"),
        button(
            "rescan_library", "Rescan library", "scan/rescan", "mdi:folder-refresh", entity_category=CONFIG
        ),
        button("retry_failed", "Retry failed", "queue/retry", "mdi:restart"),
        button("clear_completed", "Clear completed", "queue/clear_completed", "mdi:playlist-remove"),
        EntitySpec(
            "number",
            "max_concurrent",
            "Parallel downloads",
            {
                "state_topic": settings,
                "value_template": "{{ value_json.max_concurrent }}",
                "command_topic": request("settings/max_concurrent"),
                "min": 1,
                "max": 16,
                "step": 1,
                "mode": "box",
                "icon": "mdi:download-multiple",
                "entity_category": CONFIG,
            },
        ),
        EntitySpec(
            "number",
            "speed_limit",
            "Speed limit",
            {
                "state_topic": settings,
                "value_template": "{{ value_json.speed_limit_mibps }}",
                "command_topic": request("settings/speed_limit"),
                "min": 0,
                "max": SPEED_LIMIT_MAX,
                "step": 0.5,
                "mode": "box",
                "device_class": "data_rate",
                "unit_of_measurement": "MiB/s",
                "icon": "mdi:speedometer",
                "entity_category": CONFIG,
            },
        ),
        EntitySpec(
            "select",
            "preferred_language",
            "Preferred language",
            {
                "state_topic": settings,
                "value_template": "{{ value_json.language }}",
                "command_topic": request("settings/language"),
                "options": list(LANGUAGE_OPTIONS),
                "icon": "mdi:translate",
                "entity_category": CONFIG,
            },
        ),
        EntitySpec(
            "update",
            "version",
            "Version",
            {
                "state_topic": f"{base}/update",
                "entity_category": DIAGNOSTIC,
            },
        ),
    ]
    for event_type, name, icon in EVENT_ENTITIES:
        specs.append(
            EntitySpec(
                "event",
                event_type,
                name,
                {
                    "state_topic": f"{base}/event",
                    "event_types": [event_type],
                    "value_template": _event_template(event_type),
                    "icon": icon,
                },
            )
        )
    for root in roots:
        rid = root_id(root)
        label = os.path.basename(os.path.normpath(root)) or root
        specs.append(
            EntitySpec(
                "sensor",
                f"free_space_{rid}",
                "Free space" if len(roots) == 1 else f"Free space {label}",
                {
                    "state_topic": f"{base}/storage",
                    "value_template": f"{{{{ value_json.roots['{rid}'].free_gib | float(0) }}}}",
                    "device_class": "data_size",
                    "unit_of_measurement": "GiB",
                    "state_class": "measurement",
                    "suggested_display_precision": 1,
                    "icon": "mdi:harddisk",
                    "json_attributes_topic": f"{base}/storage",
                    "json_attributes_template": f"{{{{ value_json.roots['{rid}'] | tojson }}}}",
                },
            )
        )
    if hosters:
        specs.append(
            EntitySpec(
                "sensor",
                "hoster_health",
                "Working hosters",
                {
                    "state_topic": f"{base}/hosters",
                    "value_template": "{{ value_json.healthy | int(0) }}",
                    "state_class": "measurement",
                    "icon": "mdi:server-network",
                    "json_attributes_topic": f"{base}/hosters",
                    "json_attributes_template": "{{ value_json.hosters | tojson }}",
                    "entity_category": DIAGNOSTIC,
                },
            )
        )
    return specs


def node_id(install_id: str) -> str:
    return _NODE_RE.sub("_", f"aniworldd_{install_id[:12]}")


def discovery_mode(mqtt: dict) -> str:
    return "components" if mqtt.get("discovery_mode") == "components" else "device"


def _device(mqtt: dict, install_id: str, version: str, config_url: str) -> tuple[dict, dict]:
    # The device name becomes the entity-id prefix in HA (sensor.<client_id>_pending_downloads ...).
    device = {
        "identifiers": [f"aniworldd_{install_id}"],
        "name": mqtt.get("client_id") or "aniworldd",
        "manufacturer": "aniworldd",
        "model": "aniworldd daemon",
        "sw_version": version,
        "configuration_url": config_url,
    }
    return device, {"name": "aniworldd", "sw_version": version}


def build_components(
    mqtt: dict,
    install_id: str,
    roots: list[str] | tuple[str, ...] = (),
    hosters: bool = False,
) -> dict[str, dict]:
    """object_id -> the entity's own options (platform as `p`, unique_id, name): the part both forms share."""
    base = mqtt["base_topic"].rstrip("/")
    return {
        spec.object_id: {
            "p": spec.component,
            "name": spec.name,
            "unique_id": f"aniworldd_{install_id}_{spec.object_id}",
            **spec.options,
        }
        for spec in entity_specs(base, roots, hosters)
    }


def build_discovery(
    mqtt: dict,
    install_id: str,
    version: str,
    config_url: str,
    roots: list[str] | tuple[str, ...] = (),
    hosters: bool = False,
) -> dict[str, dict]:
    """Map of discovery topic -> config payload (empty when discovery is off), in `mqtt.discovery_mode`."""
    if not mqtt.get("discovery", True):
        return {}
    base = mqtt["base_topic"].rstrip("/")
    prefix = mqtt["discovery_prefix"].rstrip("/")
    node = node_id(install_id)
    device, origin = _device(mqtt, install_id, version, config_url)
    availability = {
        "availability_topic": f"{base}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    components = build_components(mqtt, install_id, roots, hosters)
    if discovery_mode(mqtt) == "device":
        payload = {"device": device, "origin": origin, **availability, "components": components}
        return {device_topic(prefix, install_id): payload}
    out: dict[str, dict] = {}
    for object_id, options in components.items():
        options = dict(options)
        component = options.pop("p")
        out[f"{prefix}/{component}/{node}/{object_id}/config"] = {
            "name": options.pop("name"),
            "unique_id": options.pop("unique_id"),
            **availability,
            "device": device,
            "origin": origin,
            **options,
        }
    return out


def device_topic(prefix: str, install_id: str) -> str:
    """The device-discovery topic; its object id is the per-component form's node id (HA's migration
    advice), so both forms name each entity's discovery id `<node> <object_id>` alike."""
    return f"{prefix.rstrip('/')}/device/{node_id(install_id)}/config"


def is_device_topic(topic: str) -> bool:
    parts = topic.split("/")
    return len(parts) >= 4 and parts[-3] == "device" and parts[-1] == "config"


def components_of(topic: str, payload: dict) -> dict[str, str]:
    """object_id -> platform of what a discovery payload sets up (the registry's record of it)."""
    if is_device_topic(topic):
        return {oid: str(c.get("p")) for oid, c in (payload.get("components") or {}).items()}
    parts = topic.split("/")
    return {parts[-2]: parts[-4]} if len(parts) >= 4 else {}


@dataclass
class Published:
    """What this install last published: topics, and per device topic its components and platforms."""

    topics: set[str] = field(default_factory=set)
    components: dict[str, dict[str, str]] = field(default_factory=dict)


class DiscoveryRegistry:
    """The discovery topics (and device components) last published by this install
    (data_dir/mqtt_discovery.json; the older `{"topics": [...]}` form reads fine)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / REGISTRY_FILE

    def load(self) -> Published:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Published()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return Published()
        if not isinstance(doc, dict):
            return Published()
        topics = {t for t in doc.get("topics") or [] if _valid_topic(t)}
        components: dict[str, dict[str, str]] = {}
        for topic, comps in (doc.get("components") or {}).items():
            if topic in topics and isinstance(comps, dict):
                components[topic] = {
                    str(k): str(v) for k, v in comps.items() if isinstance(k, str) and isinstance(v, str)
                }
        return Published(topics, components)

    def save(self, published: Published) -> None:
        doc = {
            "topics": sorted(published.topics),
            "components": {t: dict(sorted(c.items())) for t, c in sorted(published.components.items())},
        }
        atomic_write(self.path, json.dumps(doc, indent=2) + "\n")


def _valid_topic(topic: object) -> bool:
    return isinstance(topic, str) and bool(topic) and "#" not in topic and "+" not in topic
