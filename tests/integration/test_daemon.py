"""The daemon as a real process: /health, sd_notify datagrams, SIGTERM stop, bad config."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from aniworldd.api.app import create_app
from aniworldd.api.context import AppContext
from aniworldd.db import Store
from aniworldd.events import EventBus
from aniworldd.providers.hosters.base import MediaSource
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def _write_config(tmp_path: Path, port: int) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"server:\n  port: {port}\n"
        "library:\n  watch: false\n  scan_on_start: false\n"
        "downloads:\n  autostart: false\n"
    )
    return cfg


def _recv_until(sock: socket.socket, wanted: str, deadline: float) -> list[str]:
    messages = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(wanted in m for m in messages):
            break
    return messages


def test_daemon_ready_health_and_sigterm(tmp_path: Path) -> None:
    port = free_port()
    cfg = _write_config(tmp_path, port)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "300000"}
    env.pop("JOURNAL_STREAM", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aniworldd", "run", "--config", str(cfg)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        messages = _recv_until(sock, "READY=1", time.monotonic() + 30)
        assert any("READY=1" in m for m in messages), messages
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            body = json.loads(resp.read())
        assert resp.status == 200
        assert body["status"] == "ok" and body["database"] == "ok" and body["version"]
        assert isinstance(body["uptime_s"], float)
        messages += _recv_until(sock, "WATCHDOG=1", time.monotonic() + 10)
        assert any("WATCHDOG=1" in m for m in messages)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        messages += _recv_until(sock, "STOPPING=1", time.monotonic() + 2)
        assert any("STOPPING=1" in m for m in messages)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


def test_invalid_config_exits_1_with_path(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("downloads:\n  max_concurrent: lots\n")
    res = subprocess.run(
        [sys.executable, "-m", "aniworldd", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1
    assert f"{cfg}:2 downloads.max_concurrent: expected int" in res.stderr


async def test_health_is_503_when_database_unusable(config) -> None:
    store = Store(config["database"]["url"], config["data_dir"])
    ctx = AppContext(config=config, store=store, bus=EventBus())
    async with TestClient(TestServer(create_app(ctx))) as client:
        ok = await client.get("/health")
        assert ok.status == 200
        db_path = store.sqlite_path

        def replace_db_file_with_folder() -> None:
            db_path.unlink()
            Path(f"{db_path}-wal").unlink(missing_ok=True)
            db_path.mkdir()

        replace_db_file_with_folder()
        store._executor.submit(store.db.disconnect).result()  # drop the open connection to the old file
        bad = await client.get("/health")
        assert bad.status == 503
        body = await bad.json()
        assert body["database"] == "error" and body["status"] == "degraded"
    store.sqlite_path.rmdir()
    store.close()


async def test_download_settings_saved_through_the_api_apply_without_a_restart(tmp_path: Path) -> None:
    import aiohttp
    import yaml

    from aniworldd.config import load_config
    from aniworldd.daemon import Daemon
    from aniworldd.systemd import Notifier

    config = tmp_path / "config.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nserver: {{host: 127.0.0.1, port: {free_port()}}}\n"
        f"library: {{roots: [{tmp_path / 'library'}], watch: false, scan_on_start: false}}\n"
        "downloads: {autostart: false}\n"
    )
    daemon = Daemon(load_config(config, env={}), config, notifier=Notifier({}))
    await daemon.start()
    base = f"http://127.0.0.1:{daemon.port}"
    queue = daemon.ctx.queue
    try:
        assert (queue.max_concurrent, queue.runner.speed_limit, queue.runner.launcher.warm_seconds) == (
            2,
            None,
            600,
        )
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/auth/setup", json={"password": "correct horse battery"}) as r:
                assert r.status == 201
            async with http.post(f"{base}/api/auth/login", json={"password": "correct horse battery"}) as r:
                auth = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
            doc = yaml.safe_load(config.read_text())
            doc["downloads"].update(
                max_concurrent=5, speed_limit="3M", warm_start="1m", hosters=["VOE", "Vidoza"]
            )
            async with http.put(f"{base}/api/config", json=doc, headers=auth) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["restart_required"] == []  # all of these apply at once
            for _ in range(100):
                if queue.max_concurrent == 5:
                    break
                await asyncio.sleep(0.05)
            assert queue.max_concurrent == 5
            assert queue.runner.speed_limit == "3M"
            assert queue.runner.launcher.warm_seconds == 60
            assert queue.finder.hosters_pref == ["VOE", "Vidoza"]
            src = MediaSource(url="http://h/v.mp4", kind="mp4", hoster="VOE")
            argv = queue.runner.arguments(src, tmp_path / "aw-1-voe-ger-dub")
            assert argv[argv.index("--limit-rate") + 1] == "3M"  # the next download gets it
    finally:
        await daemon.stop()
