"""A bounded schemathesis run over /api/openapi.json against a real daemon: no 5xx, answers as documented.

The whole daemon (every component the composition root builds: scanner, provider against the fake site,
queue, refresh, webhooks, calendar) runs in-process on a free port in a background thread; the
schemathesis CLI drives it from a subprocess with a logged-in token. Only logout is excluded (it would
revoke the token mid-run).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from aniworldd.config import load_config
from aniworldd.daemon import Daemon
from tests.api.conftest import PASSWORD, write_config
from tests.conftest import free_port

pytestmark = pytest.mark.slow

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which(
    "schemathesis"
)


class ServerThread:
    """The daemon in its own event loop, so a blocking client can run in the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.token = ""
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="api-under-test", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self.ready.wait(30) or self.error:
            raise RuntimeError(f"daemon did not start: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        from tests.fakesite.app import start_fakesite

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        site_runner, origin = await start_fakesite()
        extra = (
            f"server:\n  port: {self.port}\nnotifications:\n  webhooks:\n    - url: {origin}/no-such-hook\n"
        )
        daemon = Daemon(load_config(write_config(self.tmp_path, origin, extra), env={}))
        (self.tmp_path / "library").mkdir(exist_ok=True)  # the daemon never creates a library root itself
        await daemon.start()
        try:
            self.token = (await daemon.ctx.auth.setup(PASSWORD))["access_token"]
            self.ready.set()
            await self._stop.wait()
        finally:
            await daemon.stop()
            await site_runner.cleanup()


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (pip install -e .[test])")
def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    with ServerThread(tmp_path) as server:
        base = f"http://127.0.0.1:{server.port}"
        proc = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{base}/api/openapi.json",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance",
                "--max-examples",
                "25",
                "--phases",
                "examples,coverage,fuzzing",
                "--seed",
                "1",
                "--workers",
                "1",
                "--header",
                f"Authorization: Bearer {server.token}",
                "--exclude-path",
                "/api/auth/logout",
                "--request-timeout",
                "20",
                "--max-time",
                "35",
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=170,
            cwd=tmp_path,  # schemathesis keeps its cache in the working directory
        )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    # Every operation but logout was run (no component is missing from the daemon under test).
    selected, total = map(int, re.search(r"Operations:\s+(\d+) selected / (\d+) total", output).groups())
    assert selected == total - 1
    assert int(re.search(r"Tested:\s+(\d+)", output).group(1)) == selected
    assert "not_a_server_error" in output or "passed" in output.lower()
