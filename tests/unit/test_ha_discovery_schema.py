"""Our discovery payloads through Home Assistant's own MQTT discovery schemas.

Runs only where the `homeassistant` package is importable: it needs Python >= 3.13 (3.12 for older
releases), and the project's venv is 3.11, so here it is skipped with that reason. On a machine with
`pip install homeassistant` it validates every component (platform schema incl. unit/device-class rules)
and the device-based payload (DEVICE_DISCOVERY_SCHEMA).
"""

from __future__ import annotations

import importlib

import pytest

from aniworldd.mqtt.discovery import build_components, build_discovery

pytest.importorskip(
    "homeassistant.components.mqtt.schemas",
    reason="homeassistant is not installable here (needs Python >= 3.13; this venv is 3.11)",
)

MQTT = {"base_topic": "aniworld", "discovery_prefix": "homeassistant", "client_id": "aniworldd"}
INSTALL = "0123456789abcdef"


def test_every_component_passes_its_platform_schema() -> None:
    components = build_components(MQTT, INSTALL, roots=["/srv/anime"], hosters=True)
    for object_id, config in components.items():
        config = dict(config)
        platform = config.pop("p")
        module = importlib.import_module(f"homeassistant.components.mqtt.{platform}")
        validated = module.DISCOVERY_SCHEMA(config)  # raises vol.Invalid with the offending key
        assert validated["unique_id"].endswith(object_id)


def test_device_payload_passes_the_device_discovery_schema() -> None:
    from homeassistant.components.mqtt.schemas import DEVICE_DISCOVERY_SCHEMA

    [payload] = build_discovery(
        {**MQTT, "discovery_mode": "device"}, INSTALL, "1.0", "http://nas:8080"
    ).values()
    validated = DEVICE_DISCOVERY_SCHEMA(payload)
    assert set(validated["components"]) == set(payload["components"])


def test_component_payloads_pass_with_device_and_availability() -> None:
    configs = build_discovery({**MQTT, "discovery_mode": "components"}, INSTALL, "1.0", "http://nas:8080")
    for topic, config in configs.items():
        platform = topic.split("/")[1]
        importlib.import_module(f"homeassistant.components.mqtt.{platform}").DISCOVERY_SCHEMA(config)
