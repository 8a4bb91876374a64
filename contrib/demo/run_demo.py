"""`make demo`: run the look-alike site and the daemon together, and stop both together.

usage: run_demo.py --fake-port 8090 --port 8080 --config contrib/demo/demo-data/config.yaml

A shell `cmd & trap ...; daemon` recipe left both running on `kill -TERM` of make: make passes SIGTERM only
to its own child (the shell), and a shell waiting for a foreground command runs its trap only after that
command has ended, which the daemon never does by itself. This supervisor is make's child (`exec`), so it
gets that SIGTERM; on SIGTERM or SIGINT it stops both processes (SIGTERM, then SIGKILL after a grace time)
and waits for them. When either process ends by itself the other is stopped too. The children also get
SIGTERM from the kernel if this process dies without cleaning up (PR_SET_PDEATHSIG, Linux).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE = 10.0  # seconds the daemon gets to finish a clean stop before it is killed
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies, however it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the signal handlers below still stop the children


def _commands(args: argparse.Namespace) -> tuple[list[str], list[str], dict[str, str]]:
    bindir = Path(sys.executable).parent
    origin = f"http://127.0.0.1:{args.fake_port}"
    fake = [sys.executable, "-m", "tests.fakesite", "--port", str(args.fake_port)]
    daemon = [str(bindir / "aniworldd"), "run", "--config", args.config]
    # The ports chosen on the make command line win over the copied config (environment overrides).
    env = {
        **os.environ,
        "ANIWORLDD_SERVER__PORT": str(args.port),
        "ANIWORLDD_PROVIDER__ANIWORLD_URL": origin,
        "ANIWORLDD_PROVIDER__STO_URL": origin,
    }
    return fake, daemon, env


def stop(procs: list[subprocess.Popen], grace: float = GRACE) -> None:
    """SIGTERM every process still running, wait up to `grace` seconds, then SIGKILL the rest."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fake-port", type=int, default=8090)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    fake_cmd, daemon_cmd, env = _commands(args)

    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    procs = [subprocess.Popen(fake_cmd, env=env, preexec_fn=_die_with_parent)]
    time.sleep(0.5)  # the site first, so the daemon's start-up scan finds it
    if not stopping:
        procs.append(subprocess.Popen(daemon_cmd, env=env, preexec_fn=_die_with_parent))
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.2)
    finally:
        stop(procs)
    if stopping:
        return 128 + stopping[0]
    return next((p.returncode for p in procs if p.returncode), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
