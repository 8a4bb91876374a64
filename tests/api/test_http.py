"""HTTP basics: one JSON error shape, security headers, body limit, CORS, OpenAPI and the docs page."""

from __future__ import annotations

import re

import pytest
import voluptuous as vol
from aiohttp import web

from aniworldd.api import app as app_module
from aniworldd.api.openapi import OPENAPI_KEY, UnsupportedValidator, to_json_schema
from aniworldd.api.schemas import ROUTES, Route
from tests.api.conftest import Api


async def test_unknown_route_and_method_are_json(logged_in: Api) -> None:
    status, data = await logged_in.call("GET", "/api/nope")
    assert status == 404 and data["error"]["code"] == "not_found"
    resp = await logged_in.client.put("/api/queue/status", headers=logged_in.headers)
    assert resp.status == 405
    assert "GET" in resp.headers["Allow"]
    assert (await resp.json())["error"]["code"] == "method_not_allowed"
    resp = await logged_in.client.get("/definitely/not/here")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_security_headers_everywhere(logged_in: Api) -> None:
    for path in ("/health", "/api/auth/status", "/api/nope", "/api/docs", "/api/openapi.json"):
        resp = await logged_in.client.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "http" not in csp  # no CDN or other origin allowed
    resp = await logged_in.client.get("/api/auth/status")
    assert resp.headers["Cache-Control"] == "no-store"


async def test_body_limit_is_413_json(api_factory) -> None:
    api = await api_factory("server:\n  max_body_bytes: 2048\n")
    await api.setup_and_login()
    big = {"query": "x" * 4000}
    status, data = await api.call("POST", "/api/anime/search", json=big)
    assert status == 413 and data["error"]["code"] == "payload_too_large"

    async def chunks():
        for _ in range(5):
            yield b"x" * 1000

    # without a Content-Length (chunked) the limit holds while reading
    status, data = await api.call(
        "POST", "/api/anime/search", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert status == 413


async def test_cors_off_by_default(logged_in: Api) -> None:
    resp = await logged_in.client.get("/api/auth/status", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await logged_in.client.options(
        "/api/queue/status", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert resp.status in (401, 405) and "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_for_listed_origins(api_factory) -> None:
    api = await api_factory("server:\n  cors_origins: ['http://ha.local:8123']\n")
    ok = {"Origin": "http://ha.local:8123", "Access-Control-Request-Method": "GET"}
    resp = await api.client.options("/api/queue/status", headers=ok)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "http://ha.local:8123"
    assert "X-Api-Key" in resp.headers["Access-Control-Allow-Headers"]
    resp = await api.client.get("/api/auth/status", headers={"Origin": "http://ha.local:8123"})
    assert resp.headers["Access-Control-Allow-Origin"] == "http://ha.local:8123"
    resp = await api.client.get("/api/auth/status", headers={"Origin": "http://other"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_unexpected_exception_is_a_500_without_traceback(api: Api, caplog) -> None:
    async def boom() -> dict:
        raise RuntimeError("secret internal detail")

    api.ctx.queue.status = boom
    await api.setup_and_login()
    status, data = await api.call("GET", "/api/queue/status")
    assert status == 500
    assert data["error"]["code"] == "internal_error"
    assert "secret internal detail" not in str(data) and "Traceback" not in str(data)
    assert any("secret internal detail" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_openapi_describes_every_route(api: Api) -> None:
    status, spec = await api.call("GET", "/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    registered = {
        (r.method, r.resource.canonical)
        for r in api.client.app.router.routes()
        if r.resource is not None
        and not r.resource.canonical.endswith("/")
        and r.method != "HEAD"
        and r.resource.canonical.startswith(("/api", "/ws", "/health"))
    }
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert registered - documented <= {("GET", "/api/system/status")}  # added by the ops helper's hook
    for route in ROUTES:
        op = spec["paths"][route.path][route.method.lower()]
        if route.auth:
            assert "401" in op["responses"] and op["security"]
        if route.body is not None:
            assert "400" in op["responses"] and "requestBody" in op
    add = spec["paths"]["/api/queue/add"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert add["required"] == ["serie_id", "episodes"]
    assert add["properties"]["episodes"]["items"]["required"] == ["season", "episode"]
    login = spec["paths"]["/api/auth/login"]["post"]
    assert login["security"] == [] and "429" in login["responses"]


def test_openapi_is_generated_from_the_schemas() -> None:
    schema = vol.Schema(
        {
            vol.Required("n"): vol.All(int, vol.Range(min=1, max=3)),
            vol.Optional("s", default="a"): vol.All(str, vol.Length(min=2)),
            vol.Optional("l"): vol.All([str], vol.Length(max=4)),
            vol.Optional("e"): vol.Any(None, vol.In(["x", "y"])),
        },
        extra=vol.PREVENT_EXTRA,
    )
    assert to_json_schema(schema) == {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "s": {"type": "string", "minLength": 2, "default": "a"},
            "l": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
            "e": {"enum": ["x", "y", None]},
        },
        "required": ["n"],
        "additionalProperties": False,
    }
    with pytest.raises(UnsupportedValidator):
        to_json_schema(vol.Schema({"x": lambda v: v}))


async def test_a_new_route_shows_up_in_the_document(api: Api, monkeypatch) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hi": True})

    extra = Route("GET", "/api/hello", hello, "Say hello", "test", responses={200: ("hi", None)})
    monkeypatch.setattr(app_module, "ROUTES", [*ROUTES, extra])
    app = app_module.create_app(api.ctx)
    assert app[OPENAPI_KEY]["paths"]["/api/hello"]["get"]["summary"] == "Say hello"


async def test_docs_page_is_self_contained(api: Api) -> None:
    resp = await api.client.get("/api/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "/api/queue/add" in page and "/api/auth/login" in page
    # the only script is the UI's own theme.js (dark mode), from /static
    assert re.findall(r"<script[^>]*>", page, re.IGNORECASE) == ["<script src='/static/theme.js'>"]
    assert "/static/vendor/bootstrap-5.3.9/bootstrap.min.css" in page and "<style" not in page.lower()
    assert not re.search(r"""(src|href)=["']https?://""", page)


async def test_health_is_public(api: Api) -> None:
    status, data = await api.call("GET", "/health")
    assert status == 200 and data["status"] == "ok"
