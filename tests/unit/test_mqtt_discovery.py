"""HA discovery building blocks without a broker: install id, configuration URL, the contrib YAML."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import yaml

from aniworldd.mqtt.discovery import (
    INSTALL_ID_FILE,
    build_discovery,
    configuration_url,
    load_install_id,
)
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
    """The entity ids HA derives for discovered entities: <domain>.<device name>_<entity name>."""
    out = set()
    for topic, cfg in build_discovery(MQTT, "0123456789abcdef", "1.0", "http://nas:8080").items():
        out.add(f"{topic.split('/')[1]}.{_slug(cfg['device']['name'] + ' ' + cfg['name'])}")
    return out


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
    referenced = set(re.findall(r"\b(?:sensor|binary_sensor|switch|button)\.aniworldd_[a-z_]+", text))
    known = _entity_ids()
    assert referenced, "dashboard references no entities"
    assert referenced <= known, referenced - known
    assert known <= referenced, f"entities missing from the dashboard: {known - referenced}"


def test_contrib_automation_listens_to_failed_downloads_on_the_event_topic() -> None:
    doc = yaml.safe_load((ROOT / "contrib/homeassistant/automation-download-failed.yaml").read_text())
    trigger = doc["triggers"][0]
    assert trigger["trigger"] == "mqtt" and trigger["topic"] == f"{MQTT['base_topic']}/event"
    assert trigger["payload"] == "download_failed"
    assert doc["actions"][-1]["action"].startswith("notify.")


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
    text = dumps(state.queue_payload())
    assert '"created_at":"2024-01-02T03:04:05.000Z"' in text
    active = state.active_payload()
    assert active["count"] == 1 and active["downloads"][0]["percent"] == 12.35
    assert active["speed_mbps"] == 2.5
