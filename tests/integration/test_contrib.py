"""The contrib/ examples run for real: mosquitto with our user + ACL file, and nginx / Caddy with our proxy
configs in front of an aiohttp upstream, carrying a WebSocket upgrade on /ws/ (as the daemon's /ws/connect).

Only the addresses differ from the shipped files (free ports, temp paths, a throwaway certificate): each test
rewrites those lines and nothing else, and fails if a line it expects to rewrite is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import aiomqtt
import pytest
from aiohttp import web

from tests.conftest import free_port
from tests.nginx_main import write_nginx_main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"


def _binary(name: str, *extra: str) -> str:
    found = shutil.which(name) or next((p for p in extra if Path(p).exists()), None)
    if found is None:
        pytest.skip(f"{name} not installed (Debian package providing it: see Makefile TEST_DEBS)")
    return found


def _rewrite(text: str, old: str, new: str, count: int = 1) -> str:
    assert text.count(old) == count, f"expected {count}x {old!r} in the shipped file"
    return text.replace(old, new)


def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}: {log.read_text()[-3000:]}")


@contextlib.contextmanager
def _process(args: list[str], log: Path, port: int, env: dict | None = None) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_port(port, proc, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- mosquitto: users and ACL -----------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    mosquitto = _binary("mosquitto", "/usr/sbin/mosquitto")
    passwd_tool = _binary("mosquitto_passwd")
    port = free_port()
    passwd = tmp_path / "passwd"
    subprocess.run([passwd_tool, "-c", "-b", str(passwd), "aniworldd", "daemon-pw"], check=True, timeout=30)
    subprocess.run([passwd_tool, "-b", str(passwd), "homeassistant", "ha-pw"], check=True, timeout=30)
    shutil.copy(CONTRIB / "mosquitto" / "acl", tmp_path / "acl")
    os.chmod(passwd, 0o600)
    os.chmod(tmp_path / "acl", 0o600)
    (tmp_path / "data").mkdir()
    conf = (CONTRIB / "mosquitto" / "mosquitto.conf").read_text()
    conf = _rewrite(conf, "listener 1883\n", f"listener {port} 127.0.0.1\n")
    conf = _rewrite(conf, "password_file /mosquitto/config/passwd", f"password_file {passwd}")
    conf = _rewrite(conf, "acl_file /mosquitto/config/acl", f"acl_file {tmp_path / 'acl'}")
    conf = _rewrite(
        conf, "persistence_location /mosquitto/data/", f"persistence_location {tmp_path / 'data'}/"
    )
    if os.geteuid() == 0:  # as root mosquitto drops to user `mosquitto`, who cannot enter pytest's tmp dirs
        conf += "user root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    with _process([mosquitto, "-c", str(tmp_path / "mosquitto.conf")], tmp_path / "mosquitto.log", port):
        yield port


def _client(port: int, user: str | None, password: str | None, ident: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, identifier=ident, timeout=10)


async def test_mosquitto_acl_lets_each_client_do_its_job_only(broker: int) -> None:
    for user, password in ((None, None), ("aniworldd", "wrong")):
        with pytest.raises(aiomqtt.MqttError):
            async with _client(broker, user, password, f"intruder-{user}"):
                pass

    async with (
        _client(broker, "aniworldd", "daemon-pw", "aniworldd") as daemon,
        _client(broker, "homeassistant", "ha-pw", "ha") as ha,
    ):
        await daemon.subscribe("aniworld/#", qos=1)
        await daemon.subscribe("homeassistant/status", qos=1)
        await ha.subscribe("aniworld/#", qos=1)
        await ha.subscribe("homeassistant/#", qos=1)

        # the daemon publishes state and discovery; Home Assistant reads both
        await daemon.publish("aniworld/status", "online", qos=1, retain=True)
        await daemon.publish("homeassistant/sensor/aniworldd/pending/config", "{}", qos=1, retain=True)
        got = await _collect(ha, 2)
        assert [(m.topic.value, m.payload) for m in got] == [
            ("aniworld/status", b"online"),
            ("homeassistant/sensor/aniworldd/pending/config", b"{}"),
        ]

        # Home Assistant may send commands and its birth message, but not overwrite the daemon's state;
        # MQTT keeps one client's QoS 1 messages in order, so the denied one would arrive before the next
        await ha.publish("aniworld/status", "offline", qos=1)  # denied by the ACL (silently dropped)
        await ha.publish("aniworld/request/queue/start", "{}", qos=1)
        await ha.publish("homeassistant/status", "online", qos=1)
        got = await _collect(daemon, 3)
        assert [(m.topic.value, m.payload) for m in got] == [
            ("aniworld/status", b"online"),  # its own publish, echoed back to its subscription
            ("aniworld/request/queue/start", b"{}"),
            ("homeassistant/status", b"online"),
        ]


async def _collect(client: aiomqtt.Client, n: int) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []

    async def take() -> None:
        async for message in client.messages:
            got.append(message)
            if len(got) == n:
                return

    await asyncio.wait_for(take(), timeout=15)
    return got


# -- reverse proxies --------------------------------------------------------------------------------------


@pytest.fixture
async def upstream(aiohttp_server) -> int:
    """Stands in for the daemon: a WebSocket on /ws/connect, plain JSON elsewhere, /metrics as text."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            proto = request.headers.get("X-Forwarded-Proto", "-")
            await sock.send_str(f"echo:{msg.data}:{proto}:{request.host}")
        return sock

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text="aniworldd_uptime_seconds 1\n")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/ws/connect", ws)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    server = await aiohttp_server(app)
    return server.port


async def _through_proxy(base: str) -> tuple[str, int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base}/ws/connect", ssl=False) as sock:
            await sock.send_str("hello")
            echo = (await sock.receive(timeout=10)).data
        async with session.get(f"{base}/metrics", ssl=False) as resp:
            metrics_status = resp.status
        async with session.get(f"{base}/health", ssl=False) as resp:
            health = await resp.json()
    return echo, metrics_status, health


def _self_signed(folder: Path) -> tuple[Path, Path]:
    openssl = _binary("openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=anime.example.lan",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


async def test_nginx_example_proxies_websocket_upgrade(tmp_path: Path, upstream: int) -> None:
    nginx = _binary("nginx", "/usr/sbin/nginx")
    http_port, https_port = free_port(), free_port()
    cert, key = _self_signed(tmp_path)
    site = (CONTRIB / "nginx" / "aniworldd.conf").read_text()
    site = _rewrite(site, "server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream};")
    site = _rewrite(site, "    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n")
    site = _rewrite(site, "    listen [::]:80;\n", "")
    site = _rewrite(site, "    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{https_port} ssl http2;\n")
    site = _rewrite(site, "    listen [::]:443 ssl http2;\n", "")
    site = _rewrite(site, "/etc/ssl/certs/anime.example.lan.pem", str(cert))
    site = _rewrite(site, "/etc/ssl/private/anime.example.lan.key", str(key))
    (tmp_path / "aniworldd.conf").write_text(site)
    main = write_nginx_main(tmp_path, tmp_path / "aniworldd.conf")
    check = await asyncio.to_thread(
        subprocess.run,
        [nginx, "-t", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stderr
    with _process([nginx, "-p", str(tmp_path), "-c", str(main)], tmp_path / "nginx.log", https_port):
        echo, metrics_status, health = await _through_proxy(f"https://127.0.0.1:{https_port}")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{http_port}/health", allow_redirects=False) as resp:
                assert resp.status == 301 and resp.headers["Location"].startswith("https://")
    assert echo == f"echo:hello:https:127.0.0.1:{https_port}"  # the client's Host and scheme reach the daemon
    assert metrics_status == 200  # 127.0.0.1 is on the allow list
    assert health == {"status": "ok"}


async def test_caddy_example_proxies_websocket_upgrade(tmp_path: Path, upstream: int) -> None:
    caddy = _binary("caddy")
    port = free_port()
    text = (CONTRIB / "caddy" / "Caddyfile").read_text()
    text = _rewrite(text, "\nanime.example.lan {", f"\n{{\n\tadmin off\n}}\n\nhttp://127.0.0.1:{port} {{")
    text = _rewrite(text, "reverse_proxy 127.0.0.1:8080", f"reverse_proxy 127.0.0.1:{upstream}", count=2)
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(text)
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    check = await asyncio.to_thread(
        subprocess.run,
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(caddyfile)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    args = [caddy, "run", "--adapter", "caddyfile", "--config", str(caddyfile)]
    with _process(args, tmp_path / "caddy.log", port, env=env):
        echo, metrics_status, health = await _through_proxy(f"http://127.0.0.1:{port}")
    assert echo == f"echo:hello:http:127.0.0.1:{port}"
    assert metrics_status == 200  # loopback is within private_ranges
    assert health == {"status": "ok"}


def test_metrics_is_fenced_off_from_public_addresses_in_both_proxies() -> None:
    """The allow/deny rules themselves (a public client cannot be simulated on loopback)."""
    nginx = (CONTRIB / "nginx" / "aniworldd.conf").read_text()
    block = re.search(r"location = /metrics \{(.*?)\}", nginx, re.S).group(1)
    assert "deny all;" in block and "allow 192.168.0.0/16;" in block
    caddy = (CONTRIB / "caddy" / "Caddyfile").read_text()
    assert re.search(r"@metrics_outside \{\s*path /metrics\s*not remote_ip private_ranges\s*\}", caddy)
    assert "respond @metrics_outside 403" in caddy
