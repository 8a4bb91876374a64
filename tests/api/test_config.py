"""/api/config: read, validate, save with backup, restore — against a real config file."""

from __future__ import annotations

from pathlib import Path

import yaml

from aniworldd import events
from tests.api.conftest import Api


def _doc(api: Api) -> dict:
    return yaml.safe_load(api.ctx.config_path.read_text())


async def test_get_returns_document_and_effective(logged_in: Api) -> None:
    status, data = await logged_in.call("GET", "/api/config")
    assert status == 200
    assert data["config"] == _doc(logged_in)
    assert data["effective"]["downloads"]["max_concurrent"] == 2  # a default, not in the file
    assert "max_concurrent" not in data["config"]["downloads"]
    status, again = await logged_in.call("GET", "/api/config/")
    assert status == 200 and again == data


async def test_put_saves_atomically_with_backup_and_event(logged_in: Api) -> None:
    sub = logged_in.ctx.bus.subscribe({events.CONFIG_CHANGED})
    before = logged_in.ctx.config_path.read_text()
    doc = _doc(logged_in)
    doc["downloads"]["max_concurrent"] = 4
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200
    assert data["effective"]["downloads"]["max_concurrent"] == 4
    assert _doc(logged_in)["downloads"]["max_concurrent"] == 4
    assert sub.get_nowait().type == events.CONFIG_CHANGED

    status, backups = await logged_in.call("GET", "/api/config/backups")
    assert status == 200 and len(backups) == 1
    assert set(backups[0]) == {"name", "size", "created_at"}
    backup_dir = Path(logged_in.ctx.config["data_dir"]) / "config-backups"
    assert (backup_dir / backups[0]["name"]).read_text() == before

    # the GET shape is accepted back as well
    doc["downloads"]["max_concurrent"] = 3
    status, data = await logged_in.call("PUT", "/api/config", json={"config": doc})
    assert status == 200 and _doc(logged_in)["downloads"]["max_concurrent"] == 3


async def test_put_invalid_is_422_with_paths_and_changes_nothing(logged_in: Api) -> None:
    before = logged_in.ctx.config_path.read_text()
    doc = _doc(logged_in)
    doc["downloads"]["max_concurrent"] = "many"
    doc["server"] = {"port": 70000}
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 422
    assert data["error"]["code"] == "invalid_config"
    errors = {e["path"]: e for e in data["error"]["details"]["errors"]}
    assert set(errors) == {"downloads.max_concurrent", "server.port"}
    assert errors["downloads.max_concurrent"]["message"] == "expected int"
    assert all(isinstance(e["line"], int) for e in errors.values())
    assert logged_in.ctx.config_path.read_text() == before
    status, backups = await logged_in.call("GET", "/api/config/backups")
    assert backups == []


async def test_put_rejects_non_objects(logged_in: Api) -> None:
    for payload in (b"[1, 2]", b'"text"', b"not json"):
        status, data = await logged_in.call(
            "PUT", "/api/config", data=payload, headers={"Content-Type": "application/json"}
        )
        assert status == 400, payload


async def test_validate_does_not_save(logged_in: Api) -> None:
    before = logged_in.ctx.config_path.read_text()
    status, data = await logged_in.call(
        "POST", "/api/config/validate", json={"mqtt": {"port": "x"}, "bogus": 1}
    )
    assert status == 200 and data["valid"] is False
    assert {e["path"] for e in data["errors"]} == {"mqtt.port", "bogus"}
    status, data = await logged_in.call("POST", "/api/config/validate", json={"logging": {"level": "debug"}})
    assert status == 200 and data == {"valid": True, "errors": []}
    assert logged_in.ctx.config_path.read_text() == before


async def test_restore_backup(logged_in: Api) -> None:
    original = logged_in.ctx.config_path.read_text()
    doc = _doc(logged_in)
    doc["logging"] = {"level": "DEBUG"}
    await logged_in.call("PUT", "/api/config", json=doc)
    _, backups = await logged_in.call("GET", "/api/config/backups")
    status, data = await logged_in.call("POST", f"/api/config/backups/{backups[0]['name']}/restore")
    assert status == 200
    assert yaml.safe_load(logged_in.ctx.config_path.read_text()) == yaml.safe_load(original)
    assert data["config"] == yaml.safe_load(original)


async def test_restore_errors(logged_in: Api) -> None:
    status, data = await logged_in.call("POST", "/api/config/backups/evil.yaml/restore")
    assert status == 400
    status, data = await logged_in.call(
        "POST", "/api/config/backups/config-20240101T000000000000Z.yaml/restore"
    )
    assert status == 404
    backup_dir = Path(logged_in.ctx.config["data_dir"]) / "config-backups"
    backup_dir.mkdir(parents=True, exist_ok=True)
    (backup_dir / "config-20240101T000000000000Z.yaml").write_text("downloads:\n  max_concurrent: lots\n")
    before = logged_in.ctx.config_path.read_text()
    status, data = await logged_in.call(
        "POST", "/api/config/backups/config-20240101T000000000000Z.yaml/restore"
    )
    assert status == 422 and data["error"]["details"]["errors"][0]["path"] == "downloads.max_concurrent"
    assert logged_in.ctx.config_path.read_text() == before


async def test_config_needs_auth_and_service(logged_in: Api) -> None:
    resp = await logged_in.client.get("/api/config")
    assert resp.status == 401
    logged_in.ctx.config_service = None
    status, data = await logged_in.call("GET", "/api/config")
    assert status == 503


# ---- secrets: redacted in every answer, the placeholder sent back keeps the stored value ----------------

PLACEHOLDER = "********"
MQTT_PW = "mq-s3cret!"
DB_PW = "db-s3cret@x"  # an "@" in the password must not confuse the URL handling
DB_URL = f"postgres://aniworld:{DB_PW}@db.example:5432/anime"


def _add_secrets(api: Api) -> None:
    """Secrets in the file (the store of this app was built before, so the URL is never connected to)."""
    doc = _doc(api)
    doc["mqtt"] = {"host": "broker.example", "username": "ha", "password": MQTT_PW}
    doc["database"] = {"url": DB_URL}
    api.ctx.config_path.write_text(yaml.safe_dump(doc, sort_keys=False))


async def test_get_redacts_secrets(logged_in: Api) -> None:
    _add_secrets(logged_in)
    resp = await logged_in.client.get("/api/config", headers=logged_in.headers)
    assert resp.status == 200
    text = await resp.text()
    assert MQTT_PW not in text and "db-s3cret" not in text
    data = await resp.json()
    redacted_url = f"postgres://aniworld:{PLACEHOLDER}@db.example:5432/anime"
    for part in ("config", "effective"):
        assert data[part]["mqtt"]["password"] == PLACEHOLDER, part
        assert data[part]["mqtt"]["username"] == "ha", part
        assert data[part]["database"]["url"] == redacted_url, part
    # everything that is not a secret is as written
    assert data["config"]["provider"] == _doc(logged_in)["provider"]


async def test_the_proxy_password_is_redacted_and_kept(logged_in: Api) -> None:
    proxy = "socks5h://nas:px-s3cret@proxy.example:1080"
    doc = _doc(logged_in)
    doc.setdefault("provider", {})["proxy"] = proxy
    logged_in.ctx.config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    resp = await logged_in.client.get("/api/config", headers=logged_in.headers)
    assert "px-s3cret" not in await resp.text()
    got = await resp.json()
    assert got["effective"]["provider"]["proxy"] == f"socks5h://nas:{PLACEHOLDER}@proxy.example:1080"
    status, _ = await logged_in.call("PUT", "/api/config", json={"config": got["config"]})
    assert status == 200
    assert _doc(logged_in)["provider"]["proxy"] == proxy


async def test_get_leaves_unset_secrets_alone(logged_in: Api) -> None:
    doc = _doc(logged_in)
    doc["database"] = {"url": "postgres://aniworld@db.example/anime"}  # no password in the URL
    logged_in.ctx.config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    status, data = await logged_in.call("GET", "/api/config")
    assert status == 200
    assert data["effective"]["mqtt"]["password"] is None
    assert "mqtt" not in data["config"]
    assert data["config"]["database"]["url"] == "postgres://aniworld@db.example/anime"


async def test_put_with_placeholders_keeps_the_stored_secrets(logged_in: Api) -> None:
    _add_secrets(logged_in)
    _, got = await logged_in.call("GET", "/api/config")
    doc = got["config"]
    doc["downloads"]["max_concurrent"] = 4
    status, data = await logged_in.call("POST", "/api/config/validate", json=doc)
    assert status == 200 and data == {"valid": True, "errors": []}

    status, data = await logged_in.call("PUT", "/api/config", json={"config": doc})
    assert status == 200
    saved = _doc(logged_in)
    assert saved["downloads"]["max_concurrent"] == 4
    assert saved["mqtt"]["password"] == MQTT_PW
    assert saved["database"]["url"] == DB_URL
    # the answer to PUT is redacted too
    assert data["config"]["mqtt"]["password"] == PLACEHOLDER
    assert PLACEHOLDER in data["effective"]["database"]["url"]

    # a placeholder password in a URL pointing at another server is not sent there: re-enter it (issue 16)
    doc["database"]["url"] = f"postgres://aniworld:{PLACEHOLDER}@db2.example:5433/anime2"
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 422 and "re-enter the password" in data["error"]["message"]
    assert _doc(logged_in)["database"]["url"] == DB_URL
    # another database on the same server keeps the password, takes the rest
    doc["database"]["url"] = f"postgres://aniworld:{PLACEHOLDER}@db.example:5432/anime2"
    status, _ = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200
    assert _doc(logged_in)["database"]["url"] == f"postgres://aniworld:{DB_PW}@db.example:5432/anime2"

    # restoring a backup answers redacted as well
    _, backups = await logged_in.call("GET", "/api/config/backups")
    status, data = await logged_in.call("POST", f"/api/config/backups/{backups[0]['name']}/restore")
    assert status == 200
    assert data["config"]["mqtt"]["password"] == PLACEHOLDER
    assert "db-s3cret" not in str(data)
    assert _doc(logged_in)["database"]["url"] == DB_URL


async def test_put_with_new_secrets_replaces_them(logged_in: Api) -> None:
    _add_secrets(logged_in)
    _, got = await logged_in.call("GET", "/api/config")
    doc = got["config"]
    doc["mqtt"]["password"] = "brand-new"
    doc["database"]["url"] = "postgres://other:new-db-pw@db.example:5432/anime"
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200
    saved = _doc(logged_in)
    assert saved["mqtt"]["password"] == "brand-new"
    assert saved["database"]["url"] == "postgres://other:new-db-pw@db.example:5432/anime"
    assert data["config"]["mqtt"]["password"] == PLACEHOLDER

    doc["mqtt"]["password"] = None  # clearing a secret is possible too
    status, _ = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200 and _doc(logged_in)["mqtt"]["password"] is None


async def test_placeholder_with_nothing_stored(logged_in: Api) -> None:
    # a whole-value placeholder keeps "not set": the key is not written
    doc = _doc(logged_in)
    doc["mqtt"] = {"port": 1884, "password": PLACEHOLDER}
    status, _ = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200
    assert _doc(logged_in)["mqtt"] == {"port": 1884}

    # a URL password cannot be kept when there is none: 422 on that field, nothing written
    before = logged_in.ctx.config_path.read_text()
    doc = _doc(logged_in)
    doc["database"] = {"url": f"postgres://aniworld:{PLACEHOLDER}@db.example/anime"}
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 422
    assert [e["path"] for e in data["error"]["details"]["errors"]] == ["database.url"]
    assert logged_in.ctx.config_path.read_text() == before
    status, data = await logged_in.call("POST", "/api/config/validate", json=doc)
    assert status == 200 and data["valid"] is False
    assert [e["path"] for e in data["errors"]] == ["database.url"]


async def test_put_answers_which_changes_wait_for_a_restart(logged_in: Api) -> None:
    doc = _doc(logged_in)
    doc["downloads"]["max_concurrent"] = 4  # applied at once by the running daemon
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200 and data["restart_required"] == []
    doc.setdefault("server", {})["port"] = 9123
    doc.setdefault("provider", {})["timeout"] = 42
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200 and data["restart_required"] == ["provider.timeout", "server.port"]
    status, got = await logged_in.call("GET", "/api/config")
    assert "restart_required" not in got  # only a save answers it
