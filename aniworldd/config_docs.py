"""What each config option is, for people: its type, default, unit, allowed values and what it does.

One source each: the type, default and allowed values come from the voluptuous schema in aniworldd.config
(never a second list), and the description is the comment that config.example.yaml writes next to the key
(or on the lines right above it). The web UI's config page renders its controls and help texts from this
(GET /api/config/schema), so a new option documented in the example file shows up there by itself.

The example lives inside the package (aniworldd/config.example.yaml, so an installed wheel has it); the
`config.example.yaml` at the top of the repository, the one the README and `make run` name, is a symlink to
it: one file, never two copies to keep in step.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Callable
from typing import Any

import voluptuous as vol
import yaml

from aniworldd import config as cfg

EXAMPLE_NAME = "config.example.yaml"

#: Sections in the order a person goes through them: what they use every day first, the house last.
#: `general` holds the top-level keys (data_dir).
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("library", "Library", "Where the series live and how downloaded files are named."),
    ("downloads", "Downloads", "Which languages, hosters and quality are fetched, and how many at once."),
    ("provider", "Provider", "How the daemon reaches aniworld.to and s.to: addresses, DNS, proxy, pacing."),
    ("notifications", "Notifications", "Webhooks and push notifications (Apprise) on downloads and scans."),
    ("mqtt", "MQTT", "Home Assistant and other MQTT clients; off while no broker host is set."),
    ("server", "Server", "The HTTP server of the API and this web UI."),
    ("general", "Data", "Where the daemon keeps its database, secrets and backups."),
    ("database", "Database", "SQLite by default, PostgreSQL when asked."),
    ("cluster", "Cluster", "More than one process (API processes and download workers): Redis and roles."),
    ("auth", "Login", "Login tokens, login limits and API keys."),
    ("logging", "Logging", "How much the daemon writes to its log."),
)

#: The short list shown first; everything else sits under "Advanced".
ESSENTIAL = frozenset(
    {
        "library.roots",
        "library.naming",
        "downloads.language",
        "downloads.hosters",
        "downloads.quality",
        "downloads.max_concurrent",
        "downloads.speed_limit",
        "downloads.auto_queue",
        "mqtt.host",
        "notifications.webhooks",
        "notifications.apprise",
    }
)

_UNIT_SUFFIXES = (("_gb", "GB"), ("_bytes", "bytes"))
_EXAMPLE_LINE = re.compile(r"^#(\s{2,}|\s?-\s)")  # `#   events: [...]`, `# - url: ...`: commented-out YAML


# ---- descriptions from the example file ---------------------------------------------------------------


def example_text() -> str:
    """The example config shipped with the package ("" when a broken install lacks it)."""
    try:
        return importlib.resources.files("aniworldd").joinpath(EXAMPLE_NAME).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return ""


def _comment_above(lines: list[str], line: int, column: int) -> list[str]:
    """The comment lines directly above a key, at its indentation, stopping at commented-out YAML."""
    found: list[str] = []
    n = line - 1
    while n >= 0:
        raw = lines[n]
        text = raw.strip()
        if not text.startswith("#") or len(raw) - len(raw.lstrip()) != column or _EXAMPLE_LINE.match(text):
            break
        found.insert(0, text[1:].strip())
        n -= 1
    return found


def _inline_comment(lines: list[str], value: yaml.Node) -> str:
    """The `# ...` after a one-line value (searched after the value: a `#` inside quotes is no comment)."""
    if (
        value.start_mark.line != value.end_mark.line
        or isinstance(value, yaml.MappingNode)
        and not value.flow_style
    ):
        return ""
    rest = lines[value.end_mark.line][value.end_mark.column :]
    m = re.match(r"^\s+#\s?(.*)$", rest)
    return m.group(1).strip() if m else ""


def _sentence(parts: list[str]) -> str:
    """Comment pieces as one help text: each piece starts upper case and ends with a full stop."""
    pieces = [p.strip().rstrip(":").strip() for p in parts if p.strip()]
    return " ".join(p[:1].upper() + p[1:] + ("" if p[-1] in ".!?)" else ".") for p in pieces if p)


def comments(text: str) -> dict[str, str]:
    """Dotted key -> its comment in a YAML text: the inline comment, then the comment lines above it."""
    if not text:
        return {}
    lines = text.splitlines()
    out: dict[str, str] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode) or node.flow_style:
            return
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            above = " ".join(_comment_above(lines, key.start_mark.line, key.start_mark.column))
            out[path] = _sentence([_inline_comment(lines, value), above])
            walk(value, path)

    walk(yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), "")
    return out


# ---- types from the voluptuous schema -------------------------------------------------------------------


def _return_hint(fn: Callable) -> str:
    hint = getattr(fn, "__annotations__", {}).get("return", "")
    return hint if isinstance(hint, str) else getattr(hint, "__name__", str(hint))


def _merge(into: dict, more: dict) -> dict:
    for k, v in more.items():
        if k == "type" and "type" in into and into["type"] != "string":
            continue  # the first validator that names a type wins (vol.All(Duration, Range) is a duration)
        if k == "type" and into.get("type") == "string" and v == "string":
            continue
        into[k] = v
    return into


def describe(validator: Any) -> dict:
    """Type information of one voluptuous validator: type, choices, min/max, nullable, item, fields."""
    if validator is bool:
        return {"type": "bool"}
    if validator is int:
        return {"type": "int"}
    if validator is float:
        return {"type": "float"}
    if validator is str:
        return {"type": "string"}
    if validator is cfg.Duration:
        return {"type": "duration", "unit": "seconds"}
    if validator is cfg.Rate:
        return {"type": "rate", "unit": "bytes/s", "nullable": True}
    if isinstance(validator, vol.In):
        return {"type": "enum", "choices": list(validator.container)}
    if isinstance(validator, vol.Range):
        return {k: v for k, v in (("min", validator.min), ("max", validator.max)) if v is not None}
    if isinstance(validator, vol.Coerce):
        return {"type": "float" if validator.type is float else "int"}
    if isinstance(validator, vol.All):
        info: dict = {}
        for v in validator.validators:
            if isinstance(v, vol.Length):  # a capped list or mapping: the bounds are not the item's
                continue
            _merge(info, describe(v))
        return info or {"type": "string"}
    if isinstance(validator, vol.Any):
        options = [v for v in validator.validators if v is not None]
        info = describe(options[0]) if len(options) == 1 else {"type": "string"}
        if len(options) < len(validator.validators):
            info["nullable"] = True
        return info
    if isinstance(validator, list):
        item = describe(validator[0]) if validator else {"type": "string"}
        info = {"type": "list", "item": item}
        if item.get("type") == "enum":
            info["choices"] = item["choices"]
        return info
    if isinstance(validator, vol.Schema):
        inner = validator.schema
        if isinstance(inner, dict) and inner and all(isinstance(k, vol.Marker) for k in inner):
            return {"type": "object", "fields": _fields(inner)}
        if isinstance(inner, dict):
            return {"type": "mapping"}
        return describe(inner)
    if callable(validator):
        hint = _return_hint(validator)
        info = {"type": "list" if hint.startswith("list") else "string"}
        if info["type"] == "list":
            info["item"] = {"type": "string"}
        if "None" in hint:
            info["nullable"] = True
        return info
    return {"type": "string"}


def _fields(schema: dict) -> list[dict]:
    """The keys of one list item (a webhook: url, events, timeout) with their types and defaults."""
    fields = []
    for key, validator in schema.items():
        entry = {"name": str(key.schema), **describe(validator), "required": isinstance(key, vol.Required)}
        default = key.default() if callable(key.default) and key.default is not vol.UNDEFINED else None
        if not isinstance(key, vol.Required):
            entry["default"] = default
        fields.append(entry)
    return fields


def _is_section(validator: Any) -> bool:
    return (
        isinstance(validator, vol.Schema)
        and isinstance(validator.schema, dict)
        and all(isinstance(k, vol.Marker) for k in validator.schema)
        and getattr(validator, "extra", None) == vol.PREVENT_EXTRA
        and bool(validator.schema)
    )


def _leaves(schema: vol.Schema, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted path, validator) of every option; sub-sections (mqtt.tls) are walked into."""
    out: list[tuple[str, Any]] = []
    for key, validator in schema.schema.items():
        path = f"{prefix}.{key.schema}" if prefix else str(key.schema)
        if _is_section(validator):
            out += _leaves(validator, path)
        else:
            out.append((path, validator))
    return out


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _unit(path: str, info: dict) -> str | None:
    if info.get("unit"):
        return info["unit"]
    return next((unit for suffix, unit in _UNIT_SUFFIXES if path.endswith(suffix)), None)


@functools.cache
def config_schema() -> dict:
    """Sections (in human order) and every option with its type, default and description.

    Computed once (the schema and the example file do not change while the daemon runs); callers copy
    before adding to it (api/config.py adds what is secret and what needs a login)."""
    described = comments(example_text())
    defaults = cfg.SCHEMA({})
    options = []
    for path, validator in _leaves(cfg.SCHEMA):
        section = path.split(".", 1)[0] if "." in path else "general"
        info = describe(validator)
        entry = {
            "path": path,
            "section": section,
            **info,
            "default": _get(defaults, path),
            "unit": _unit(path, info),
            "description": described.get(path, ""),
            "restart": path not in cfg.LIVE_KEYS,
            "essential": path in ESSENTIAL,
        }
        entry.setdefault("nullable", entry["default"] is None)
        options.append(entry)
    order = [s[0] for s in SECTIONS]
    options.sort(key=lambda o: order.index(o["section"]) if o["section"] in order else len(order))
    return {
        "sections": [{"id": i, "title": t, "description": d} for i, t, d in SECTIONS],
        "options": options,
    }
