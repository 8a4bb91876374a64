"""/api/config: read, validate, save (atomic, with backup) and restore the YAML config.

Secrets never leave the daemon: `mqtt.password` and the password inside `database.url` are replaced by
SECRET_PLACEHOLDER in every answer (the document and the effective config). A client that sends the
placeholder back means "keep what is stored", so GET -> edit another field -> PUT changes nothing else,
and the UI never has to know the real values.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from aiohttp import web

from aniworldd.api.common import IDENTITY, body, json_response, params, service
from aniworldd.api.middlewares import config_error
from aniworldd.config import SECTIONS, ConfigError, ConfigIssue, parse_yaml
from aniworldd.config_docs import config_schema
from aniworldd.services.auth_service import LOGIN, Forbidden
from aniworldd.services.errors import ServiceError

#: Largest config document a client may send (JSON as sent). A real config is a few KB; the YAML
#: validation behind a save is pure Python, so the cap is what keeps a save cheap.
CONFIG_MAX_BYTES = 256 * 1024


class ConfigTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


#: What a secret looks like in an answer; sent back, it keeps the stored value.
SECRET_PLACEHOLDER = "********"
#: Whole values that are secret (dotted paths).
SECRET_VALUES = (("mqtt", "password"),)
#: URLs whose password part (scheme://user:PASSWORD@host/...) is secret.
SECRET_URL_PASSWORDS = (("database", "url"), ("provider", "proxy"), ("cluster", "redis_url"))
#: Settings that decide where the daemon keeps its data, secrets and database, where it listens, how it
#: authenticates, which Redis every event and login limit of a cluster goes through, and which folders it
#: writes into: changing them needs a login token, never an API key (a key moving data_dir to an empty folder
#: reopened setup after a restart: issue 16). library.roots and downloads.temp_dir are here because they
#: choose the folders the daemon creates files in and lists.
LOGIN_ONLY_SETTINGS = (
    ("data_dir",),
    ("database",),
    ("server",),
    ("auth",),
    ("cluster",),
    ("library", "roots"),
    ("downloads", "temp_dir"),
)


def _document(data: Any) -> Any:
    """Accept the document itself or wrapped as {"config": document} (the shape GET answers with)."""
    if isinstance(data, dict) and set(data) == {"config"} and isinstance(data["config"], dict | None):
        return data["config"] or {}
    return data


def _issues(issues: list) -> list[dict]:
    return [{"path": i.path, "line": i.line, "message": i.message} for i in issues]


# ---- secrets ------------------------------------------------------------------------------------------


def _parent(doc: Any, path: tuple[str, ...]) -> dict | None:
    """The mapping holding path[-1], or None when the document has no such place."""
    cur = doc
    for part in path[:-1]:
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur if isinstance(cur, dict) else None


def _split_password(url: str) -> tuple[str, str, str] | None:
    """Split `scheme://user:pw@host/db` into ("scheme://user:", "pw", "@host/db"); None without a password.

    Done on the raw text (not urlsplit + rebuild) so everything but the password stays byte for byte.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    end = len(rest)
    for stop in "/?#":
        pos = rest.find(stop)
        if pos >= 0:
            end = min(end, pos)
    userinfo, at, _host = rest[:end].rpartition("@")
    if not at or ":" not in userinfo:
        return None
    user, _, password = userinfo.partition(":")
    head = f"{scheme}://{user}:"
    return head, password, url[len(head) + len(password) :]


def redact(doc: Any) -> Any:
    """A copy of a config document (or effective config) with every secret replaced by the placeholder."""
    if not isinstance(doc, dict):
        return doc
    doc = copy.deepcopy(doc)
    for path in SECRET_VALUES:
        parent = _parent(doc, path)
        if parent is not None and parent.get(path[-1]) not in (None, ""):
            parent[path[-1]] = SECRET_PLACEHOLDER
    for path in SECRET_URL_PASSWORDS:
        parent = _parent(doc, path)
        value = parent.get(path[-1]) if parent is not None else None
        parts = _split_password(value) if isinstance(value, str) else None
        if parts is not None and parts[1]:
            parent[path[-1]] = parts[0] + SECRET_PLACEHOLDER + parts[2]
    return doc


def _redacted(answer: Any) -> Any:
    """ConfigService.get()/save()/restore() answer {"config", "effective"} with both parts redacted."""
    if not isinstance(answer, dict):
        return answer
    return {k: redact(v) if k in ("config", "effective") else v for k, v in answer.items()}


def _mqtt_destination(doc: Any) -> tuple:
    """Where the MQTT password goes: host, port and TLS settings, defaults filled in."""
    mqtt = doc.get("mqtt") if isinstance(doc, dict) else None
    mqtt = mqtt if isinstance(mqtt, dict) else {}
    tls = mqtt.get("tls") if isinstance(mqtt.get("tls"), dict) else {}
    default_port = SECTIONS["mqtt"]({})["port"]
    port = mqtt.get("port")
    return (
        str(mqtt.get("host") or "").strip().lower(),
        default_port if port is None else port,
        bool(tls.get("enabled") or False),
        tls.get("ca_file") or None,
        bool(tls.get("insecure") or False),
    )


def _url_destination(head: str, tail: str) -> tuple[str, str]:
    """Where a URL's password goes: "scheme://user" and host[:port], from the _split_password parts."""
    end = len(tail)
    for stop in "/?#":
        pos = tail.find(stop, 1)
        if pos >= 0:
            end = min(end, pos)
    return head.lower(), tail[1:end].lower()


def _moved(filename: str, path: tuple[str, ...], what: str) -> ConfigIssue:
    return ConfigIssue(
        filename,
        None,
        ".".join(path),
        f"the {what} changed: re-enter the password ({SECRET_PLACEHOLDER} keeps a stored password only "
        f"for the {what} it was stored for)",
    )


def restore_secrets(doc: Any, stored: Any, filename: str = "config.yaml") -> tuple[Any, list[ConfigIssue]]:
    """Put the stored secrets back where a client sent the placeholder.

    A placeholder whole value with nothing stored drops the key (the stored state is "not set"); a
    placeholder password in a URL with no stored password to keep is an issue: saving it would make the
    placeholder itself the password. A placeholder for a secret whose server changed (MQTT host, port or
    TLS; the scheme, user, host or port of a URL) is an issue too: the stored password would otherwise be
    sent to a server somebody else may have chosen.
    """
    if not isinstance(doc, dict):
        return doc, []
    doc = copy.deepcopy(doc)
    stored = stored if isinstance(stored, dict) else {}
    issues: list[ConfigIssue] = []
    for path in SECRET_VALUES:
        parent = _parent(doc, path)
        if parent is None or parent.get(path[-1]) != SECRET_PLACEHOLDER:
            continue
        old_parent = _parent(stored, path)
        if old_parent is None or old_parent.get(path[-1]) in (None, ""):
            del parent[path[-1]]
        elif path == ("mqtt", "password") and _mqtt_destination(doc) != _mqtt_destination(stored):
            issues.append(_moved(filename, path, "MQTT broker (host, port or TLS)"))
        else:
            parent[path[-1]] = old_parent[path[-1]]
    for path in SECRET_URL_PASSWORDS:
        parent = _parent(doc, path)
        value = parent.get(path[-1]) if parent is not None else None
        parts = _split_password(value) if isinstance(value, str) else None
        if parts is None or parts[1] != SECRET_PLACEHOLDER:
            continue
        old_parent = _parent(stored, path)
        old_value = old_parent.get(path[-1]) if old_parent is not None else None
        old_parts = _split_password(old_value) if isinstance(old_value, str) else None
        if old_parts is None or not old_parts[1]:
            issues.append(
                ConfigIssue(
                    filename,
                    None,
                    ".".join(path),
                    f"{SECRET_PLACEHOLDER} keeps a stored password, but none is stored; type the password",
                )
            )
            continue
        if _url_destination(parts[0], parts[2]) != _url_destination(old_parts[0], old_parts[2]):
            issues.append(_moved(filename, path, "server (scheme, user, host or port)"))
            continue
        parent[path[-1]] = parts[0] + old_parts[1] + parts[2]
    return doc, issues


def _setting(doc: Any, path: tuple[str, ...]) -> Any:
    """The value at path; missing, null and {} are the same "not set"."""
    cur = doc
    for part in path:
        cur = cur.get(part) if isinstance(cur, dict) else None
    return None if cur in ({}, "") else cur


def house_changes(new: Any, stored: Any) -> list[str]:
    """The LOGIN_ONLY_SETTINGS that differ between two documents (dotted paths)."""
    return [".".join(p) for p in LOGIN_ONLY_SETTINGS if _setting(new, p) != _setting(stored, p)]


def _require_login_for(request: web.Request, new: Any, stored: Any) -> None:
    """403 when an API key would change where the house is (see LOGIN_ONLY_SETTINGS)."""
    identity = request.get(IDENTITY)
    if identity is None or identity.kind == LOGIN:
        return
    changed = house_changes(new, stored)
    if changed:
        raise Forbidden(
            f"changing {', '.join(changed)} needs a login token (Authorization: Bearer), not an API key",
            {"settings": changed},
            code="login_required",
        )


def _stored_document(svc: Any) -> dict:
    """The document in the config file right now ({} when there is none or it does not parse)."""
    path = getattr(svc, "path", None)
    if path is None or not path.exists():
        return {}
    try:
        doc, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (ConfigError, OSError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


async def _incoming(request: web.Request, svc: Any) -> tuple[Any, list[ConfigIssue]]:
    """The client's document with the stored secrets put back for placeholders."""
    size = len(await request.read())  # already read (and JSON-parsed) by the route wrapper: cached
    if size > CONFIG_MAX_BYTES:
        raise ConfigTooLarge(
            f"config document too large ({size} bytes, limit {CONFIG_MAX_BYTES} bytes)",
            {"limit": CONFIG_MAX_BYTES, "size": size},
        )
    doc = _document(body(request))
    if not isinstance(doc, dict):
        return doc, []
    stored = await asyncio.to_thread(_stored_document, svc)
    path = getattr(svc, "path", None)
    return restore_secrets(doc, stored, path.name if path is not None else "config.yaml")


# ---- handlers -----------------------------------------------------------------------------------------


async def get_config(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    try:
        return json_response(_redacted(await asyncio.to_thread(svc.get)))
    except ConfigError as exc:  # the file on disk was broken by hand: say where
        return config_error(exc)


async def put_config(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    doc, issues = await _incoming(request, svc)
    if request.get(IDENTITY) is not None and request[IDENTITY].kind != LOGIN:
        _require_login_for(request, doc, await asyncio.to_thread(_stored_document, svc))
    if issues:
        raise ConfigError(issues)
    saved = await svc.save(doc)
    return json_response(_redacted(saved))


async def validate_config(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    doc, issues = await _incoming(request, svc)
    issues = issues + await asyncio.to_thread(svc.validate, doc)
    return json_response({"valid": not issues, "errors": _issues(issues)})


async def list_backups(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    return json_response(await asyncio.to_thread(svc.list_backups))


def _backup_document(svc: Any, name: str) -> Any:
    """A backup's document for the API-key check ({} when it cannot be read: restore() reports that)."""
    backup_dir = getattr(svc, "backup_dir", None)
    if backup_dir is None or "/" in name or "\\" in name or name.startswith("."):
        return {}
    try:
        doc, _ = parse_yaml((backup_dir / name).read_text(encoding="utf-8"), name)
    except (ConfigError, OSError, UnicodeDecodeError):
        return {}
    return doc or {}


async def restore_backup(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    name = params(request)["name"]
    if request.get(IDENTITY) is not None and request[IDENTITY].kind != LOGIN:
        backup, stored = await asyncio.gather(
            asyncio.to_thread(_backup_document, svc, name), asyncio.to_thread(_stored_document, svc)
        )
        _require_login_for(request, backup, stored)
    restored = await svc.restore(name)
    return json_response(_redacted(restored))


# ---- schema for the config page ----------------------------------------------------------------------


def _secret_part(path: tuple[str, ...]) -> str | None:
    """What of a secret option is hidden: "value" (all of it), "password" (the one inside a URL), or None."""
    if path in SECRET_VALUES:
        return "value"
    return "password" if path in SECRET_URL_PASSWORDS else None


def annotated_schema() -> dict:
    """config_docs.config_schema() plus what only this module knows: which options are secret (shown as
    SECRET_PLACEHOLDER) and which an API key may not change (LOGIN_ONLY_SETTINGS)."""
    doc = copy.deepcopy(config_schema())
    for option in doc["options"]:
        path = tuple(option["path"].split("."))
        option["secret"] = _secret_part(path) is not None
        option["secret_part"] = _secret_part(path)
        option["login_only"] = any(path[: len(p)] == p for p in LOGIN_ONLY_SETTINGS)
    doc["secret_placeholder"] = SECRET_PLACEHOLDER
    return doc


async def get_config_schema(request: web.Request) -> web.Response:
    """Every option's type, default, unit, allowed values and description, for the UI's config page."""
    return json_response(await asyncio.to_thread(annotated_schema))
