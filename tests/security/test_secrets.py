"""Issue 16 item 3: the `********` placeholder never carries a stored secret to another server.

The attack: GET /api/config shows `mqtt.password: ********`; sending that back with `mqtt.host` pointing at
the attacker's broker made the daemon log in there with the real password (the same with the password
inside `database.url` or `provider.proxy`). A placeholder keeps the stored secret only while the secret
still goes where it went before; otherwise the answer is 422 "re-enter the password" and nothing is saved.
"""

from __future__ import annotations

import pytest
import yaml

from tests.api.conftest import Api

PLACEHOLDER = "********"
MQTT_PW = "mq-s3cret!"
DB_PW = "db-s3cret@x"
DB_URL = f"postgres://aniworld:{DB_PW}@db.example:5432/anime"
PROXY_URL = "socks5h://nas:px-s3cret@proxy.example:1080"


def _doc(api: Api) -> dict:
    return yaml.safe_load(api.ctx.config_path.read_text())


def _store_secrets(api: Api) -> None:
    doc = _doc(api)
    doc["mqtt"] = {"host": "broker.example", "port": 1883, "username": "ha", "password": MQTT_PW}
    doc["database"] = {"url": DB_URL}
    doc.setdefault("provider", {})["proxy"] = PROXY_URL
    api.ctx.config_path.write_text(yaml.safe_dump(doc, sort_keys=False))


async def _redacted(api: Api) -> dict:
    status, got = await api.call("GET", "/api/config")
    assert status == 200
    assert MQTT_PW not in str(got) and "db-s3cret" not in str(got) and "px-s3cret" not in str(got)
    return got["config"]


def _mqtt(doc: dict, **changes) -> None:
    doc["mqtt"].update(changes)


MOVES = {
    "mqtt.host": ("mqtt.password", lambda d: _mqtt(d, host="evil.example")),
    "mqtt.port": ("mqtt.password", lambda d: _mqtt(d, port=8883)),
    "mqtt.tls": ("mqtt.password", lambda d: _mqtt(d, tls={"enabled": True, "insecure": True})),
    "database.url host": (
        "database.url",
        lambda d: d["database"].update(url=f"postgres://aniworld:{PLACEHOLDER}@evil.example:5432/anime"),
    ),
    "database.url port": (
        "database.url",
        lambda d: d["database"].update(url=f"postgres://aniworld:{PLACEHOLDER}@db.example:6543/anime"),
    ),
    "database.url user": (
        "database.url",
        lambda d: d["database"].update(url=f"postgres://postgres:{PLACEHOLDER}@db.example:5432/anime"),
    ),
    "database.url scheme": (
        "database.url",
        lambda d: d["database"].update(url=f"postgresql://aniworld:{PLACEHOLDER}@db.example:5432/anime"),
    ),
    "provider.proxy host": (
        "provider.proxy",
        lambda d: d["provider"].update(proxy=f"socks5h://nas:{PLACEHOLDER}@evil.example:1080"),
    ),
    "provider.proxy scheme": (
        "provider.proxy",
        lambda d: d["provider"].update(proxy=f"http://nas:{PLACEHOLDER}@proxy.example:1080"),
    ),
}


@pytest.mark.parametrize("move", sorted(MOVES))
async def test_a_placeholder_sent_to_another_server_is_refused(logged_in: Api, move: str) -> None:
    _store_secrets(logged_in)
    before = logged_in.ctx.config_path.read_text()
    path, change = MOVES[move]
    doc = await _redacted(logged_in)
    change(doc)
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 422, data
    errors = data["error"]["details"]["errors"]
    assert [e["path"] for e in errors] == [path]
    assert "re-enter the password" in errors[0]["message"]
    assert logged_in.ctx.config_path.read_text() == before
    status, data = await logged_in.call("POST", "/api/config/validate", json=doc)
    assert status == 200 and data["valid"] is False
    assert [e["path"] for e in data["errors"]] == [path]


async def test_the_placeholder_still_keeps_secrets_that_stay_put(logged_in: Api) -> None:
    _store_secrets(logged_in)
    doc = await _redacted(logged_in)
    doc["downloads"]["max_concurrent"] = 4
    doc["mqtt"]["username"] = "ha"  # same broker, same user
    doc["database"]["url"] = (
        f"postgres://aniworld:{PLACEHOLDER}@db.example:5432/anime2"  # another db, same server
    )
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200, data
    saved = _doc(logged_in)
    assert saved["mqtt"]["password"] == MQTT_PW
    assert saved["database"]["url"] == f"postgres://aniworld:{DB_PW}@db.example:5432/anime2"
    assert saved["provider"]["proxy"] == PROXY_URL
    # spelling the default port out is not a move
    doc = await _redacted(logged_in)
    doc["mqtt"].pop("port")
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200, data
    assert _doc(logged_in)["mqtt"]["password"] == MQTT_PW


async def test_a_moved_server_with_a_typed_password_is_saved(logged_in: Api) -> None:
    _store_secrets(logged_in)
    doc = await _redacted(logged_in)
    doc["mqtt"].update(host="broker2.example", password="typed-again")
    doc["database"]["url"] = "postgres://aniworld:typed-db@db2.example:5432/anime"
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200, data
    saved = _doc(logged_in)
    assert saved["mqtt"]["password"] == "typed-again"
    assert saved["database"]["url"] == "postgres://aniworld:typed-db@db2.example:5432/anime"
