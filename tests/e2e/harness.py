"""What the browser tests and bench/ui.py share: a real daemon process, the fake site in a thread, Chromium.

The daemon runs as `python -m aniworldd run` (the way a user starts it) against a fresh data dir and the
fake aniworld.to / s.to. The fake site runs on its own event loop in a thread so the tests can drive
Playwright's sync API from the main thread and still flip the site's knobs (FakeSiteState attributes).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.fakesite.app import start_fakesite
from tests.fakesite.state import FakeSiteState

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    """A screenshot into tests/artifacts (CI keeps them), named `name`.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def remember_login(target: Any, token: str) -> None:
    """Every page of a browser context (or the one page) starts logged in: the token where the UI keeps it."""
    target.add_init_script(f"localStorage.setItem('aniworldd.token', {json.dumps(token)})")


#: Debian chromium in a container/CI: no sandbox (no user namespaces), no GPU, /dev/shm may be tiny,
#: and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """Debian's chromium (never a Playwright-downloaded browser); $ANIWORLDD_CHROMIUM overrides."""
    for candidate in (
        os.environ.get("ANIWORLDD_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeSiteThread:
    """The fake site on its own loop in a daemon thread; `origin` is its base URL."""

    def __init__(self, state: FakeSiteState | None = None) -> None:
        self.state = state or FakeSiteState()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fakesite", daemon=True)
        self.runner: Any = None
        self.origin = ""

    def start(self) -> FakeSiteThread:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(start_fakesite(self.state), self.loop)
        self.runner, self.origin = future.result(timeout=30)
        return self

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class DaemonProcess:
    """`python -m aniworldd run --config <tmp>/config.yaml`, output in <tmp>/daemon.log."""

    def __init__(self, workdir: Path, provider_origin: str, extra_yaml: str = "") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / "data"
        self.library = workdir / "library"
        self.library.mkdir(parents=True, exist_ok=True)  # the daemon never creates a library root itself
        self.config_path = workdir / "config.yaml"
        self.log_path = workdir / "daemon.log"
        self.config_path.write_text(
            f"data_dir: {self.data_dir}\n"
            f"server:\n  host: 127.0.0.1\n  port: {self.port}\n"
            f"library:\n  roots: [{self.library}]\n  watch: false\n  scan_on_start: false\n"
            f"provider:\n  aniworld_url: {provider_origin}\n  sto_url: {provider_origin}\n"
            "  min_interval: 0\n  retries: 1\n  timeout: 10\n"
            "logging:\n  level: INFO\n" + extra_yaml,
            encoding="utf-8",
        )
        self.proc: subprocess.Popen | None = None
        self._log: Any = None

    def start(self, timeout: float = 60) -> DaemonProcess:
        # The child must not pick up a developer's ANIWORLDD_* settings (master password, overrides).
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("NOTIFY_SOCKET", None)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aniworldd", "run", "--config", str(self.config_path)],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the daemon did not answer /health within {timeout} s:\n{self.log_text()}")

    def stop(self) -> int | None:
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait(timeout=5)
        elif self.proc is not None:
            code = self.proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_text(self, tail: int = 8000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]
        except OSError:
            return ""

    # --- plain API calls (setup outside the browser: tokens, seeding) ---------------------------------

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 30
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def ensure_login(self, password: str) -> str:
        """Set the master password if none is set yet, then log in; returns the JWT."""
        status, answer = self.request("GET", "/api/auth/status")
        if status == 200 and answer.get("configured") is False:
            self.request("POST", "/api/auth/setup", {"password": password})
        status, answer = self.request("POST", "/api/auth/login", {"password": password})
        if status != 200:
            raise RuntimeError(f"login failed: {status} {answer}")
        return answer["access_token"]
