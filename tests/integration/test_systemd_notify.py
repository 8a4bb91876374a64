"""The installed `aniworldd` console script under a fake systemd: a real AF_UNIX datagram socket as
NOTIFY_SOCKET, WATCHDOG_USEC set, exactly what systemd gives a Type=notify service with WatchdogSec=."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

CONSOLE_SCRIPT = Path(sys.executable).parent / "aniworldd"
WATCHDOG_USEC = 400_000


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer, so use a short dir.
    folder = tempfile.mkdtemp(prefix="awd-", dir="/tmp")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield sock, path
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


def _config(tmp_path: Path, port: int) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"server:\n  port: {port}\n"
        f"library:\n  roots: [{tmp_path / 'library'}]\n  watch: false\n  scan_on_start: false\n"
        "downloads:\n  autostart: false\n"
        "provider:\n  aniworld_url: http://127.0.0.1:9\n  sto_url: http://127.0.0.1:9\n"
    )
    return cfg


def _env(sock_path: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANIWORLDD_", "NOTIFY_", "WATCHDOG_"))}
    env.pop("JOURNAL_STREAM", None)
    env.update(NOTIFY_SOCKET=sock_path, WATCHDOG_USEC=str(WATCHDOG_USEC), **extra)
    return env


class Datagrams:
    """Every sd_notify datagram received, split into its `KEY=value` lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lines: list[str] = []

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                self.lines.extend(self.sock.recv(4096).decode().splitlines())
            except TimeoutError:
                return False
        return True

    def count(self, line: str) -> int:
        return self.lines.count(line)


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        return json.loads(resp.read())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_installed_daemon_speaks_sd_notify(tmp_path: Path, notify_socket) -> None:
    assert CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} missing: install the package (pip install -e .)"
    sock, sock_path = notify_socket
    port = free_port()
    with (tmp_path / "stderr.log").open("wb") as err:  # a file, not a pipe: a chatty daemon never blocks
        proc = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "run", "--config", str(_config(tmp_path, port))],
            env=_env(sock_path),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    got = Datagrams(sock)
    try:
        assert got.wait_for(lambda lines: "READY=1" in lines), got.lines
        status = [ln for ln in got.lines if ln.startswith("STATUS=")]
        assert status and f":{port}" in status[-1]  # the STATUS line says where it listens
        assert _health(port)["status"] == "ok"  # READY came after the port was open
        # WATCHDOG_USEC=400ms -> a ping every 200 ms; wait for several, so it is a loop, not a one-off
        assert got.wait_for(lambda lines: lines.count("WATCHDOG=1") >= 3, timeout=20), got.lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, (tmp_path / "stderr.log").read_text()[-2000:]
        assert got.wait_for(lambda lines: "STOPPING=1" in lines, timeout=5), got.lines
        assert got.lines.index("READY=1") < got.lines.index("STOPPING=1")
    finally:
        _stop(proc)


def test_daemon_starts_without_the_systemd_module(tmp_path: Path, notify_socket) -> None:
    """systemd-python unimportable (NAS images, slim containers) and JOURNAL_STREAM set: the daemon still
    notifies over the raw socket and logs to stderr instead of journald."""
    sock, sock_path = notify_socket
    port = free_port()
    blocker = (
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'systemd' or name.startswith('systemd.'):\n"
        "            raise ImportError('systemd-python blocked by the test')\n"
        "sys.meta_path.insert(0, _Block())\n"
        "for mod in [m for m in sys.modules if m == 'systemd' or m.startswith('systemd.')]:\n"
        "    del sys.modules[mod]\n"
        "from aniworldd.cli import main\n"
        "import aniworldd.systemd as s\n"
        "assert s._journal is None, 'the block did not work'\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    with (tmp_path / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", blocker, "run", "--config", str(_config(tmp_path, port))],
            env=_env(sock_path, JOURNAL_STREAM="8:12345"),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    got = Datagrams(sock)
    try:
        assert got.wait_for(lambda lines: "READY=1" in lines), (got.lines, proc.poll())
        assert _health(port)["status"] == "ok"
        assert got.wait_for(lambda lines: "WATCHDOG=1" in lines, timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert got.wait_for(lambda lines: "STOPPING=1" in lines, timeout=5)
        stderr = (tmp_path / "stderr.log").read_text()
        assert "listening on" in stderr  # logging fell back to stderr
        assert "blocked by the test" not in stderr and "Traceback" not in stderr
    finally:
        _stop(proc)
