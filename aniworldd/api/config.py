"""/api/config: read, validate, save (atomic, with backup) and restore the YAML config."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from aniworldd.api.common import body, json_response, params, service
from aniworldd.api.middlewares import config_error
from aniworldd.config import ConfigError


def _document(data: Any) -> Any:
    """Accept the document itself or wrapped as {"config": document} (the shape GET answers with)."""
    if isinstance(data, dict) and set(data) == {"config"} and isinstance(data["config"], dict | None):
        return data["config"] or {}
    return data


def _issues(issues: list) -> list[dict]:
    return [{"path": i.path, "line": i.line, "message": i.message} for i in issues]


async def get_config(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    try:
        return json_response(await asyncio.to_thread(svc.get))
    except ConfigError as exc:  # the file on disk was broken by hand: say where
        return config_error(exc)


async def put_config(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    saved = await svc.save(_document(body(request)))
    return json_response(saved)


async def validate_config(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    issues = await asyncio.to_thread(svc.validate, _document(body(request)))
    return json_response({"valid": not issues, "errors": _issues(issues)})


async def list_backups(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    return json_response(await asyncio.to_thread(svc.list_backups))


async def restore_backup(request: web.Request) -> web.Response:
    svc = service(request, "config_service")
    restored = await svc.restore(params(request)["name"])
    return json_response(restored)
