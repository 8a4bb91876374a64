"""OpenAPI 3.1 generated from the route table, and a self-contained docs page.

The document is derived from schemas.ROUTES (paths, verbs, auth, voluptuous request schemas converted to
JSON Schema, response shapes), never written by hand, so tests over it exercise what the server really does.
The docs page is rendered on the server (no CDN; its only script is the UI's theme.js for dark mode): it must
work on an offline NAS and under the strict Content-Security-Policy every response carries.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import voluptuous as vol
from aiohttp import web

from aniworldd import __version__
from aniworldd.api.schemas import COMPONENTS, ROUTES, Route, ref

OPENAPI_KEY = web.AppKey("openapi", dict)

# --- voluptuous -> JSON Schema ------------------------------------------------------------------------------

_TYPES: dict[Any, dict] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    dict: {"type": "object"},
    list: {"type": "array"},
    type(None): {"type": "null"},
    None: {"type": "null"},
}
#: validators that only normalise a value (no constraint to document)
_PASSTHROUGH = {vol.Lower, vol.Upper, vol.Strip}


class UnsupportedValidator(TypeError):
    """A request schema uses a validator openapi.py cannot describe; fix the schema, not the document."""


def _merge(parts: list[dict]) -> dict:
    """vol.All(a, b, ...): constraints apply together; length limits depend on the type seen so far."""
    out: dict[str, Any] = {}
    for part in parts:
        part = dict(part)
        length = part.pop("x-length", None)
        out.update(part)
        if length is not None:
            kind = out.get("type")
            names = {"string": ("minLength", "maxLength"), "object": ("minProperties", "maxProperties")}.get(
                kind, ("minItems", "maxItems")
            )
            for bound, name in zip(length, names, strict=True):
                if bound is not None:
                    out[name] = bound
    return out


def to_json_schema(schema: Any) -> dict:
    """Convert the voluptuous building blocks the API uses; anything else raises UnsupportedValidator."""
    if isinstance(schema, vol.Schema):
        inner = to_json_schema(schema.schema)
        if isinstance(schema.schema, dict):
            inner["additionalProperties"] = schema.extra != vol.PREVENT_EXTRA
        return inner
    if isinstance(schema, dict):
        props: dict[str, Any] = {}
        required: list[str] = []
        for marker, value in schema.items():
            name = marker.schema if isinstance(marker, vol.Marker) else marker
            if not isinstance(name, str):
                raise UnsupportedValidator(f"non-string key in schema: {marker!r}")
            prop = to_json_schema(value)
            description = getattr(marker, "description", None)
            if description:
                prop["description"] = description
            default = getattr(marker, "default", vol.UNDEFINED)
            if default is not vol.UNDEFINED:
                prop["default"] = default()
            props[name] = prop
            if isinstance(marker, vol.Required) or not isinstance(marker, vol.Marker):
                required.append(name)
        out: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        return out
    if isinstance(schema, list):
        if not schema:
            return {"type": "array"}
        items = [to_json_schema(s) for s in schema]
        return {"type": "array", "items": items[0] if len(items) == 1 else {"anyOf": items}}
    if schema in _TYPES:
        return dict(_TYPES[schema])
    if isinstance(schema, vol.All):
        return _merge([to_json_schema(v) for v in schema.validators])
    if isinstance(schema, vol.Any):
        options = [to_json_schema(v) for v in schema.validators]
        enums = [o["enum"] for o in options if set(o) == {"enum"}]
        nulls = [o for o in options if o == {"type": "null"}]
        if len(enums) + len(nulls) == len(options):
            return {"enum": [v for e in enums for v in e] + ([None] if nulls else [])}
        return {"anyOf": options}
    if isinstance(schema, vol.In):
        return {"enum": list(schema.container)}
    if isinstance(schema, vol.Range):
        out = {}
        if schema.min is not None:
            out["minimum" if schema.min_included else "exclusiveMinimum"] = schema.min
        if schema.max is not None:
            out["maximum" if schema.max_included else "exclusiveMaximum"] = schema.max
        return out
    if isinstance(schema, vol.Length):
        return {"x-length": (schema.min, schema.max)}
    if isinstance(schema, vol.Match):
        return {"type": "string", "pattern": schema.pattern.pattern}
    if isinstance(schema, vol.Coerce):
        return dict(_TYPES.get(schema.type, {}))
    if schema in _PASSTHROUGH:
        return {}
    custom = getattr(schema, "json_schema", None)
    if isinstance(custom, dict):
        return json.loads(json.dumps(custom))
    if isinstance(schema, str | int | float | bool):
        return {"const": schema}
    raise UnsupportedValidator(f"cannot describe validator {schema!r} in OpenAPI")


# --- the document -------------------------------------------------------------------------------------------

ERROR = ref("Error")
_PATH_PARAM = re.compile(r"{([^}]+)}")


def _operation(route: Route) -> dict:
    op: dict[str, Any] = {
        "operationId": route.name.replace(".", "_"),
        "summary": route.summary,
        "tags": [route.tag],
    }
    if route.description:
        op["description"] = route.description
    params: list[dict] = []
    for name in _PATH_PARAM.findall(route.path):
        validator = route.params.get(name, str)
        params.append({"name": name, "in": "path", "required": True, "schema": to_json_schema(validator)})
    if route.query is not None:
        query = to_json_schema(route.query)
        for name, prop in query.get("properties", {}).items():
            description = prop.pop("description", None)
            param = {
                "name": name,
                "in": "query",
                "required": name in query.get("required", []),
                "schema": prop,
            }
            if description:
                param["description"] = description
            params.append(param)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": to_json_schema(route.body)}},
        }
    responses: dict[str, Any] = {}
    for status, (description, schema) in sorted(route.responses.items()):
        entry: dict[str, Any] = {"description": description}
        if route.name == "openapi.docs_page" and status == 200:
            entry["content"] = {"text/html": {"schema": {"type": "string"}}}
        elif schema is not None:
            entry["content"] = {"application/json": {"schema": schema}}
        elif status >= 400:
            entry["content"] = {"application/json": {"schema": ERROR}}
        responses[str(status)] = entry

    def error(status: int, description: str) -> None:
        responses.setdefault(
            str(status), {"description": description, "content": {"application/json": {"schema": ERROR}}}
        )

    if params or route.body is not None:
        error(400, "invalid request (details.errors lists each problem)")
    if route.body is not None:
        error(413, "request body too large")
    if route.auth:
        error(401, "missing, invalid, expired or revoked token / API key")
        if route.login_only:
            error(403, "needs a login token")
    if route.needs:
        error(503, "the component is not available (or the provider is unreachable)")
    if route.websocket:
        responses.pop("413", None)
    op["responses"] = responses
    if route.auth:
        op["security"] = (
            [{"bearerAuth": []}] if route.login_only else [{"bearerAuth": []}, {"apiKeyAuth": []}]
        )
    else:
        op["security"] = []
    return op


def build_openapi(routes: list[Route] | None = None) -> dict:
    paths: dict[str, dict] = {}
    for route in routes if routes is not None else ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aniworldd",
            "version": __version__,
            "description": "Keeps an anime/series library complete. Errors are "
            '{"error": {"code", "message", "details"}}. Log in with POST /api/auth/login and send '
            "`Authorization: Bearer <access_token>` (or `X-Api-Key`) on every other /api route.",
        },
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
        },
    }


# --- handlers -----------------------------------------------------------------------------------------------


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_KEY])


#: The docs page looks like the web UI: the vendored Bootstrap, a small stylesheet of its own, and the UI's
#: theme.js, which sets data-bs-theme from prefers-color-scheme (dark mode) before the first paint. All
#: three come from /static (the CSP allows only 'self'; an inline <style> would be refused).
DOCS_HEAD = (
    "<link rel='icon' href='data:,'>"
    "<link rel='stylesheet' href='/static/vendor/bootstrap-5.3.9/bootstrap.min.css'>"
    "<link rel='stylesheet' href='/static/api_docs.css'>"
    "<link rel='stylesheet' href='/static/a11y.css'>"
    "<script src='/static/theme.js'></script>"
)
_METHOD_CLASS = {
    "GET": "text-bg-success",
    "POST": "text-bg-primary",
    "PUT": "text-bg-warning",
    "PATCH": "text-bg-info",
    "DELETE": "text-bg-danger",
}


def _schema_block(schema: Any) -> str:
    return f"<pre class='docs-json'><code>{html.escape(json.dumps(schema, indent=2))}</code></pre>"


def _operation_html(method: str, path: str, op: dict) -> str:
    esc = html.escape
    badge = _METHOD_CLASS.get(method, "text-bg-secondary")
    lock = (
        "<span class='badge rounded-pill text-bg-light border ms-auto'>auth</span>"
        if op.get("security")
        else "<span class='badge rounded-pill border text-body-secondary ms-auto'>public</span>"
    )
    parts = [
        f"<details class='op card mb-2' id='{esc(op['operationId'])}'>"
        f"<summary class='card-header d-flex flex-wrap align-items-center gap-2'>"
        f"<span class='badge method {badge}'>{method}</span><code class='op-path'>{esc(path)}</code>"
        f"<span class='op-summary'>{esc(op['summary'])}</span>{lock}</summary><div class='card-body'>"
    ]
    if op.get("description"):
        parts.append(f"<p>{esc(op['description'])}</p>")
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{esc(p['name'])}</code></td><td>{esc(p['in'])}</td>"
            f"<td><code class='docs-inline'>{esc(json.dumps(p['schema']))}</code></td>"
            f"<td>{esc(p.get('description', ''))}</td></tr>"
            for p in op["parameters"]
        )
        parts.append(
            "<h3 class='h6 mt-3'>Parameters</h3><div class='table-responsive'><table class='table table-sm'>"
            "<thead><tr><th>Name</th><th>In</th><th>Schema</th><th>Description</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )
    if "requestBody" in op:
        body = op["requestBody"]["content"]["application/json"]["schema"]
        parts.append(f"<h3 class='h6 mt-3'>Request body (JSON)</h3>{_schema_block(body)}")
    rows = ""
    for status, resp in op["responses"].items():
        schema = next(iter(resp.get("content", {}).values()), {}).get("schema")
        shown = f"<code class='docs-inline'>{esc(json.dumps(schema))}</code>" if schema else ""
        rows += f"<tr><td><b>{esc(status)}</b></td><td>{esc(resp['description'])}</td><td>{shown}</td></tr>"
    parts.append(
        "<h3 class='h6 mt-3'>Responses</h3><div class='table-responsive'><table class='table table-sm mb-0'>"
        f"<tbody>{rows}</tbody></table></div></div></details>"
    )
    return "".join(parts)


def render_docs(spec: dict) -> str:
    esc = html.escape
    title = esc(spec["info"]["title"])
    by_tag: dict[str, list[tuple[str, str, dict]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    toc = "".join(
        f"<li class='nav-item'><a class='nav-link' href='#{esc(tag)}'>{esc(tag)}</a></li>" for tag in by_tag
    )
    parts = [
        "<!doctype html><html lang='en' data-bs-theme='light'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        "<meta name='color-scheme' content='light dark'>",
        f"<title>{title} API</title>{DOCS_HEAD}</head><body class='api-docs'>",
        "<header><nav class='navbar border-bottom bg-body-tertiary' aria-label='Main'>"
        "<div class='container-xl'>"
        f"<a class='navbar-brand fw-semibold' href='/'>{title}</a>"
        "<span class='navbar-text me-auto'>API documentation</span>"
        "<a class='btn btn-outline-secondary btn-sm' href='/api/openapi.json'>openapi.json</a>"
        "</div></nav></header>",
        "<main class='container-xl py-3'>",
        f"<h1 class='h3'>{title} API <small class='text-body-secondary fs-6'>"
        f"{esc(spec['info']['version'])}</small></h1>",
        f"<p>{esc(spec['info']['description'])}</p>",
        "<p class='small text-body-secondary'>Machine-readable: <a href='/api/openapi.json'>"
        "/api/openapi.json</a> (OpenAPI 3.1).</p>",
        f"<ul class='nav nav-pills small mb-2 docs-toc'>{toc}"
        "<li class='nav-item'><a class='nav-link' href='#schemas'>schemas</a></li></ul>",
    ]
    for tag, ops in by_tag.items():
        parts.append(f"<section aria-labelledby='{esc(tag)}'>")
        parts.append(
            f"<h2 class='h5 mt-4 pb-1 border-bottom text-capitalize' id='{esc(tag)}'>{esc(tag)}</h2>"
        )
        parts.extend(_operation_html(method, path, op) for method, path, op in ops)
        parts.append("</section>")
    parts.append("<h2 class='h5 mt-4 pb-1 border-bottom' id='schemas'>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(
            f"<details class='op card mb-2' id='schema-{esc(name)}'><summary class='card-header'>"
            f"<code>{esc(name)}</code></summary><div class='card-body'>{_schema_block(schema)}</div>"
            "</details>"
        )
    parts.append("</main></body></html>")
    return "".join(parts)


DOCS_HTML_KEY = web.AppKey("docs_html", str)


async def docs_page(request: web.Request) -> web.Response:
    page = request.app.get(DOCS_HTML_KEY)
    if page is None:
        page = render_docs(request.app[OPENAPI_KEY])
    return web.Response(text=page, content_type="text/html")
