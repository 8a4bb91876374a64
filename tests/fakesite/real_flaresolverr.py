"""Start the real FlareSolverr (PyPI `flaresolverr`, run with Debian's chromium) for an opt-in test.

The project does not depend on it: it needs a separate venv (`python -m venv V && V/bin/pip install
flaresolverr`) and the `xvfb` system package (this FlareSolverr build starts Chromium under Xvfb even
in "headless" mode and exits with "Can not find Xvfb" without it).  Point `AW_FLARESOLVERR_PYTHON` at
that venv's python to run the opt-in test in tests/unit/test_fakesite_obstacles.py.

Chromium behind FlareSolverr cannot resolve the tests' `*.test` names and does not know the test CA:
pass the fake's HTTP proxy in the request (`"proxy": {"url": o.http_proxy}`; the proxy resolves the
names) - FlareSolverr already starts Chromium with `--ignore-certificate-errors`.

FlareSolverr leaves its Xvfb running when it is stopped, so it runs in its own process group and the
whole group is stopped on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator

ENV_PYTHON = "AW_FLARESOLVERR_PYTHON"


def missing() -> str | None:
    """Why the real FlareSolverr cannot run here (for a skip reason), or None when it can.

    `make test` builds its venv and installs xvfb and chromium (as root), so it runs in CI.
    """
    import shutil

    python = os.environ.get(ENV_PYTHON)
    if not python:
        return f"set {ENV_PYTHON} to a venv python with `flaresolverr` installed (make test does)"
    if not os.path.exists(python):
        return f"{ENV_PYTHON}={python} does not exist"
    for tool, package in (("Xvfb", "xvfb"), ("chromium", "chromium")):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install {package})"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def real_flaresolverr(
    python: str, chrome: str = "/usr/bin/chromium", startup_timeout: float = 90.0
) -> AsyncIterator[str]:
    """Run `python -m flaresolverr` on a free 127.0.0.1 port; yields its base URL (API at /v1)."""
    port = _free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "CHROME_EXE_PATH": chrome,
        "HEADLESS": "true",
        "LOG_LEVEL": "info",
    }
    proc = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "flaresolverr",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    output: list[str] = []

    async def ready() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            output.append(line.decode(errors="replace"))
            if "Serving on" in output[-1]:
                return
        raise RuntimeError("FlareSolverr exited:\n" + "".join(output[-20:]))

    async def drain() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            output.append(line.decode(errors="replace"))

    drainer: asyncio.Task | None = None
    try:
        await asyncio.wait_for(ready(), startup_timeout)
        drainer = asyncio.create_task(drain())  # keep the pipe from filling up
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # Xvfb / Chromium left in the group
        if drainer is not None:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
