"""MQTT messages per second on a real mosquitto while 4 downloads report progress. Prints one JSON line.

The bridge only sees bus events, so the downloads are simulated on the bus at the rate the download
service is allowed to report (2 progress events per second per item, COMMON.md). Two scenarios:
- `progress`: progress events only (queue_status only when something changes),
- `worst`: additionally a full queue_status event with every progress event.
A subscriber on `<base>/#` counts what actually reaches the broker's clients.

Usage: .venv/bin/python bench/mqtt_rate.py [--seconds 10] [--downloads 4] [--rate 2] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aniworldd import events as ev  # noqa: E402
from aniworldd.events import EventBus  # noqa: E402
from aniworldd.mqtt import MqttBridge  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(workdir: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            return proc, port
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def item(i: int, percent: float) -> dict:
    return {
        "id": i,
        "serie_id": "show",
        "key": "show",
        "serie_folder": "Show",
        "serie_name": "Show",
        "season": 1,
        "episode": i,
        "language": "ger-sub",
        "status": "downloading",
        "priority": "normal",
        "progress": percent,
        "downloaded_bytes": int(percent * 1e6),
        "total_bytes": int(1e8),
        "speed": 2.5,
        "eta": 30.0,
        "error": None,
        "attempts": 1,
    }


def status(n: int, percent: float) -> dict:
    active = [item(i, percent) for i in range(1, n + 1)]
    return {
        "is_running": True,
        "is_paused": False,
        "active_downloads": active,
        "pending_queue": [],
        "completed_downloads": [],
        "failed_downloads": [],
        "statistics": {"pending": 0, "active": n, "completed": 0, "failed": 0, "speed_mbps": 2.5 * n},
    }


async def scenario(port: int, data_dir: Path, args: argparse.Namespace, worst: bool) -> dict:
    base = f"bench{int(worst)}"
    cfg = {
        "data_dir": str(data_dir),
        "server": {"host": "127.0.0.1", "port": 8080, "public_url": None},
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "username": None,
            "password": None,
            "tls": {"enabled": False},
            "client_id": f"bench-{base}",
            "base_topic": base,
            "discovery": True,
            "discovery_prefix": f"ha-{base}",
            "keepalive": 60,
            "progress_interval": args.interval,
        },
    }
    bus = EventBus()
    bridge = MqttBridge(cfg, bus, data_dir)
    counts: Counter[str] = Counter()
    bytes_out = 0
    counting = False
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-sub-{base}") as sub:
        await sub.subscribe(f"{base}/#")

        async def consume() -> None:
            nonlocal bytes_out
            async for m in sub.messages:
                if counting:
                    counts[str(m.topic)[len(base) + 1 :]] += 1
                    bytes_out += len(m.payload or b"")

        reader = asyncio.create_task(consume())
        await bridge.start()
        for _ in range(200):  # wait for the connect-time announce to be done
            if bridge.connected:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        counting = True
        period = 1.0 / args.rate
        start = time.monotonic()
        events = 0
        tick = 0
        while time.monotonic() - start < args.seconds:
            tick += 1
            percent = min(100.0, tick * 0.1)
            for i in range(1, args.downloads + 1):
                bus.publish(
                    ev.DOWNLOAD_PROGRESS,
                    {
                        "download_id": i,
                        "key": "show",
                        "folder": "Show",
                        "season": 1,
                        "episode": i,
                        "language": "ger-sub",
                        "percent": percent,
                        "downloaded_bytes": int(percent * 1e6),
                        "total_bytes": int(1e8),
                        "speed_mbps": 2.5,
                        "eta_seconds": 30,
                    },
                )
                events += 1
                if worst:
                    bus.publish(ev.QUEUE_STATUS, status(args.downloads, percent))
                    events += 1
            await asyncio.sleep(max(0.0, start + tick * period - time.monotonic()))
        elapsed = time.monotonic() - start
        await asyncio.sleep(args.interval + 0.2)  # let the trailing publish land inside the window
        counting = False
        await bridge.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await reader
    total = sum(counts.values())
    return {
        "bus_events_per_s": round(events / elapsed, 1),
        "mqtt_messages_per_s": round(total / elapsed, 2),
        "mqtt_kbytes_per_s": round(bytes_out / elapsed / 1024, 2),
        "by_topic": dict(sorted(counts.items())),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--downloads", type=int, default=4)
    parser.add_argument("--rate", type=float, default=2.0, help="progress events per second per download")
    parser.add_argument("--interval", type=float, default=1.0, help="mqtt.progress_interval")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_broker(Path(tmp))
        try:
            progress = await scenario(port, Path(tmp) / "a", args, worst=False)
            worst = await scenario(port, Path(tmp) / "b", args, worst=True)
        finally:
            proc.terminate()
            proc.wait(5)
    print(
        json.dumps(
            {
                "bench": "mqtt_rate",
                "downloads": args.downloads,
                "progress_per_download_per_s": args.rate,
                "progress_interval_s": args.interval,
                "seconds": args.seconds,
                "progress": progress,
                "worst": worst,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
