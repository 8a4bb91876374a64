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

from aniworldd.api.common import body, json_response, params, service
from aniworldd.api.middlewares import config_error
from aniworldd.config import ConfigError, ConfigIssue, parse_yaml

#: What a secret looks like in an answer; sent back, it keeps the stored value.
SECRET_PLACEHOLDER = "********"
#: Whole values that are secret (dotted paths).
SECRET_VALUES = (("mqtt", "password"),)
#: URLs whose password part (scheme://user:PASSWORD@host/...) is secret.
SECRET_URL_PASSWORDS = (("database", "url"),)


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


def restore_secrets(doc: Any, stored: Any, filename: str = "config.yaml") -> tuple[Any, list[ConfigIssue]]:
    """Put the stored secrets back where a client sent the placeholder.

    A placeholder whole value with nothing stored drops the key (the stored state is "not set"); a
    placeholder password in a URL with no stored password to keep is an issue: saving it would make the
    placeholder itself the password.
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
        if old_parent is not None and path[-1] in old_parent:
            parent[path[-1]] = old_parent[path[-1]]
        else:
            del parent[path[-1]]
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
        parent[path[-1]] = parts[0] + old_parts[1] + parts[2]
    return doc, issues


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


async def restore_backup(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    restored = await svc.restore(params(request)["name"])
    return json_response(_redacted(restored))
