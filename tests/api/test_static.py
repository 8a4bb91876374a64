"""Serving the bundled UI: `/`, `/static/...`, caching, compression, no listing, no symlinks, no CDN."""

from __future__ import annotations

import gzip
import posixpath
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
    head = await client.head("/static/js/main.js", headers={"Accept-Encoding": "gzip"})
    assert head.status == 200
    assert (await client.get("/static/theme.js")).status == 200


@pytest.mark.parametrize("name", ["js/pages/config.js", "styles.css"])
async def test_app_files_are_compressed_when_accepted(client, name: str) -> None:
    resp = await client.get("/static/" + name, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in resp.headers["Vary"]
    raw = await resp.read()
    assert gzip.decompress(raw) == (WEB / name).read_bytes()
    assert len(raw) < (WEB / name).stat().st_size / 2
    plain = await client.get("/static/" + name, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await plain.read() == (WEB / name).read_bytes()


MODULES = sorted(p.relative_to(WEB).as_posix() for p in (WEB / "js").rglob("*.js"))


async def test_es_modules_are_javascript_and_revalidated(client) -> None:
    """Browsers refuse a module script without a JavaScript MIME type; the app's modules change with each
    release, so they revalidate like the top-level files (not the vendor's immutable caching)."""
    assert "js/main.js" in MODULES and "js/core/dom.js" in MODULES and "js/pages/library.js" in MODULES
    for name in MODULES:
        resp = await client.get("/static/" + name)
        assert resp.status == 200, name
        assert resp.content_type in ("text/javascript", "application/javascript"), name
        assert resp.headers["Cache-Control"] == "no-cache", name
        again = await client.get("/static/" + name, headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status == 304, name


def test_module_graph_is_complete_and_preloaded() -> None:
    """Every import names a module in the package, every module is used, nothing reads window.App (a test and
    debugging hook only), and index.html preloads exactly main.js's static imports (the pages every visit
    needs), so the first page does not wait for one import level after the other, nor for the other pages."""
    html = (WEB / "index.html").read_text(encoding="utf-8")
    assert '<script type="module" src="/static/js/main.js"></script>' in html
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/([^"]+)">', html))

    def graph(dynamic: bool) -> set[str]:
        seen, todo = set(), ["js/main.js"]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            text = (WEB / name).read_text(encoding="utf-8")
            assert "window.App" not in text or name == "js/main.js", name
            refs = re.findall(r'^import [^;]*? from "(\.{1,2}/[^"]+)";$', text, re.M)
            if dynamic:
                refs += re.findall(r'\bimport\("(\.{1,2}/[^"]+)"\)', text)
            for ref in refs:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), ref))
                assert (WEB / target).is_file(), f"{name} imports missing {target}"
                todo.append(target)
        return seen

    eager, everything = graph(dynamic=False), graph(dynamic=True)
    assert everything == set(MODULES), "modules nothing imports: " + str(set(MODULES) - everything)
    assert {"js/pages/library.js", "js/pages/auth.js", "js/core/socket.js"} <= eager
    assert "js/pages/config.js" not in eager
    assert preloaded == eager - {"js/main.js"}


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
    # below js/ (the app-file route, not add_static): no symlinked file or folder either
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.js").write_text("top secret")
    (web_dir / "js" / "core").mkdir(parents=True)
    (web_dir / "js" / "core" / "ok.js").write_text("export {};")
    (web_dir / "js" / "core" / "evil.js").symlink_to(secret)
    (web_dir / "js" / "pages").symlink_to(outside)
    app = web.Application()
    static.add_routes(app, web_dir)
    client = await aiohttp_client(app)
    assert (await client.get("/static/sub/ok.txt")).status == 200
    assert (await client.get("/static/js/core/ok.js")).status == 200
    for path in (
        "/static/evil.js",
        "/static/sub/evil.txt",
        "/static/js/core/evil.js",
        "/static/js/pages/leak.js",
    ):
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
    for text in [p.read_text(encoding="utf-8") for p in [*WEB.glob("*.js"), *(WEB / "js").rglob("*.js")]] + [
        html
    ]:
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
        assert (await client.get("/static/js/core/websocket_client.js")).status == 200
        assert (await client.get("/api/queue/status")).status in (401, 503)
    finally:
        store.close()
