"""The MQTT bridge against a real mosquitto with a TLS listener and username/password auth.

A throwaway CA and a server certificate for 127.0.0.1/localhost are made with the `openssl` CLI, plus a
second, unrelated CA to play the "wrong CA file" an admin might configure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from aniworldd.events import EventBus
from aniworldd.mqtt import MqttBridge
from tests.integration.mqtt_fixtures import MOSQUITTO, Broker, free_port, mqtt_config, until

pytestmark = pytest.mark.mqtt

OPENSSL = shutil.which("openssl")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or (
    "/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd").exists() else None
)
USER = "aniworldd"
PASSWORD = "s3cret-pass"
_counter = iter(range(1, 10_000))


def _base() -> str:
    return f"tls{os.getpid()}x{next(_counter)}"


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


_CA_EXT = """[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_SERVER_EXT = """[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def make_ca(workdir: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (EC P-256: fast to generate) -> (cert, key)."""
    (workdir / "ca.cnf").write_text(_CA_EXT)
    cert, key = workdir / f"{name}.crt", workdir / f"{name}.key"
    _openssl(
        "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", key.name, "-out", cert.name, "-days", "2", "-subj", f"/CN={name}",
        "-config", "ca.cnf", "-extensions", "v3_ca", cwd=workdir,
    )  # fmt: skip
    return cert, key


def make_server_cert(workdir: Path, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 and localhost, signed by the given CA -> (cert, key)."""
    (workdir / "server.cnf").write_text(_SERVER_EXT)
    _openssl(
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
        "-config", "ca.cnf", cwd=workdir,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", "server.crt", "-days", "2",
        "-extfile", "server.cnf", "-extensions", "v3_server", cwd=workdir,
    )  # fmt: skip
    return workdir / "server.crt", workdir / "server.key"


@dataclass
class TlsBroker:
    broker: Broker
    ca_file: Path
    other_ca_file: Path

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """One TLS + password broker per module; tests isolate themselves with their own base topic."""
    missing = [
        name
        for name, path in (
            ("mosquitto", MOSQUITTO),
            ("mosquitto_passwd", MOSQUITTO_PASSWD),
            ("openssl", OPENSSL),
        )
        if path is None
    ]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian packages 'mosquitto', 'openssl')")
    workdir = tmp_path_factory.mktemp("mosquitto-tls")
    ca_cert, ca_key = make_ca(workdir, "test-ca")
    server_cert, server_key = make_server_cert(workdir, ca_cert, ca_key)
    other_dir = workdir / "other"
    other_dir.mkdir()
    other_ca, _ = make_ca(other_dir, "unrelated-ca")
    passwd = workdir / "passwd"
    subprocess.run(
        [MOSQUITTO_PASSWD, "-b", "-c", str(passwd), USER, PASSWORD], check=True, capture_output=True
    )

    broker = Broker(workdir)
    # Reuse the plain Broker's process handling; only the listener configuration differs.
    # `user root` only matters when the tests run as root: it stops mosquitto from dropping to the
    # `mosquitto` user, which could not read the 0700 pytest tmp dir (a no-op for other users).
    broker.conf.write_text(
        f"listener {broker.port} 127.0.0.1\n"
        f"cafile {ca_cert}\ncertfile {server_cert}\nkeyfile {server_key}\n"
        f"allow_anonymous false\npassword_file {passwd}\n"
        "user root\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"
    )
    broker.start()
    yield TlsBroker(broker, ca_cert, other_ca)
    broker.stop()


class CountingBridge(MqttBridge):
    """The real bridge, counting connection attempts so a test can see it keeps retrying."""

    attempts = 0

    def _client_factory(self) -> aiomqtt.Client:
        self.attempts += 1
        return super()._client_factory()


def tls_config(tb: TlsBroker, base: str, data_dir: Path, **tls: Any) -> dict:
    return mqtt_config(
        tb.broker,
        base,
        data_dir,
        username=USER,
        password=PASSWORD,
        tls={"enabled": True, "ca_file": str(tb.ca_file), "insecure": False, **tls},
    )


@contextlib.asynccontextmanager
async def running_bridge(cfg: dict):
    bridge = CountingBridge(cfg, EventBus(), cfg["data_dir"], reconnect_min=0.05, reconnect_max=0.2)
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.close()


def _connection_task(bridge: MqttBridge) -> asyncio.Task:
    return next(t for t in bridge._tasks if t.get_name() == "mqtt-connection")


async def retained(tb: TlsBroker, topic: str, within: float = 10.0) -> bytes | None:
    """The retained payload on topic, read by a properly verifying TLS client (None if there is none)."""
    ctx = ssl.create_default_context(cafile=str(tb.ca_file))
    async with aiomqtt.Client(
        tb.host, tb.port, username=USER, password=PASSWORD, tls_context=ctx, identifier=f"test-{free_port()}"
    ) as client:
        await client.subscribe(topic, qos=1)
        # Retained messages arrive right after SUBACK; a marker published after the subscribe arrives
        # after them, so "marker seen without retained message" means there is none.
        marker = f"{topic}/marker"
        await client.subscribe(marker, qos=1)
        await client.publish(marker, b"x", qos=1)
        async with asyncio.timeout(within):
            async for message in client.messages:
                if str(message.topic) == topic and message.retain:
                    return bytes(message.payload or b"")
                if str(message.topic) == marker:
                    return None
    return None


async def test_tls_with_ca_and_credentials_publishes_online(tls_broker: TlsBroker, tmp_path: Path) -> None:
    base = _base()
    cfg = tls_config(tls_broker, base, tmp_path / "data")
    async with running_bridge(cfg) as bridge:
        await until(lambda: bridge.connected and bridge.published >= 1)
        assert await retained(tls_broker, f"{base}/status") == b"online"
        assert bridge.status()["last_error"] is None
    # A clean close says goodbye over the same TLS session.
    assert await retained(tls_broker, f"{base}/status") == b"offline"


async def test_wrong_ca_keeps_retrying_and_insecure_connects(
    tls_broker: TlsBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = _base()
    caplog.set_level(logging.WARNING, logger="aniworldd.mqtt")
    cfg = tls_config(tls_broker, base, tmp_path / "data", ca_file=str(tls_broker.other_ca_file))
    async with running_bridge(cfg) as bridge:
        await until(lambda: bridge.attempts >= 3)
        assert not bridge.connected and bridge.connects == 0
        assert not _connection_task(bridge).done()
        assert "certificate verify failed" in (bridge.last_error or "")
        assert any("certificate verify failed" in r.getMessage() for r in caplog.records)
    assert await retained(tls_broker, f"{base}/status") is None

    # insecure: the admin accepts any server certificate (encrypted, not authenticated) -> connects.
    cfg["mqtt"]["tls"]["insecure"] = True
    async with running_bridge(cfg) as bridge:
        await until(lambda: bridge.connected and bridge.published >= 1)
        assert await retained(tls_broker, f"{base}/status") == b"online"


async def test_wrong_password_is_logged_and_retried(
    tls_broker: TlsBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = _base()
    caplog.set_level(logging.WARNING, logger="aniworldd.mqtt")
    cfg = tls_config(tls_broker, base, tmp_path / "data")
    cfg["mqtt"]["password"] = "wrong-password"
    async with running_bridge(cfg) as bridge:
        await until(lambda: bridge.attempts >= 3)
        assert not bridge.connected and bridge.connects == 0
        assert not _connection_task(bridge).done()
        reason = bridge.last_error or ""
        assert "authoriz" in reason.lower(), reason
        assert any(reason in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert await retained(tls_broker, f"{base}/status") is None


@pytest.mark.slow
async def test_daemon_keeps_running_with_wrong_password(tls_broker: TlsBroker, tmp_path: Path) -> None:
    """The real daemon process: the HTTP side stays up, reports MQTT as disconnected, logs the reason."""
    base = _base()
    port = free_port()
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"server:\n  port: {port}\n"
        f"library:\n  roots: [{tmp_path / 'library'}]\n  watch: false\n  scan_on_start: false\n"
        "downloads:\n  autostart: false\n"
        f"mqtt:\n  host: 127.0.0.1\n  port: {tls_broker.port}\n  base_topic: {base}\n"
        f"  client_id: daemon-{base}\n  username: {USER}\n  password: wrong-password\n"
        f"  tls:\n    enabled: true\n    ca_file: {tls_broker.ca_file}\n"
    )
    log_file = tmp_path / "daemon.log"

    def metrics() -> str | None:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                return resp.read().decode()
        return None

    def spawn() -> subprocess.Popen:
        with log_file.open("wb") as logf:
            return subprocess.Popen(
                [sys.executable, "-m", "aniworldd", "run", "--config", str(cfg_file)],
                stdout=subprocess.DEVNULL,
                stderr=logf,
            )

    proc = spawn()
    try:
        await until(lambda: "not authori" in log_file.read_text().lower() or proc.poll() is not None, 30)
        assert proc.poll() is None, log_file.read_text()[-2000:]
        text = await asyncio.to_thread(metrics)
        assert text is not None and "aniworldd_mqtt_connected 0" in text
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 15)
    assert await retained(tls_broker, f"{base}/status") is None
