"""Serving the bundled UI: `/`, `/static/...`, caching, compression, no listing, no symlinks, no CDN."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from aiohttp import web

from aniworldd.api import static
from aniworldd.api.app import create_app
from aniworldd.api.context import AppContext
from aniworldd.config import load_text
from aniworldd.db import Store
from aniworldd.events import EventBus

WEB = static.WEB_DIR
VENDOR_FILES = [
    "vendor/bootstrap-5.3.9/bootstrap.min.css",
    "vendor/bootstrap-5.3.9/bootstrap.bundle.min.js",
    "vendor/htmx-2.0.11/htmx.min.js",
]


@pytest.fixture
async def client(aiohttp_client):
    app = web.Application()
    static.add_routes(app)
    static.add_routes(app)  # idempotent
    return await aiohttp_client(app)


async def test_index_is_the_app_and_revalidated(client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-cache"
    body = await resp.text()
    assert body == (WEB / "index.html").read_text(encoding="utf-8")
    # Revalidation: a 304 without a body (a compressed empty body would corrupt the connection),
    # then the connection is still usable.
    for _ in range(2):
        again = await client.get(
            "/", headers={"If-None-Match": resp.headers["ETag"], "Accept-Encoding": "gzip"}
        )
        assert again.status == 304
        assert await again.read() == b""
    head = await client.head("/static/app.js", headers={"Accept-Encoding": "gzip"})
    assert head.status == 200
    assert (await client.get("/static/theme.js")).status == 200


async def test_app_files_are_compressed_when_accepted(client) -> None:
    resp = await client.get("/static/app.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in resp.headers["Vary"]
    raw = await resp.read()
    assert gzip.decompress(raw) == (WEB / "app.js").read_bytes()
    assert len(raw) < (WEB / "app.js").stat().st_size / 2
    plain = await client.get("/static/app.js", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await plain.read() == (WEB / "app.js").read_bytes()


@pytest.mark.parametrize("name", VENDOR_FILES)
async def test_vendor_files_are_immutable_and_precompressed(client, name: str) -> None:
    resp = await client.get("/static/" + name, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["Content-Encoding"] == "gzip"
    # The shipped .gz is exactly the vendored file (a stale copy would serve different code).
    assert gzip.decompress(await resp.read()) == (WEB / name).read_bytes()
    plain = await client.get("/static/" + name, headers={"Accept-Encoding": ""})
    assert await plain.read() == (WEB / name).read_bytes()


@pytest.mark.parametrize("path", ["/static/", "/static/vendor/", "/static/vendor/htmx-2.0.11/"])
async def test_no_directory_listing(client, path: str) -> None:
    resp = await client.get(path)
    assert resp.status in (403, 404)
    assert "htmx.min.js" not in await resp.text()


@pytest.mark.parametrize(
    "path", ["/static/../api/static.py", "/static/%2e%2e/api/static.py", "/static/vendor/../../config.py"]
)
async def test_no_escape_from_the_web_dir(client, path: str) -> None:
    resp = await client.get(path)
    assert resp.status in (403, 404)
    assert "add_routes" not in await resp.text()


async def test_symlinks_are_not_followed(aiohttp_client, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    web_dir = tmp_path / "web"
    (web_dir / "sub").mkdir(parents=True)
    (web_dir / "index.html").write_text("<!doctype html><title>x</title>")
    (web_dir / "evil.js").symlink_to(secret)
    (web_dir / "sub" / "evil.txt").symlink_to(secret)
    (web_dir / "sub" / "ok.txt").write_text("fine")
    app = web.Application()
    static.add_routes(app, web_dir)
    client = await aiohttp_client(app)
    assert (await client.get("/static/sub/ok.txt")).status == 200
    for path in ("/static/evil.js", "/static/sub/evil.txt"):
        resp = await client.get(path)
        assert resp.status in (403, 404), path
        assert "top secret" not in await resp.text()


def test_no_cdn_and_every_referenced_file_exists() -> None:
    """The NAS may be offline: every script and stylesheet comes from the package."""
    html = (WEB / "index.html").read_text(encoding="utf-8")
    refs = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert refs
    for ref in refs:
        assert not re.match(r"^(https?:)?//", ref), f"external reference {ref}"
        if ref.startswith("/static/"):
            assert (WEB / ref.removeprefix("/static/")).is_file(), ref
    for text in [p.read_text(encoding="utf-8") for p in WEB.glob("*.js")] + [html]:
        assert "cdn." not in text and "unpkg" not in text and "jsdelivr" not in text
    for vendor_dir in ("bootstrap-5.3.9", "htmx-2.0.11"):
        assert (WEB / "vendor" / vendor_dir / "LICENSE").is_file()


async def test_served_by_the_daemon_app_without_login(aiohttp_client, tmp_path: Path) -> None:
    """create_app mounts the UI; it is public (the API behind it is not) and carries the security headers."""
    config = load_text(
        f"data_dir: {tmp_path / 'data'}\nlibrary:\n  roots: [{tmp_path / 'lib'}]\n", "config.yaml"
    )
    store = Store(None, tmp_path / "data")
    try:
        client = await aiohttp_client(create_app(AppContext(config=config, store=store, bus=EventBus())))
        resp = await client.get("/")
        assert resp.status == 200
        assert "default-src 'self'" in resp.headers.get("Content-Security-Policy", "")
        assert (await client.get("/static/websocket_client.js")).status == 200
        assert (await client.get("/api/queue/status")).status in (401, 503)
    finally:
        store.close()
