"""`aniworldd queue ...` against a running daemon (real process, real API, real yt-dlp, fake provider)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.fakesite.media import ffmpeg_available
from tests.integration.download_helpers import (
    KEY,
    Site,
    build_series,
    clean_env,
    fake_state,
    make_config,
    seed,
    start_daemon,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)"),
]

PASSWORD = "correct horse battery staple 42"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aniworldd", "queue", *args],
        capture_output=True, text=True, timeout=60, env=env or clean_env(),
    )  # fmt: skip


def login(url: str) -> str:
    req = urllib.request.Request(
        f"{url}/api/auth/login", data=json.dumps({"password": PASSWORD}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["access_token"]


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1):
            return True
    except OSError:
        return False


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def test_queue_commands_drive_the_running_daemon(tmp_path):
    series = build_series(episodes=3)
    site = await Site(fake_state(series)).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = make_config(tmp_path, site.origin, extra=f"server: {{host: 127.0.0.1, port: {port}}}")
    from aniworldd.db import Store

    store = Store(cfg["database"]["url"], cfg["data_dir"])
    seed(store, series)
    store.close()
    config = tmp_path / "config.yaml"
    os.makedirs(cfg["library"]["roots"][0], exist_ok=True)  # the daemon never creates a root itself
    config.write_text(
        f"data_dir: {cfg['data_dir']}\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        f"library: {{roots: [{cfg['library']['roots'][0]}], watch: false, scan_on_start: false}}\n"
        "downloads: {autostart: false, min_free_gb: 0, language: [ger-dub], hosters: [Vidoza, VOE]}\n"
        f"provider: {{aniworld_url: {site.origin}, sto_url: {site.origin}, min_interval: 0}}\n"
    )
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log, ANIWORLDD_MASTER_PASSWORD=PASSWORD)
    try:
        for _ in range(600):
            if await asyncio.to_thread(reachable, url) or daemon.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert daemon.poll() is None, log_tail(log)
        token = await asyncio.to_thread(login, url)
        auth = ["--url", url, "--token", token]

        def run(*args: str) -> subprocess.CompletedProcess:
            return cli(*args, *auth)

        no_login = clean_env(XDG_CONFIG_HOME=str(tmp_path / "xdg"))  # no token a developer stored
        denied = await asyncio.to_thread(cli, "list", "--url", url, env=no_login)
        assert denied.returncode == 1 and "HTTP 401" in denied.stderr and "ANIWORLDD_TOKEN" in denied.stderr

        added = await asyncio.to_thread(run, "add", KEY, "--season", "1", "--episodes", "1-2")
        assert added.returncode == 0, added.stderr
        assert "2 episode(s)" in added.stdout
        dup = await asyncio.to_thread(run, "add", KEY, "--episodes", "2")
        assert dup.returncode == 1 and "already in the queue" in dup.stderr and "HTTP 409" in dup.stderr
        bad = await asyncio.to_thread(run, "add", KEY, "--episodes", "3-1")
        assert bad.returncode == 1 and "bad episode range" in bad.stderr

        listed = json.loads((await asyncio.to_thread(run, "list", "--json")).stdout)
        assert listed["is_running"] is False
        assert [(i["season"], i["episode"]) for i in listed["pending_queue"]] == [(1, 1), (1, 2)]
        table = (await asyncio.to_thread(run, "list")).stdout
        assert f"{KEY} S01E01 " in table and "queue stopped" in table

        started = await asyncio.to_thread(run, "start")
        assert started.returncode == 0 and "started" in started.stdout
        for _ in range(1200):
            status = json.loads((await asyncio.to_thread(run, "list", "--json")).stdout)
            if status["statistics"]["completed"] == 2 or daemon.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert status["statistics"]["completed"] == 2, log_tail(log)
        assert status["statistics"]["failed"] == 0

        assert (await asyncio.to_thread(run, "pause")).returncode == 0
        assert json.loads((await asyncio.to_thread(run, "list", "--json")).stdout)["is_paused"] is True
        assert (await asyncio.to_thread(run, "resume")).returncode == 0
        cleared = await asyncio.to_thread(run, "clear")
        assert cleared.returncode == 0 and "2 completed" in cleared.stdout
        after = json.loads((await asyncio.to_thread(run, "list", "--json")).stdout)
        assert after["completed_downloads"] == [] and after["pending_queue"] == []
        missing = await asyncio.to_thread(run, "remove", "999")
        assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(10)
        await site.stop()
