"""What Home Assistant makes of our discovery and state topics, without Home Assistant.

HA renders an entity's `value_template` / `json_attributes_template` with Jinja2 against each MQTT payload
(`value_json` = the parsed JSON). This renders the same templates with a sandboxed Jinja2 environment (HA's
templates are Jinja2 too; the filters used here, `int(0)`, `float(0)`, `tojson` and the `dict()` global,
are plain Jinja2), so tests can assert what an entity's state and attributes become after a message.
It also flattens both discovery forms (per component, device with `components`) into one entity map.
"""

from __future__ import annotations

import json
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment()
#: HA keeps no attributes above this size (recorder: "attributes will not be stored").
HA_ATTRIBUTE_LIMIT = 16384
#: Options of a device discovery payload shared by every component (HA's SHARED_OPTIONS + device/origin).
_SHARED = (
    "device",
    "origin",
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "state_topic",
    "command_topic",
    "qos",
    "encoding",
)


def flatten(topic: str, payload: dict) -> dict[tuple[str, str], dict]:
    """(platform, object_id) -> the entity's complete config, from either discovery form."""
    parts = topic.split("/")
    if parts[-3] == "device":
        shared = {k: payload[k] for k in _SHARED if k in payload}
        out = {}
        for object_id, comp in (payload.get("components") or {}).items():
            comp = dict(comp)
            platform = comp.pop("p")
            if len(comp) == 0:
                continue  # {"p": ...} alone: the component is being removed
            out[(platform, object_id)] = {**shared, **comp}
        return out
    return {(parts[-4], parts[-2]): dict(payload)}


def render(template: str, payload: bytes | str) -> str:
    text = payload.decode() if isinstance(payload, bytes) else payload
    try:
        value_json = json.loads(text)
    except ValueError:
        value_json = None
    return _ENV.from_string(template).render(value=text, value_json=value_json).strip()


def state_of(config: dict, payload: bytes | str) -> str:
    """The entity state HA would show for this payload on its state topic."""
    template = config.get("value_template")
    return (
        render(template, payload)
        if template
        else (payload.decode() if isinstance(payload, bytes) else payload)
    )


def attributes_of(config: dict, payload: bytes | str) -> dict:
    """The attributes HA would take from this payload on the entity's json_attributes_topic."""
    template = config.get("json_attributes_template")
    doc = json.loads(render(template, payload)) if template else json.loads(payload)
    assert isinstance(doc, dict), "HA ignores attributes that are not a JSON object"
    return doc


def attributes_size(attributes: dict) -> int:
    return len(json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).encode())


def event_of(config: dict, payload: bytes | str) -> dict | None:
    """What an MQTT event entity fires for this payload: {"event_type", ...attributes}, or None (ignored)."""
    rendered = state_of(config, payload)
    if not rendered or rendered in ("None", "{}"):
        return None
    doc = json.loads(rendered)
    assert doc["event_type"] in config["event_types"], doc
    return doc


def entities_from(messages: list[Any], prefix: str, after: int = 0) -> dict[tuple[str, str], dict]:
    """The entities HA would have after these messages: the latest discovery payload per topic wins, an
    empty payload deletes, `{"migrate_discovery": true}` unloads (and is not an entity)."""
    topics: dict[str, dict] = {}
    for m in messages[after:]:
        if not (m.topic.startswith(prefix + "/") and m.topic.endswith("/config")):
            continue
        if not m.payload:
            topics.pop(m.topic, None)
            continue
        doc = json.loads(m.payload)
        if doc == {"migrate_discovery": True}:
            topics.pop(m.topic, None)
        else:
            topics[m.topic] = doc
    out: dict[tuple[str, str], dict] = {}
    for topic, doc in topics.items():
        out.update(flatten(topic, doc))
    return out
