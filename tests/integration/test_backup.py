"""`aniworldd backup` / `aniworldd restore` round trip with the installed command and a real daemon:
live data -> backup while the daemon runs -> wipe -> restore -> a daemon serves the same series."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from aniworldd.cli import main as cli_main
from aniworldd.config import load_config
from aniworldd.core.markers import read_marker, write_marker
from aniworldd.daemon import Daemon
from aniworldd.db import Store
from aniworldd.systemd import Notifier
from tests.conftest import free_port

pytestmark = pytest.mark.slow

CONSOLE_SCRIPT = Path(sys.executable).parent / "aniworldd"
SERIES = [
    ("attack-on-titan", "Attack on Titan", "Attack on Titan (2013)", "aniworld"),
    ("86-eighty-six", "86 Eighty Six", "86 - Eighty Six", "aniworld"),
    ("breaking-bad", "Breaking Bad", "Breaking Bad", "sto"),
]


PASSWORD = "correct horse battery"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANIWORLDD_", "NOTIFY_", "WATCHDOG_"))}
    return {**env, **extra}


def aniworldd(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60
    )


def _start_daemon(config: Path, port: int, log: Path) -> subprocess.Popen:
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "run", "--config", str(config)],
            env=_env(ANIWORLDD_MASTER_PASSWORD=PASSWORD),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("daemon did not serve /health: " + log.read_text()[-2000:])


def _add_series(db_url: str, data_dir: str) -> None:
    """Write rows the way the services do, into the live database of the running daemon (WAL, 2 processes)."""
    store = Store(db_url, data_dir)
    try:

        def q() -> None:
            for key, name, folder, site in SERIES:
                s = store.e.AnimeSeries(key=key, name=name, folder=folder, site=site)
                for ep in range(1, 4):
                    store.e.Episode(
                        series=s, season=1, number=ep, title=f"{name} {ep}", languages=["ger-sub"]
                    )
            aot = store.e.AnimeSeries.get(key="attack-on-titan")
            store.e.DownloadQueueItem(series=aot, season=1, episode=3, status="pending")

        store.run_sync(q)
    finally:
        store.close()


def _series_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT key, name, folder, site FROM anime_series ORDER BY key").fetchall()


@pytest.fixture
def site(tmp_path: Path) -> dict:
    """A config with relative paths, as a user writes it, and a library with marked series folders."""
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    config = home / "config.yaml"
    config.write_text(
        "# my settings\n"
        "data_dir: ./data\n"
        f"server:\n  port: {port}\n"
        "library:\n  roots: [./library]\n  watch: false\n  scan_on_start: false\n"
        "downloads:\n  autostart: false\n"
        "provider:\n  aniworld_url: http://127.0.0.1:9\n  sto_url: http://127.0.0.1:9\n"
    )
    cfg = load_config(config, env={})
    for key, name, folder, site_name in SERIES:
        path = home / "library" / folder
        path.mkdir(parents=True)
        if key == "86-eighty-six":  # a library made by an older tool: plain-text key file
            (path / "key").write_text(key + "\n")
        else:
            write_marker(path, key, site_name, name)
    return {"home": home, "config": config, "port": port, "cfg": cfg}


def test_backup_wipe_restore_serves_the_same_series(site: dict) -> None:
    home, config, port, cfg = site["home"], site["config"], site["port"], site["cfg"]
    data_dir = Path(cfg["data_dir"])
    db = data_dir / "aniworldd.db"
    proc = _start_daemon(config, port, home / "daemon.log")
    try:
        _add_series(cfg["database"]["url"], cfg["data_dir"])
        state_file = data_dir / "extra.state"  # any other small state file the daemon keeps here
        state_file.write_bytes(b"s3cret")
        state_file.chmod(0o600)
        token = _login(port)  # a session issued before the backup
        before = _series_rows(db)
        assert len(before) == 3

        # live backup: the daemon keeps running and holds the database open in WAL mode
        result = aniworldd("backup", "--config", str(config), "--output", str(home / "b.tar.gz"), cwd=home)
        assert result.returncode == 0, result.stderr
        assert "3 marker(s)" in result.stdout
        assert aniworldd("healthcheck", "--config", str(config), cwd=home).returncode == 0

        # restore is refused while the daemon answers, and changes nothing
        mtime = db.stat().st_mtime_ns
        refused = aniworldd("restore", str(home / "b.tar.gz"), "--config", str(config), cwd=home)
        assert refused.returncode == 1
        assert "running" in refused.stderr
        assert db.stat().st_mtime_ns == mtime and not list(data_dir.glob("pre-restore-*"))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert aniworldd("healthcheck", "--config", str(config), cwd=home).returncode == 1

    archive = home / "b.tar.gz"
    assert archive.stat().st_mode & 0o077 == 0  # holds secrets: owner only
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        markers = json.loads(tar.extractfile("markers.json").read())
    assert {"manifest.json", "config.yaml", "aniworldd.db", "markers.json"} <= names
    # the generated secrets (JWT key, password hash) and other small state files of the data dir
    assert {"data/jwt.secret", "data/auth.json", "data/extra.state"} <= names
    assert sorted((m["folder"], m["marker"], m["key"]) for m in markers) == [
        ("86 - Eighty Six", "key", "86-eighty-six"),
        ("Attack on Titan (2013)", ".aniworld.json", "attack-on-titan"),
        ("Breaking Bad", ".aniworld.json", "breaking-bad"),
    ]

    # wipe: config, data dir (database, secrets) and every marker; the video folders stay
    original_config = config.read_bytes()
    config.unlink()
    for path in sorted(data_dir.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    data_dir.rmdir()
    for m in markers:
        (Path(m["root"]) / m["folder"] / m["marker"]).unlink()

    result = aniworldd("restore", str(archive), "--config", str(config), "--markers", cwd=home)
    assert result.returncode == 0, result.stderr
    assert config.read_bytes() == original_config  # comments and all
    assert state_file.read_bytes() == b"s3cret" and state_file.stat().st_mode & 0o777 == 0o600
    assert _series_rows(db) == before
    assert read_marker(home / "library" / "Breaking Bad").site == "sto"
    assert read_marker(home / "library" / "86 - Eighty Six").key == "86-eighty-six"

    # a daemon on the restored files serves the same series (by key) and the queue survived
    served, episodes, pending, http = asyncio.run(_serve_restored(config, token))
    assert sorted((s["key"], s["name"], s["folder"], s["site"]) for s in served) == before
    assert [(e["season"], e["episode"]) for e in episodes] == [(1, 1), (1, 2), (1, 3)]
    assert pending == 1
    assert http["health"]["status"] == "ok" and http["health"]["database"] == "ok"
    assert http["old_token"] == 200  # JWT secret and the session row came back: nobody is logged out
    assert http["login"] == 200  # the master password (auth.json) came back
    assert http["queue_pending"] == 1


def _login(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/auth/login",
        data=json.dumps({"password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())["access_token"]


async def _serve_restored(config: Path, token: str) -> tuple[list[dict], list[dict], int, dict]:
    daemon = Daemon(load_config(config, env={}), config, notifier=Notifier({}))
    await daemon.start()
    base = f"http://127.0.0.1:{daemon.port}"
    http: dict = {}
    try:
        served = await daemon.ctx.series.list()
        episodes = await daemon.ctx.series.episodes("attack-on-titan")
        store = daemon.ctx.store
        pending = await store.run(
            lambda: store.e.DownloadQueueItem.select(lambda q: q.status == "pending").count()
        )
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{base}/health") as resp:
                http["health"] = await resp.json()
            headers = {"Authorization": f"Bearer {token}"}
            async with client.get(f"{base}/api/system/status", headers=headers) as resp:
                http["old_token"] = resp.status
                http["queue_pending"] = (await resp.json())["queue"]["pending"]
            async with client.post(f"{base}/api/auth/login", json={"password": PASSWORD}) as resp:
                http["login"] = resp.status
    finally:
        await daemon.stop()
    return served, episodes, pending, http


def test_restore_rejects_bad_archives_and_changes_nothing(tmp_path: Path, capsys) -> None:
    """In-process CLI (the same main() the console script runs) to keep six cases cheap."""
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nserver:\n  port: {free_port()}\n")
    cases = {
        "not-a-tar.tar.gz": b"this is not an archive",
        "traversal.tar.gz": {"manifest.json": b'{"format": 1}', "aniworldd.db": b"", "../evil": b"x"},
        "no-db.tar.gz": {"manifest.json": b'{"format": 1}'},
        "future.tar.gz": {"manifest.json": b'{"format": 99}', "aniworldd.db": b""},
        "bad-db.tar.gz": {"manifest.json": b'{"format": 1}', "aniworldd.db": b"garbage" * 100},
        "bad-config.tar.gz": {
            "manifest.json": b'{"format": 1}',
            "aniworldd.db": b"",
            "config.yaml": b"server:\n  port: seventy\n",
        },
    }
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            with tarfile.open(path, "w:gz") as tar:
                for member, data in content.items():
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        code = cli_main(["restore", str(path), "--config", str(config)])
        err = capsys.readouterr().err
        assert code == 1, name
        assert err.startswith("restore refused:"), (name, err)
        assert not (tmp_path / "data").exists(), name  # nothing was created or replaced
        assert not (tmp_path / "evil").exists()
    assert config.read_text().startswith("data_dir:")


def test_backup_refuses_postgres_and_missing_database(tmp_path: Path) -> None:
    pg = tmp_path / "pg.yaml"
    pg.write_text("database:\n  url: postgres://aniworldd@127.0.0.1:5432/test\n")
    result = aniworldd("backup", "--config", str(pg), cwd=tmp_path)
    assert result.returncode == 1 and "pg_dump" in result.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text(f"data_dir: {tmp_path / 'nothing-here'}\n")
    result = aniworldd("backup", "--config", str(empty), cwd=tmp_path)
    assert result.returncode == 1 and "no database" in result.stderr
    assert list(tmp_path.glob("*.tar.gz")) == [] and list(tmp_path.glob(".*partial")) == []


def test_restore_over_live_files_keeps_the_previous_ones(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nserver:\n  port: {free_port()}\n")
    cfg = load_config(config, env={})
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    store.run_sync(lambda: store.e.AnimeSeries(key="one-piece", name="One Piece"))
    store.close()
    archive = tmp_path / "b.tar.gz"
    assert aniworldd("backup", "-c", str(config), "-o", str(archive), cwd=tmp_path).returncode == 0
    assert (
        aniworldd("backup", "-c", str(config), "-o", str(archive), cwd=tmp_path).returncode == 1
    )  # no overwrite

    store = Store(cfg["database"]["url"], cfg["data_dir"])  # life goes on after the backup
    store.run_sync(lambda: store.e.AnimeSeries(key="naruto", name="Naruto"))
    store.close()
    config.write_text(config.read_text() + "logging:\n  level: DEBUG\n")
    changed_config = config.read_text()

    result = aniworldd("restore", str(archive), "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    db = Path(cfg["data_dir"]) / "aniworldd.db"
    assert [r[0] for r in _series_rows(db)] == ["one-piece"]
    assert "DEBUG" not in config.read_text()
    (kept,) = Path(cfg["data_dir"]).glob("pre-restore-*")
    assert [r[0] for r in _series_rows(kept / "aniworldd.db")] == ["naruto", "one-piece"]
    assert (kept / "config.yaml").read_text() == changed_config
