"""config.example.yaml stays the complete, commented reference of the schema, showing the defaults."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from aniworldd.config import SCHEMA, parse_yaml, schema_keys, validate_document

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def _dotted_keys(doc: object, prefix: str = "") -> set[str]:
    """Dotted keys of the example; free-form mappings (`provider.resolve: {name: address}`) are leaves."""
    keys: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            keys.add(name)
            if name not in FREE_FORM:
                keys |= _dotted_keys(value, name)
    return keys


#: Keys whose value is a mapping with user-chosen keys, not a section.
FREE_FORM = {"provider.resolve", "provider.last_resort"}


def test_every_schema_key_is_in_the_example() -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    present = _dotted_keys(doc)
    missing = [k for k in schema_keys() if k not in present]
    assert missing == []
    assert len(schema_keys()) > 60  # the schema walk itself works (guards against an empty comparison)


def test_the_example_has_no_key_the_schema_does_not_know() -> None:
    known = set(schema_keys())
    extra = sorted(k for k in _dotted_keys(yaml.safe_load(EXAMPLE.read_text())) if k not in known)
    assert extra == []


def test_the_example_shows_the_defaults() -> None:
    """Validating the example gives exactly what an empty file gives: every value shown is the default."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    from_example, issues = validate_document(doc, str(EXAMPLE))
    assert issues == []
    assert from_example == SCHEMA({})


def test_every_option_is_commented() -> None:
    """Each leaf option has an inline comment or a comment line right above it (or above its section key)."""
    text = EXAMPLE.read_text()
    lines = text.splitlines()
    _, line_of = parse_yaml(text, str(EXAMPLE))
    doc = yaml.safe_load(text)
    leaves = [k for k in schema_keys() if not isinstance(_lookup(doc, k), dict)]
    uncommented = []
    for key in leaves:
        n = line_of[tuple(key.split("."))] - 1
        inline = re.search(r"\s#\s", lines[n])
        above = n > 0 and lines[n - 1].strip().startswith("#")
        if not (inline or above):
            uncommented.append(key)
    assert uncommented == []


def _lookup(doc: dict, dotted: str) -> object:
    value: object = doc
    for part in dotted.split("."):
        value = value[part]  # type: ignore[index]
    return value


def test_config_check_accepts_the_example() -> None:
    """The installed command, as a user runs it (without ANIWORLDD_* variables leaking in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")}
    result = subprocess.run(
        [sys.executable, "-m", "aniworldd", "config", "check", str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
