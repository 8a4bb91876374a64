"""HA discovery building blocks without a broker: install id, configuration URL, the contrib YAML."""

from __future__ import annotations

import gzip
import json
import re
import stat
from pathlib import Path

import pytest
import yaml

from aniworldd.mqtt.discovery import (
    INSTALL_ID_FILE,
    build_components,
    build_discovery,
    configuration_url,
    load_install_id,
)
from aniworldd.mqtt.sampling import hosters_payload, rate_mibps, rate_setting, settings_payload
from aniworldd.mqtt.state import MirrorState, dumps

ROOT = Path(__file__).resolve().parents[2]
MQTT = {
    "base_topic": "aniworld",
    "discovery_prefix": "homeassistant",
    "discovery": True,
    "client_id": "aniworldd",
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _entity_ids() -> set[str]:
    """The entity ids HA derives for discovered entities: <domain>.<device name>_<entity name>
    (one library root, hoster health tracked: every entity the daemon can offer)."""
    out = set()
    mqtt = {**MQTT, "discovery_mode": "components"}
    configs = build_discovery(
        mqtt, "0123456789abcdef", "1.0", "http://nas:8080", roots=["/lib"], hosters=True
    )
    for topic, cfg in configs.items():
        out.add(f"{topic.split('/')[1]}.{_slug(cfg['device']['name'] + ' ' + cfg['name'])}")
    return out


def _icons() -> list[str]:
    components = build_components(MQTT, "0123456789abcdef", roots=["/a", "/b"], hosters=True)
    return [c["icon"] for c in components.values() if "icon" in c]


def test_every_icon_exists_in_the_material_design_icon_set() -> None:
    """HA shows a blank icon for an mdi: name it does not ship (mdi:playlist-clock was one)."""
    with gzip.open(ROOT / "tests/data/mdi-icons-7.4.47.txt.gz", "rt") as f:
        known = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    assert len(known) > 7000 and "playlist-clock" not in known
    icons = _icons()
    assert len(icons) > 15
    assert [i for i in icons if not i.startswith("mdi:") or i[4:] not in known] == []


def test_device_and_component_forms_describe_the_same_entities() -> None:
    """Device discovery (HA 2024.11+) and the per-component fallback: same platforms, unique ids, options."""
    install = "0123456789abcdef"
    device = build_discovery({**MQTT, "discovery_mode": "device"}, install, "1.0", "http://x", roots=["/lib"])
    parts = build_discovery(
        {**MQTT, "discovery_mode": "components"}, install, "1.0", "http://x", roots=["/lib"]
    )
    [(topic, doc)] = device.items()
    assert topic == "homeassistant/device/aniworldd_0123456789ab/config"
    assert doc["device"]["identifiers"] == [f"aniworldd_{install}"] and doc["origin"]["name"] == "aniworldd"
    assert doc["availability_topic"] == "aniworld/status"
    flat = {}
    for object_id, comp in doc["components"].items():
        comp = dict(comp)
        flat[(comp.pop("p"), object_id)] = comp
    assert len(flat) == len(parts)
    for part_topic, part in parts.items():
        _, platform, node, object_id, _ = part_topic.split("/")
        assert node == "aniworldd_0123456789ab"  # the device topic's object id: HA's migration advice
        shared = {k: part.pop(k) for k in ("device", "origin", "availability_topic", "payload_available")}
        shared["payload_not_available"] = part.pop("payload_not_available")
        assert shared["device"] == doc["device"] and shared["availability_topic"] == doc["availability_topic"]
        assert flat[(platform, object_id)] == part, object_id
        assert part["unique_id"] == f"aniworldd_{install}_{object_id}"


def test_speed_and_settings_units() -> None:
    components = build_components(MQTT, "0123456789abcdef")
    assert components["download_speed"]["unit_of_measurement"] == "MiB/s"
    assert components["speed_limit"]["unit_of_measurement"] == "MiB/s"
    assert rate_mibps("5M") == 5.0 and rate_mibps("512K") == 0.5 and rate_mibps(None) == 0.0
    assert rate_setting(0) is None and rate_setting(5) == "5M" and rate_setting(2.5) == "2560K"
    assert rate_mibps(rate_setting(2.5)) == 2.5
    assert settings_payload(
        {"max_concurrent": 3, "speed_limit": "1G", "language": ["eng-sub", "ger-sub"]}
    ) == {
        "max_concurrent": 3,
        "speed_limit_mibps": 1024.0,
        "language": "eng-sub",
        "languages": ["eng-sub", "ger-sub"],
    }


@pytest.mark.parametrize(
    ("until", "healthy"),
    [(None, 1), ("2000-01-01T00:00:00Z", 1), ("2999-01-01T00:00:00Z", 0), (4102444800.0, 0), (1.0, 1)],
)
def test_hoster_health_counts_hosters_not_cooling_down(until: object, healthy: int) -> None:
    payload = hosters_payload({"VOE": {"attempts": 3, "cooling_down_until": until}})
    assert (
        payload["total"] == 1 and payload["healthy"] == healthy and payload["hosters"]["VOE"]["attempts"] == 3
    )


def test_install_id_is_created_once_private_and_replaced_when_garbage(tmp_path: Path) -> None:
    first = load_install_id(tmp_path)
    assert load_install_id(tmp_path) == first
    path = tmp_path / INSTALL_ID_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("../../etc\n")
    replaced = load_install_id(tmp_path)
    assert replaced != first and re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_configuration_url_prefers_public_url_and_avoids_wildcard_hosts() -> None:
    assert (
        configuration_url({"public_url": "https://a.lan/", "host": "0.0.0.0", "port": 1}) == "https://a.lan/"
    )
    assert (
        configuration_url({"public_url": None, "host": "127.0.0.1", "port": 8080}) == "http://127.0.0.1:8080"
    )
    assert "0.0.0.0" not in configuration_url({"public_url": None, "host": "0.0.0.0", "port": 8080})
    assert configuration_url({"public_url": None, "host": "::1", "port": 81}) == "http://[::1]:81"


def test_discovery_off_publishes_nothing() -> None:
    assert build_discovery({**MQTT, "discovery": False}, "0123456789abcdef", "1", "http://x") == {}


def test_contrib_dashboard_uses_only_discovered_entities() -> None:
    doc = yaml.safe_load((ROOT / "contrib/homeassistant/dashboard.yaml").read_text())
    text = yaml.safe_dump(doc)
    referenced = set(
        re.findall(
            r"\b(?:sensor|binary_sensor|switch|button|number|select|update|event)\.aniworldd_[a-z_]+", text
        )
    )
    known = _entity_ids()
    assert referenced, "dashboard references no entities"
    assert referenced <= known, referenced - known
    assert known <= referenced, f"entities missing from the dashboard: {known - referenced}"


def test_contrib_automation_listens_to_failed_downloads_on_the_event_topic() -> None:
    doc = yaml.safe_load((ROOT / "contrib/homeassistant/automation-download-failed.yaml").read_text())
    trigger = doc["triggers"][0]
    assert trigger["trigger"] == "mqtt" and trigger["topic"] == f"{MQTT['base_topic']}/event"
    assert trigger["payload"] == "download_failed"
    assert trigger["qos"] == 1  # events are QoS 1; a QoS 0 subscription downgrades them
    assert doc["id"] and doc["actions"][-1]["action"].startswith("notify.")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    message = doc["actions"][-1]["data"]["message"]
    data = {"key": "k", "folder": "K", "season": 1, "episode": 2, "attempts": 3, "reason": "gone"}
    env = ImmutableSandboxedEnvironment()
    without = env.from_string(message).render(d={**data, "language": None})
    assert "None" not in without and "S01E002" in without and "gone" in without
    assert "(ger-sub)" in env.from_string(message).render(d={**data, "language": "ger-sub"})


def test_state_payloads_serialise_database_rows() -> None:
    from datetime import UTC, datetime

    state = MirrorState()
    state.set_queue_status(
        {
            "is_running": True,
            "is_paused": False,
            "active_downloads": [
                {
                    "id": 3,
                    "key": "k",
                    "serie_folder": "K",
                    "season": 1,
                    "episode": 2,
                    "progress": 12.345,
                    "speed": 2.5,
                    "eta": 9,
                    "created_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                }
            ],
            "statistics": {"speed_mbps": 0},
        }
    )
    text = dumps(state.active_payload())
    assert '"download_id":3' in text and json.loads(dumps(state.queue_payload()))["is_running"] is True
    active = state.active_payload()
    assert active["count"] == 1 and active["downloads"][0]["percent"] == 12.35
    assert active["speed_mbps"] == 2.5


def test_hoster_health_follows_the_trackers_state() -> None:
    from aniworldd.services.hoster_health import HosterHealth

    clock = [1_000_000.0]
    health = HosterHealth(
        None, failures_before_cooldown=2, cooldown_s=60, hosters=["VOE", "Vidoza"], clock=lambda: clock[0]
    )
    assert hosters_payload(health.snapshot())["healthy"] == 2  # untried hosters are usable
    health.record_failure("VOE", "HTTP 404")
    assert hosters_payload(health.snapshot())["healthy"] == 1  # failing
    health.record_failure("VOE", "HTTP 404")
    payload = hosters_payload(health.snapshot())
    assert payload["healthy"] == 1 and payload["hosters"]["VOE"]["state"] == "cooling_down"
    health.record_success("VOE")
    assert hosters_payload(health.snapshot())["healthy"] == 2
