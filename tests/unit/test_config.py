"""Config: defaults, errors with file/line/path, env overrides, the CLI check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aniworldd.config import ConfigError, check_file, load_config, load_text, schema_keys


def test_empty_file_is_valid_with_every_section(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    cfg = load_config(path, env={})
    assert set(cfg) >= {
        "data_dir",
        "server",
        "library",
        "downloads",
        "provider",
        "database",
        "auth",
        "mqtt",
        "logging",
        "notifications",
    }
    assert cfg["server"] == {
        "host": "127.0.0.1",
        "port": 8080,
        "public_url": None,
        "max_body_bytes": 1048576,
        "max_connections": 4096,
        "header_timeout": 15.0,
        "cors_origins": [],
        "trusted_proxies": [],
    }
    assert cfg["data_dir"] == str(tmp_path / "data")
    assert cfg["library"]["roots"] == [str(tmp_path / "data" / "library")]
    assert cfg["database"]["url"] == f"sqlite:///{tmp_path / 'data' / 'aniworldd.db'}"
    assert cfg["downloads"]["temp_dir"] == str(tmp_path / "data" / "library" / ".aniworldd-tmp")
    assert cfg["mqtt"]["host"] is None
    assert cfg["provider"]["refresh_interval"] == 6 * 3600


def test_durations_accept_units(tmp_path: Path) -> None:
    cfg = load_text("provider:\n  refresh_interval: 2h\n  timeout: 1500ms\nauth:\n  token_ttl: 1d\n", env={})
    assert cfg["provider"]["refresh_interval"] == 7200
    assert cfg["provider"]["timeout"] == 1.5
    assert cfg["auth"]["token_ttl"] == 86400


def test_three_mistakes_reported_with_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "server:\n"
        "  port: 8080\n"
        "downloads:\n"
        "  max_concurrent: two\n"
        "  language:\n"
        "    - ger-dub\n"
        "    - klingon\n"
        "mqtt:\n"
        "  hots: broker\n"
    )
    issues = check_file(path, env={})
    assert [str(i) for i in issues] == [
        f"{path}:4 downloads.max_concurrent: expected int",
        f"{path}:7 downloads.language[1]: expected one of ger-dub, ger-sub, eng-sub, eng-dub",
        f"{path}:9 mqtt.hots: unknown key",
    ]


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  port: [1, 2\nlibrary: {}\n")
    issues = check_file(path, env={})
    assert len(issues) == 1 and issues[0].line is not None and "YAML syntax error" in issues[0].message


def test_top_level_must_be_mapping() -> None:
    with pytest.raises(ConfigError) as exc:
        load_text("- a\n- b\n", env={})
    assert "expected a mapping" in str(exc.value)


def test_env_overrides_typed_values() -> None:
    cfg = load_text(
        "server:\n  port: 8080\n",
        env={
            "ANIWORLDD_SERVER__PORT": "9000",
            "ANIWORLDD_MQTT__HOST": "broker.local",
            "ANIWORLDD_MQTT__TLS__ENABLED": "true",
            "ANIWORLDD_MASTER_PASSWORD": "not-a-config-key",
            "OTHER": "x",
        },
    )
    assert cfg["server"]["port"] == 9000
    assert cfg["mqtt"]["host"] == "broker.local"
    assert cfg["mqtt"]["tls"]["enabled"] is True


def test_env_override_error_names_the_variable() -> None:
    with pytest.raises(ConfigError) as exc:
        load_text("", env={"ANIWORLDD_SERVER__PORT": "http"})
    assert str(exc.value.issues[0]) == "env ANIWORLDD_SERVER__PORT server.port: expected int"


def test_naming_template_cannot_escape_root() -> None:
    with pytest.raises(ConfigError) as exc:
        load_text("library:\n  naming: '../{name}.{ext}'\n", env={})
    assert "inside the library root" in str(exc.value)


def test_schema_keys_lists_nested_keys() -> None:
    keys = schema_keys()
    assert "downloads.max_concurrent" in keys and "mqtt.tls.ca_file" in keys and "data_dir" in keys


def test_cli_config_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: x\n")
    good = tmp_path / "good.yaml"
    good.write_text("server:\n  port: 8081\n")
    run = [sys.executable, "-m", "aniworldd", "config", "check"]
    res = subprocess.run([*run, str(bad)], capture_output=True, text=True)
    assert res.returncode == 1 and f"{bad}:2 server.port: expected int" in res.stdout
    res = subprocess.run([*run, str(good)], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok"


def test_changed_keys_names_section_and_key() -> None:
    from aniworldd.config import changed_keys

    old = {"server": {"port": 8080, "host": "127.0.0.1"}, "downloads": {"max_concurrent": 2}, "data_dir": "a"}
    new = {"server": {"port": 9000, "host": "127.0.0.1"}, "downloads": {"max_concurrent": 2}, "data_dir": "b"}
    assert changed_keys(old, new) == ["data_dir", "server.port"]
    assert changed_keys(old, old) == []
    assert changed_keys({"mqtt": {"host": None}}, {"mqtt": {"host": "broker", "port": 1883}}) == [
        "mqtt.host",
        "mqtt.port",
    ]
