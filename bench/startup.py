"""Start-up time to READY=1 and idle RSS of a real daemon process. Prints one JSON line.

Usage: .venv/bin/python bench/startup.py [--runs 5] [--idle 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(idle: float) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cfg = tmp_path / "config.yaml"
        cfg.write_text(f"data_dir: {tmp_path / 'data'}\nserver:\n  port: {free_port()}\n")
        sock_path = tmp_path / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        sock.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path)}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "aniworldd", "run", "--config", str(cfg)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
            ready_s = time.perf_counter() - t0
            time.sleep(idle)
            rss = rss_mb(proc.pid)
            t1 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            stop_s = time.perf_counter() - t1
        finally:
            if proc.poll() is None:
                proc.kill()
            sock.close()
        return ready_s, rss, stop_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args()
    runs = [one_run(args.idle) for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "runs": args.runs,
                "ready_s_p50": round(statistics.median(r[0] for r in runs), 3),
                "ready_s_max": round(max(r[0] for r in runs), 3),
                "idle_rss_mb": round(statistics.median(r[1] for r in runs), 1),
                "sigterm_stop_s_max": round(max(r[2] for r in runs), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
