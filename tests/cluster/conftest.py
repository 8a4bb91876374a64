"""Real servers for the cluster tests: a redis-server of the test's own (so it can be restarted without
touching anyone else's) and a fresh PostgreSQL database on the machine's server (127.0.0.1:5432)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, postgres_answers

PG_ADMIN = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
needs_postgres = pytest.mark.skipif(not postgres_answers(), reason="no PostgreSQL on 127.0.0.1:5432")


class RedisServer:
    """One redis-server process on a free port, nothing kept on disk; `restart()` keeps the port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _admin():
    import psycopg2

    conn = psycopg2.connect(**PG_ADMIN, connect_timeout=5)
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def fresh_database(prefix: str = "aw_test") -> Iterator[str]:
    """postgresql://... of a new, empty database, dropped (with its connections) on exit."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not postgres_answers():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    with fresh_database() as url:
        yield url
