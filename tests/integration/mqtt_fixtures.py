"""A real mosquitto per test module, a recording MQTT test client, and small queue/scan stand-ins.

The stand-ins implement the bridge's QueueControl/ScanControl protocols and publish the same bus events
the real services publish, so the bridge sees exactly what it sees in the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from aniworldd import events as ev
from aniworldd.events import EventBus
from aniworldd.services.errors import NotFound

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto process on 127.0.0.1:<port>, restartable on the same port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )

    def start(self) -> None:
        assert MOSQUITTO, "mosquitto binary missing"
        with self.log.open("ab") as logf:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def mqtt_config(broker: Broker, base: str, data_dir: Path, **mqtt: Any) -> dict:
    """A minimal validated-config-shaped dict for the bridge."""
    section = {
        "host": broker.host,
        "port": broker.port,
        "username": None,
        "password": None,
        "tls": {"enabled": False, "ca_file": None, "insecure": False},
        "client_id": f"aniworldd-{base}",
        "base_topic": base,
        "discovery": True,
        "discovery_prefix": f"ha-{base}",
        "keepalive": 60,
        "progress_interval": 0.2,
    }
    section.update(mqtt)
    return {
        "data_dir": str(data_dir),
        "server": {"host": "127.0.0.1", "port": 8080, "public_url": None},
        "mqtt": section,
    }


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Recorder:
    """A real aiomqtt client that records every message it receives."""

    client: aiomqtt.Client
    messages: list[Received] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None

    async def wait(self, predicate, within: float = 10.0) -> Any:
        """Wait until predicate(self) is truthy; return its value. A deadline, not a timing assert."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while True:
            value = predicate(self)
            if value:
                return value
            remaining = end - loop.time()
            if remaining <= 0:
                topics = sorted({m.topic for m in self.messages})
                raise AssertionError(f"condition not met; topics seen: {topics}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

    async def wait_message(self, topic: str, after: int = 0, within: float = 10.0) -> Received:
        """The first message on topic whose index in `messages` is >= after."""

        def find(rec: Recorder) -> Received | None:
            return next((m for m in rec.messages[after:] if m.topic == topic), None)

        return await self.wait(find, within)

    async def request(
        self, base: str, command: str, body: Any = None, raw: bytes | None = None, within: float = 10.0
    ) -> dict:
        """Publish a request and wait for its response (matched by position after the publish)."""
        mark = len(self.messages)
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        await self.client.publish(f"{base}/request/{command}", payload, qos=1)
        msg = await self.wait_message(f"{base}/response/{command}", after=mark, within=within)
        return msg.json()


async def until(predicate, within: float = 10.0) -> None:
    """Poll a plain condition (no MQTT message to wait on) until it holds, or fail after `within` s."""
    for _ in range(int(within / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


@contextlib.asynccontextmanager
async def recorder(broker: Broker, *topics: str):
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"test-{free_port()}") as client:
        rec = Recorder(client)

        async def pump() -> None:
            async for m in client.messages:
                rec.messages.append(Received(str(m.topic), bytes(m.payload or b""), bool(m.retain)))
                rec._changed.set()

        task = asyncio.create_task(pump())
        for topic in topics:
            await client.subscribe(topic, qos=1)
        try:
            yield rec
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


def _item(item_id: int, key: str, season: int, episode: int, status: str, **extra: Any) -> dict:
    return {
        "id": item_id,
        "serie_id": key,
        "key": key,
        "serie_folder": key.replace("-", " ").title(),
        "serie_name": key.replace("-", " ").title(),
        "season": season,
        "episode": episode,
        "language": "ger-sub",
        "status": status,
        "priority": "normal",
        "progress": 0.0,
        "downloaded_bytes": 0,
        "total_bytes": None,
        "speed": None,
        "eta": None,
        "error": None,
        "attempts": 0,
        **extra,
    }


class FakeQueue:
    """Records calls and keeps a tiny in-memory queue; publishes queue_status like DownloadService."""

    def __init__(self, bus: EventBus, known_keys: tuple[str, ...] = ("attack-on-titan",)) -> None:
        self.bus = bus
        self.calls: list[tuple] = []
        self.known = set(known_keys)
        self.items: list[dict] = []
        self.is_running = False
        self.is_paused = False
        self._next = 1
        # The live download settings, as DownloadService keeps them (its config dict, apply_settings).
        self.config = {
            "downloads": {"max_concurrent": 2, "speed_limit": None, "language": ["ger-dub", "ger-sub"]}
        }

    def apply_settings(self, downloads: dict) -> list[str]:
        running = self.config["downloads"]
        changed = [k for k in running if downloads.get(k) != running[k]]
        running.update({k: downloads[k] for k in changed})
        self.calls.append(("apply_settings", sorted(changed)))
        self._emit()
        return changed

    def _emit(self) -> None:
        self.bus.publish(ev.QUEUE_STATUS, self._status())

    def _by(self, status: str) -> list[dict]:
        return [dict(i) for i in self.items if i["status"] == status]

    def _status(self) -> dict:
        st = {s: self._by(s) for s in ("pending", "downloading", "completed", "failed")}
        return {
            "is_running": self.is_running,
            "is_paused": self.is_paused,
            "active_downloads": st["downloading"],
            "pending_queue": st["pending"],
            "completed_downloads": st["completed"],
            "failed_downloads": st["failed"],
            "statistics": {
                "pending": len(st["pending"]),
                "active": len(st["downloading"]),
                "completed": len(st["completed"]),
                "failed": len(st["failed"]),
                "speed_mbps": 0.0,
            },
        }

    async def start(self) -> None:
        self.calls.append(("start",))
        self.is_running = True
        self._emit()

    async def stop(self) -> None:
        self.calls.append(("stop",))
        self.is_running = False
        self._emit()

    async def pause(self) -> None:
        self.calls.append(("pause",))
        self.is_paused = True
        self._emit()

    async def resume(self) -> None:
        self.calls.append(("resume",))
        self.is_paused = False
        self._emit()

    async def retry(self, item_ids: list[int] | None = None) -> dict:
        self.calls.append(("retry", item_ids))
        n = 0
        for i in self.items:
            if i["status"] == "failed" and (item_ids is None or i["id"] in item_ids):
                i["status"] = "pending"
                n += 1
        self._emit()
        return {"retried": n}

    async def clear_completed(self) -> int:
        self.calls.append(("clear_completed",))
        before = len(self.items)
        self.items = [i for i in self.items if i["status"] != "completed"]
        self._emit()
        return before - len(self.items)

    async def add(self, key: str, episodes, priority: str = "normal", language: str | None = None):
        self.calls.append(("add", key, list(episodes), priority, language))
        if key not in self.known:
            raise NotFound(f"unknown series {key!r}", {"key": key})
        added = []
        for season, episode in episodes:
            item = _item(self._next, key, season, episode, "pending", priority=priority)
            self._next += 1
            self.items.append(item)
            added.append(dict(item))
        self._emit()
        return added

    async def status(self) -> dict:
        return self._status()

    def set_status(self, item_id: int, status: str) -> None:
        """Move an item (test helper), publishing the new status like the service would."""
        for i in self.items:
            if i["id"] == item_id:
                i["status"] = status
        self._emit()


class FakeScan:
    """Records request_scan calls; publishes scan_complete like ScanService."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.calls: list[list[str] | None] = []
        self._state = {
            "running": False,
            "percent": 0.0,
            "last_scan": None,
            "series": 3,
            "episodes": 30,
            "missing_episodes": 4,
            "unmatched": 0,
        }

    def request_scan(self, keys: list[str] | None = None) -> None:
        self.calls.append(keys)
        self.bus.publish(
            ev.SCAN_PROGRESS, {"key": "a", "folder": "A", "current": 1, "total": 2, "percent": 50.0}
        )
        self.bus.publish(
            ev.SCAN_COMPLETE,
            {"series": 3, "episodes": 31, "missing_episodes": 2, "unmatched": 0, "duration_s": 0.01},
        )

    def state(self) -> dict:
        return dict(self._state)
