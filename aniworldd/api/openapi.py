"""OpenAPI 3.1 generated from the route table, and a self-contained docs page.

The document is derived from schemas.ROUTES (paths, verbs, auth, voluptuous request schemas converted to
JSON Schema, response shapes), never written by hand, so tests over it exercise what the server really does.
The docs page is rendered on the server (no JavaScript, no CDN): it must work on an offline NAS and under the
strict Content-Security-Policy every response carries.
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


_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#1d2330}
body{background:#fff}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ccd;text-transform:capitalize}
.op{border:1px solid #dde;border-radius:6px;margin:.8rem 0;padding:.4rem .8rem}
.op summary{cursor:pointer;list-style:none}.m{display:inline-block;min-width:4.2rem;font-weight:700}
.GET{color:#1a7f37}.POST{color:#0b5cad}.PUT{color:#9a6700}.DELETE{color:#b42318}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f5f6f8;padding:.6rem;overflow:auto}
.lock{color:#777;font-size:12px}table{border-collapse:collapse}td{padding:2px 10px 2px 0;vertical-align:top}
@media (prefers-color-scheme:dark){body{background:#14171c;color:#dde}pre{background:#1f242c}
.op{border-color:#333a45}h2{border-color:#333a45}}
"""


def render_docs(spec: dict) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{esc(spec['info']['title'])} API</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(spec['info']['title'])} API <small>{esc(spec['info']['version'])}</small></h1>",
        f"<p>{esc(spec['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/api/openapi.json'>/api/openapi.json</a> (OpenAPI 3.1).</p>",
    ]
    by_tag: dict[str, list[tuple[str, str, dict]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    for tag, ops in by_tag.items():
        parts.append(f"<h2 id='{esc(tag)}'>{esc(tag)}</h2>")
        for method, path, op in ops:
            lock = "" if not op.get("security") else " <span class='lock'>(auth)</span>"
            parts.append(
                f"<details class='op'><summary><span class='m {method}'>{method}</span> "
                f"<code>{esc(path)}</code>"
                f" — {esc(op['summary'])}{lock}</summary>"
            )
            if op.get("description"):
                parts.append(f"<p>{esc(op['description'])}</p>")
            if op.get("parameters"):
                rows = "".join(
                    f"<tr><td><code>{esc(p['name'])}</code></td><td>{esc(p['in'])}</td>"
                    f"<td><code>{esc(json.dumps(p['schema']))}</code></td>"
                    f"<td>{esc(p.get('description', ''))}</td></tr>"
                    for p in op["parameters"]
                )
                parts.append(f"<h4>Parameters</h4><table>{rows}</table>")
            if "requestBody" in op:
                body = op["requestBody"]["content"]["application/json"]["schema"]
                parts.append(f"<h4>Request body (JSON)</h4><pre>{esc(json.dumps(body, indent=2))}</pre>")
            rows = ""
            for status, resp in op["responses"].items():
                schema = next(iter(resp.get("content", {}).values()), {}).get("schema")
                shown = f"<code>{esc(json.dumps(schema))}</code>" if schema else ""
                description = esc(resp["description"])
                rows += f"<tr><td><b>{esc(status)}</b></td><td>{description}</td><td>{shown}</td></tr>"
            parts.append(f"<h4>Responses</h4><table>{rows}</table></details>")
    parts.append("<h2 id='schemas'>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(
            f"<details class='op' id='schema-{esc(name)}'><summary><code>{esc(name)}</code></summary>"
            f"<pre>{esc(json.dumps(schema, indent=2))}</pre></details>"
        )
    parts.append("</body></html>")
    return "".join(parts)


DOCS_HTML_KEY = web.AppKey("docs_html", str)


async def docs_page(request: web.Request) -> web.Response:
    page = request.app.get(DOCS_HTML_KEY)
    if page is None:
        page = render_docs(request.app[OPENAPI_KEY])
    return web.Response(text=page, content_type="text/html")
