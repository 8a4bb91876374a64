"""The MQTT bridge against a real mosquitto: discovery, state topics, commands, reconnects, will.

Discovery runs in the default device form unless a test says otherwise; `_entities` flattens either form
into HA's entity map, and templates are rendered the way HA renders them (tests/integration/ha_render.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aniworldd import __version__
from aniworldd import events as ev
from aniworldd.events import EventBus
from aniworldd.mqtt import MqttBridge
from aniworldd.mqtt.discovery import REGISTRY_FILE, device_topic
from tests.integration.ha_render import entities_from, state_of
from tests.integration.mqtt_fixtures import (
    Broker,
    FakeQueue,
    FakeScan,
    Recorder,
    free_port,
    mqtt_config,
    recorder,
    until,
)

pytestmark = pytest.mark.mqtt

EXPECTED = {
    ("sensor", "pending_downloads"),
    ("sensor", "active_downloads"),
    ("sensor", "completed_downloads"),
    ("sensor", "failed_downloads"),
    ("sensor", "download_speed"),
    ("sensor", "series"),
    ("sensor", "missing_episodes"),
    ("sensor", "last_scan"),
    ("binary_sensor", "queue_running"),
    ("binary_sensor", "scan_running"),
    ("switch", "queue_paused"),
    ("button", "start_queue"),
    ("button", "stop_queue"),
    ("button", "rescan_library"),
    ("button", "retry_failed"),
    ("button", "clear_completed"),
    ("sensor", "current_download"),
    ("binary_sensor", "problem"),
    ("number", "max_concurrent"),
    ("number", "speed_limit"),
    ("select", "preferred_language"),
    ("update", "version"),
    ("event", "download_complete"),
    ("event", "download_failed"),
    ("event", "new_episodes"),
}
#: The entities (and so unique ids) of the releases before device discovery: they must never change.
LEGACY = {
    ("sensor", "pending_downloads"),
    ("sensor", "active_downloads"),
    ("sensor", "completed_downloads"),
    ("sensor", "failed_downloads"),
    ("sensor", "download_speed"),
    ("sensor", "series"),
    ("sensor", "missing_episodes"),
    ("sensor", "last_scan"),
    ("binary_sensor", "queue_running"),
    ("binary_sensor", "scan_running"),
    ("switch", "queue_paused"),
    ("button", "start_queue"),
    ("button", "stop_queue"),
    ("button", "rescan_library"),
    ("button", "retry_failed"),
    ("button", "clear_completed"),
}
N = len(EXPECTED)
_counter = iter(range(1, 10_000))


def _base() -> str:
    return f"t{os.getpid()}x{next(_counter)}"


@contextlib.asynccontextmanager
async def running_bridge(cfg: dict, bus: EventBus, queue: Any = None, scan: Any = None):
    bridge = MqttBridge(
        cfg, bus, cfg["data_dir"], queue=queue, scan=scan, reconnect_min=0.05, reconnect_max=0.5
    )
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.close()


def _entities(rec: Recorder, prefix: str, after: int = 0) -> dict[tuple[str, str], dict]:
    """The entities HA would have (either discovery form) after the messages from index `after` on."""
    return entities_from(rec.messages, prefix, after)


def _config_topics(rec: Recorder, prefix: str, after: int = 0) -> set[str]:
    return {
        m.topic
        for m in rec.messages[after:]
        if m.topic.startswith(prefix + "/") and m.topic.endswith("/config")
    }


def _state(rec: Recorder, topic: str) -> Any:
    m = rec.last(topic)
    return m.json() if m else None


def _resolve(doc: Any, path: str) -> Any:
    """The field a template path points at; a null object on the way is fine (templates guard it)."""
    for part in path.split("."):
        if doc is None:
            return None
        assert isinstance(doc, dict) and part in doc, f"{path!r} missing in state payload"
        doc = doc[part]
    return doc


@pytest.mark.parametrize("mode", ["device", "components"])
async def test_discovery_payloads_and_buttons(mosquitto: Broker, tmp_path: Path, mode: str) -> None:
    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data", client_id="nas-anime", discovery_mode=mode)
    cfg["server"]["public_url"] = "https://anime.example.lan"
    prefix = cfg["mqtt"]["discovery_prefix"]
    bus = EventBus()
    queue, scan = FakeQueue(bus), FakeScan(bus)
    async with recorder(mosquitto, f"{prefix}/#", f"{base}/#") as rec:
        async with running_bridge(cfg, bus, queue, scan) as bridge:
            configs = await rec.wait(lambda r: (d := _entities(r, prefix)) and len(d) >= N and d)
            await rec.wait(
                lambda r: all(
                    _state(r, f"{base}/{t}") for t in ("scan/state", "queue/active", "settings", "update")
                )
            )
            assert bridge.connected
            assert rec.last(f"{base}/status").payload == b"online"
            assert all(m.payload for m in rec.on(f"{base}/status"))
            topics = _config_topics(rec, prefix)
            if mode == "device":
                assert topics == {device_topic(prefix, bridge.install_id)}
            else:
                assert len(topics) == N
                for topic in topics:
                    component, node, object_id = topic.split("/")[1:4]
                    assert topic == f"{prefix}/{component}/{node}/{object_id}/config"

            seen = set()
            unique_ids = set()
            for (component, object_id), cfg_doc in configs.items():
                seen.add((component, object_id))
                assert cfg_doc["name"] and cfg_doc["unique_id"]
                unique_ids.add(cfg_doc["unique_id"])
                assert cfg_doc["availability_topic"] == f"{base}/status"
                assert cfg_doc["payload_available"] == "online"
                device = cfg_doc["device"]
                assert device["identifiers"] and isinstance(device["identifiers"], list)
                assert device["name"] == "nas-anime" and device["sw_version"] == __version__
                assert device["configuration_url"] == "https://anime.example.lan"
                assert cfg_doc["origin"]["name"] == "aniworldd"
                if component in ("sensor", "binary_sensor", "number", "select", "switch"):
                    # HA needs a state topic, and every template must point at a real field there.
                    state_doc = _state(rec, cfg_doc["state_topic"])
                    assert state_doc is not None, cfg_doc["state_topic"]
                    for path in re.findall(r"value_json\.([a-z_.]+)", cfg_doc["value_template"]):
                        _resolve(state_doc, path)
                    rendered = state_of(cfg_doc, rec.last(cfg_doc["state_topic"]).payload)
                    assert rendered not in ("", "None") or object_id in ("current_download", "last_scan")
                if component in ("switch", "button", "number", "select"):
                    assert cfg_doc["command_topic"].startswith(f"{base}/request/")
            assert seen == EXPECTED
            assert len(unique_ids) == len(configs)
            assert all(configs[e]["unique_id"] == f"aniworldd_{bridge.install_id}_{e[1]}" for e in configs)
            speed = configs[("sensor", "download_speed")]
            assert speed["device_class"] == "data_rate" and speed["unit_of_measurement"] == "MiB/s"
            last_scan = configs[("sensor", "last_scan")]
            assert last_scan["device_class"] == "timestamp" and last_scan["entity_category"] == "diagnostic"
            assert configs[("button", "rescan_library")]["entity_category"] == "config"
            assert configs[("update", "version")]["entity_category"] == "diagnostic"
            assert _state(rec, f"{base}/update") == {"installed_version": __version__, "title": "aniworldd"}

            # Press every button through MQTT, the way HA does it.
            buttons = {oid: c for (platform, oid), c in configs.items() if platform == "button"}
            for object_id, button in sorted(buttons.items()):
                mark = len(rec.messages)
                await rec.client.publish(button["command_topic"], button["payload_press"], qos=1)
                command = button["command_topic"].split("/request/", 1)[1]
                resp = (await rec.wait_message(f"{base}/response/{command}", after=mark)).json()
                assert resp["status"] == "ok", (object_id, resp)
            assert [c[0] for c in queue.calls] == ["clear_completed", "retry", "start", "stop"]
            assert scan.calls == [None]

            # The switch: ON pauses, OFF resumes, and its state topic follows.
            switch = configs[("switch", "queue_paused")]
            await rec.client.publish(switch["command_topic"], switch["payload_on"], qos=1)
            await rec.wait(lambda r: (_state(r, f"{base}/queue/state") or {}).get("is_paused") is True)
            await rec.client.publish(switch["command_topic"], switch["payload_off"], qos=1)
            await rec.wait(lambda r: (_state(r, f"{base}/queue/state") or {}).get("is_paused") is False)
            assert queue.calls[-2:] == [("pause",), ("resume",)]

    # unique_id is stable across restarts: it comes from data_dir/install_id (created 0600).
    install_id = tmp_path / "data" / "install_id"
    assert stat.S_IMODE(install_id.stat().st_mode) == 0o600
    async with recorder(mosquitto, f"{prefix}/#") as rec2:
        async with running_bridge(cfg, EventBus()):
            again = await rec2.wait(lambda r: (d := _entities(r, prefix)) and len(d) >= N and d)
    assert {c["unique_id"] for c in again.values()} == unique_ids
    assert all(install_id.read_text().strip() in u for u in unique_ids)


async def test_state_topics_follow_the_queue_and_scanner(mosquitto: Broker, tmp_path: Path) -> None:
    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data")
    bus = EventBus()
    queue, scan = FakeQueue(bus), FakeScan(bus)
    async with recorder(mosquitto, f"{base}/#") as rec, running_bridge(cfg, bus, queue, scan):
        await rec.wait(lambda r: _state(r, f"{base}/queue/state"))
        assert _state(rec, f"{base}/queue/state")["statistics"]["pending"] == 0
        scan_state = await rec.wait(lambda r: _state(r, f"{base}/scan/state"))
        assert scan_state["series"] == 3 and scan_state["missing_episodes"] == 4

        items = await queue.add("attack-on-titan", [(1, 1), (1, 2)])
        await queue.start()
        state = await rec.wait(
            lambda r: (
                (s := _state(r, f"{base}/queue/state"))
                and s["is_running"]
                and s["statistics"]["pending"] == 2
                and s
            )
        )
        assert "pending_queue" not in state  # counts and flags only; lists are in the REST API

        first = items[0]["id"]
        queue.set_status(first, "downloading")
        bus.publish(
            ev.DOWNLOAD_PROGRESS,
            {
                "download_id": first,
                "key": "attack-on-titan",
                "folder": "Attack On Titan",
                "season": 1,
                "episode": 1,
                "language": "ger-sub",
                "percent": 42.5,
                "downloaded_bytes": 425,
                "total_bytes": 1000,
                "speed_mbps": 3.25,
                "eta_seconds": 12,
            },
        )
        active = await rec.wait(
            lambda r: (
                (a := _state(r, f"{base}/queue/active"))
                and a["count"] == 1
                and a["downloads"][0]["percent"] == 42.5
                and a
            )
        )
        assert active["speed_mbps"] == 3.25
        assert (
            active["downloads"][0] | {"key": "attack-on-titan", "episode": 1, "eta_seconds": 12}
            == active["downloads"][0]
        )

        mark = len(rec.messages)
        bus.publish(
            ev.DOWNLOAD_COMPLETE,
            {
                "download_id": first,
                "key": "attack-on-titan",
                "folder": "Attack On Titan",
                "season": 1,
                "episode": 1,
                "language": "ger-sub",
                "path": "/lib/x.mp4",
                "size_bytes": 1000,
            },
        )
        queue.set_status(first, "completed")
        event = await rec.wait_message(f"{base}/event", after=mark)
        envelope = event.json()
        assert envelope["type"] == "download_complete" and envelope["data"]["key"] == "attack-on-titan"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", envelope["timestamp"])
        await rec.wait(lambda r: (a := _state(r, f"{base}/queue/active")) and a["count"] == 0)
        await rec.wait(lambda r: _state(r, f"{base}/queue/state")["statistics"]["completed"] == 1)

        bus.publish(
            ev.DOWNLOAD_FAILED,
            {
                "download_id": 2,
                "key": "attack-on-titan",
                "folder": "Attack On Titan",
                "season": 1,
                "episode": 2,
                "language": "ger-sub",
                "reason": "hoster down",
                "attempts": 3,
                "will_retry": False,
            },
        )
        failed = await rec.wait(
            lambda r: [m.json() for m in r.on(f"{base}/event") if m.json()["type"] == "download_failed"]
        )
        assert failed[0]["data"]["reason"] == "hoster down"
        queue.items[1]["error"] = "hoster down"
        queue.set_status(2, "failed")
        listed = await rec.wait(lambda r: (f := _state(r, f"{base}/queue/failed")) and f["count"] == 1 and f)
        assert listed["items"][0] | {"id": 2, "episode": 2, "reason": "hoster down"} == listed["items"][0]
        assert all(not m.retain for m in rec.on(f"{base}/event"))

        scan.request_scan()
        done = await rec.wait(lambda r: (s := _state(r, f"{base}/scan/state")) and s["last_scan"] and s)
        assert done["running"] is False and done["episodes"] == 31 and done["missing_episodes"] == 2
        bus.publish(ev.SCAN_FAILED, {"error": "library root missing"})
        await rec.wait(lambda r: _state(r, f"{base}/scan/state")["error"] == "library root missing")

    # A late subscriber gets the retained picture (what HA sees after its own restart).
    async with recorder(mosquitto, f"{base}/#") as late:
        await late.wait(lambda r: r.last(f"{base}/queue/state") and r.last(f"{base}/scan/state"))
        assert late.last(f"{base}/queue/state").retain is True
        assert late.last(f"{base}/queue/state").json()["statistics"]["completed"] == 1
        assert late.last(f"{base}/status").payload == b"offline"  # graceful close said so


async def test_progress_bursts_are_coalesced(mosquitto: Broker, tmp_path: Path) -> None:
    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data", progress_interval=0.5)
    bus = EventBus()
    async with recorder(mosquitto, f"{base}/queue/active") as rec, running_bridge(cfg, bus, FakeQueue(bus)):
        await rec.wait(lambda r: r.on(f"{base}/queue/active"))
        mark = len(rec.messages)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for step in range(1, 201):  # 4 downloads x 50 reports, far faster than progress_interval
            bus.publish(
                ev.DOWNLOAD_PROGRESS,
                {
                    "download_id": step % 4,
                    "key": "k",
                    "folder": "K",
                    "season": 1,
                    "episode": step % 4,
                    "language": "ger-sub",
                    "percent": step / 2,
                    "downloaded_bytes": step,
                    "total_bytes": 400,
                    "speed_mbps": 1.0,
                    "eta_seconds": 1,
                },
            )
            if step % 20 == 0:
                await asyncio.sleep(0.05)  # let the bridge run between bursts
        elapsed = loop.time() - started
        final = await rec.wait(
            lambda r: (
                (m := r.last(f"{base}/queue/active"))
                and m.json()["downloads"]
                and max(d["percent"] for d in m.json()["downloads"]) == 100.0
                and m.json()
            )
        )
        assert final["count"] == 4 and final["speed_mbps"] == 4.0
        # 200 progress events: at most one publish per progress_interval (+ leading and trailing one).
        # A slow machine only makes `elapsed` longer and the bound looser, so this cannot flake.
        assert len(rec.messages) - mark <= elapsed / 0.5 + 2


async def test_every_command_and_bad_payloads(mosquitto: Broker, tmp_path: Path) -> None:
    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data")
    bus = EventBus()
    queue, scan = FakeQueue(bus), FakeScan(bus)
    async with recorder(mosquitto, f"{base}/#") as rec, running_bridge(cfg, bus, queue, scan):
        await rec.wait(lambda r: r.on(f"{base}/status"))

        resp = await rec.request(
            base,
            "queue/add",
            {"key": "attack-on-titan", "season": 1, "episodes": [1, 2], "transaction": "tx-1"},
        )
        assert resp["status"] == "ok" and resp["error"] is None and resp["transaction"] == "tx-1"
        assert [i["episode"] for i in resp["data"]["items"]] == [1, 2]
        resp = await rec.request(
            base, "queue/add", {"key": "attack-on-titan", "episodes": [{"season": 0, "episode": 1}]}
        )
        assert resp["status"] == "ok" and resp["transaction"] is None
        assert queue.calls[-1] == ("add", "attack-on-titan", [(0, 1)], "normal", None)

        for command in ("queue/start", "queue/pause", "queue/resume", "queue/stop", "queue/clear_completed"):
            resp = await rec.request(base, command, {"transaction": 7})
            assert resp == {"status": "ok", "data": resp["data"], "error": None, "transaction": 7}
        queue.items[0]["status"] = "failed"
        resp = await rec.request(base, "queue/retry", {"item_ids": [1]})
        assert resp["status"] == "ok" and resp["data"] == {"retried": 1}
        resp = await rec.request(base, "queue/paused", raw=b"ON")
        assert resp["status"] == "ok" and resp["data"] == {"paused": True}
        resp = await rec.request(base, "queue/paused", {"paused": False})
        assert resp["data"] == {"paused": False}
        resp = await rec.request(base, "scan/rescan", {"keys": ["attack-on-titan"]})
        assert resp["status"] == "ok" and scan.calls == [["attack-on-titan"]]
        resp = await rec.request(base, "queue/status")
        assert resp["status"] == "ok" and resp["data"]["statistics"]["pending"] == 3
        assert [c[0] for c in queue.calls] == [
            "add",
            "add",
            "start",
            "pause",
            "resume",
            "stop",
            "clear_completed",
            "retry",
            "pause",
            "resume",
        ]

        calls_before = list(queue.calls)
        bad = [
            ("queue/add", b"{not json", "not valid JSON"),
            ("queue/add", json.dumps({"key": "Bad Key!", "season": 1, "episodes": [1]}).encode(), "key"),
            ("queue/add", json.dumps({"key": "attack-on-titan", "episodes": [1]}).encode(), "season"),
            ("queue/add", json.dumps({"key": "attack-on-titan", "season": 1}).encode(), "episodes"),
            ("queue/add", b"[1, 2]", "JSON object"),
            ("queue/retry", json.dumps({"item_ids": "all"}).encode(), "item_ids"),
            ("queue/start", json.dumps({"unexpected": 1}).encode(), "unexpected"),
            ("queue/paused", b"maybe", "not valid JSON"),
            ("queue/paused", b"42", "expected"),
            ("queue/start", b"\xff\xfe", "UTF-8"),
            ("queue/explode", b"", "unknown command"),
        ]
        for command, raw, needle in bad:
            resp = await rec.request(base, command, raw=raw)
            assert resp["status"] == "error", (command, raw, resp)
            assert needle in resp["error"], (needle, resp)
        assert queue.calls == calls_before  # nothing changed
        # A service error is answered with its code, and the transaction is echoed.
        resp = await rec.request(
            base, "queue/add", {"key": "unknown-show", "season": 1, "episodes": [1], "transaction": "t9"}
        )
        assert resp["status"] == "error" and resp["data"]["code"] == "not_found"
        assert resp["transaction"] == "t9" and "unknown-show" in resp["error"]

        # ... and the bridge still works afterwards.
        resp = await rec.request(base, "queue/start")
        assert resp["status"] == "ok" and queue.calls[-1] == ("start",)


async def test_deeply_nested_payload_is_answered_as_invalid_json(mosquitto: Broker, tmp_path: Path) -> None:
    """Issue 16 item 12: `[[[[...` nested 50,000 deep (under the 64 KB payload cap) made json.loads raise
    RecursionError, answered as "internal error: RecursionError"; it is invalid JSON like any other."""
    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data")
    bus = EventBus()
    queue, scan = FakeQueue(bus), FakeScan(bus)
    async with recorder(mosquitto, f"{base}/#") as rec, running_bridge(cfg, bus, queue, scan):
        await rec.wait(lambda r: r.on(f"{base}/status"))
        for command in ("queue/add", "queue/start", "queue/paused", "scan/rescan"):
            resp = await rec.request(base, command, raw=b"[" * 50_000)
            assert resp["status"] == "error", (command, resp)
            assert resp["data"]["code"] == "bad_request", (command, resp)
            assert "not valid JSON" in resp["error"] and "Recursion" not in resp["error"], resp
        assert queue.calls == [] and scan.calls == []  # nothing ran
        resp = await rec.request(base, "queue/start")  # and the bridge still answers
        assert resp["status"] == "ok" and queue.calls == [("start",)]


async def test_commands_without_services_answer_unavailable(mosquitto: Broker, tmp_path: Path) -> None:
    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data")
    async with recorder(mosquitto, f"{base}/#") as rec, running_bridge(cfg, EventBus()):
        await rec.wait(lambda r: r.on(f"{base}/status"))
        for command in ("queue/start", "scan/rescan"):
            resp = await rec.request(base, command)
            assert resp["status"] == "error" and resp["data"]["code"] == "unavailable"


async def test_broker_restart_restores_state(mosquitto_factory, tmp_path: Path) -> None:
    broker = mosquitto_factory()
    base = _base()
    cfg = mqtt_config(broker, base, tmp_path / "data")
    prefix = cfg["mqtt"]["discovery_prefix"]
    bus = EventBus()
    queue = FakeQueue(bus)
    async with running_bridge(cfg, bus, queue, FakeScan(bus)) as bridge:
        async with recorder(broker, f"{base}/#") as rec:
            await rec.wait(lambda r: r.last(f"{base}/status") and bridge.connected)

        broker.stop()  # persistence is off: the broker forgets every retained message
        await until(lambda: not bridge.connected, within=15)
        assert not bridge.connected
        # The daemon keeps working while the broker is away.
        await queue.add("attack-on-titan", [(2, 5)])
        await queue.start()

        broker.start()
        async with recorder(broker, f"{base}/#", f"{prefix}/#") as rec:
            state = await rec.wait(
                lambda r: (s := _state(r, f"{base}/queue/state")) and s["is_running"] and s, within=20
            )
            assert state["statistics"]["pending"] == 1
            await rec.wait(
                lambda r: r.last(f"{base}/status") and r.last(f"{base}/status").payload == b"online"
            )
            await rec.wait(lambda r: len(_entities(r, prefix)) == N)
            assert bridge.connected and bridge.connects >= 2
            resp = await rec.request(base, "queue/pause")
            assert resp["status"] == "ok"


async def test_home_assistant_birth_triggers_republish(mosquitto: Broker, tmp_path: Path) -> None:
    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data")
    prefix = cfg["mqtt"]["discovery_prefix"]
    bus = EventBus()
    async with recorder(mosquitto, f"{prefix}/+/+/config", f"{prefix}/+/+/+/config", f"{base}/#") as rec:
        # HA's birth message is often retained; the copy every subscribe delivers is not an HA restart.
        await rec.client.publish(f"{prefix}/status", b"online", qos=1, retain=True)
        async with running_bridge(cfg, bus, FakeQueue(bus)):
            await rec.wait(lambda r: len(_entities(r, prefix)) == N and r.on(f"{base}/queue/state"))
            # The bridge handles messages in order: once this answer is out, the retained birth was seen.
            assert (await rec.request(base, "queue/status"))["status"] == "ok"
            assert len([m for m in rec.messages if m.topic.endswith("/config")]) == 1  # one device config
            # Retained state goes out once per connection, not once from the seed and again on connect.
            assert len(rec.on(f"{base}/queue/state")) == 1 and len(rec.on(f"{base}/scan/state")) == 1
            mark = len(rec.messages)
            await rec.client.publish(f"{prefix}/status", b"online", qos=1)
            await rec.wait(lambda r: len(_entities(r, prefix, after=mark)) == N)
            await rec.wait_message(f"{base}/queue/state", after=mark)
            await rec.wait_message(f"{base}/status", after=mark)


async def test_stale_entities_are_cleared_per_component(mosquitto: Broker, tmp_path: Path) -> None:
    base = _base()
    data = tmp_path / "data"
    cfg = mqtt_config(mosquitto, base, data, discovery_mode="components")
    prefix = cfg["mqtt"]["discovery_prefix"]
    stale = f"{prefix}/sensor/aniworldd_old/removed_entity/config"
    data.mkdir(parents=True)
    (data / REGISTRY_FILE).write_text(json.dumps({"topics": [stale]}))  # the registry of older releases
    async with recorder(mosquitto, f"{prefix}/#") as rec:
        await rec.client.publish(stale, json.dumps({"name": "old", "state_topic": "x"}), qos=1, retain=True)
        await rec.wait(lambda r: r.on(stale))
        async with running_bridge(cfg, EventBus()):
            await rec.wait(lambda r: r.last(stale) and r.last(stale).payload == b"")
            await rec.wait(lambda r: len(_entities(r, prefix)) == N)
        registry = json.loads((data / REGISTRY_FILE).read_text())["topics"]
        assert stale not in registry and len(registry) == N

        # Discovery switched off: every entity this install published is removed from HA.
        cfg["mqtt"]["discovery"] = False
        async with running_bridge(cfg, EventBus()):
            await rec.wait(lambda r: not _entities(r, prefix))
        assert json.loads((data / REGISTRY_FILE).read_text())["topics"] == []
    async with recorder(mosquitto, f"{prefix}/#") as late:  # nothing retained is left behind
        await late.client.publish(f"{prefix}/probe", b"x", qos=1)
        await late.wait(lambda r: r.on(f"{prefix}/probe"))
        assert [m.topic for m in late.messages] == [f"{prefix}/probe"]


async def test_stale_components_are_removed_from_the_device(mosquitto: Broker, tmp_path: Path) -> None:
    base = _base()
    data = tmp_path / "data"
    cfg = mqtt_config(mosquitto, base, data)
    prefix = cfg["mqtt"]["discovery_prefix"]
    async with recorder(mosquitto, f"{prefix}/#") as rec:
        async with running_bridge(cfg, EventBus()) as bridge:
            await rec.wait(lambda r: len(_entities(r, prefix)) == N)
        topic = device_topic(prefix, bridge.install_id)
        doc = json.loads((data / REGISTRY_FILE).read_text())
        assert doc["topics"] == [topic] and len(doc["components"][topic]) == N
        # An older release offered an entity this one does not: HA must be told to drop it.
        doc["components"][topic]["removed_entity"] = "sensor"
        (data / REGISTRY_FILE).write_text(json.dumps(doc))
        mark = len(rec.messages)
        async with running_bridge(cfg, EventBus()):
            await rec.wait(lambda r: len([m for m in r.messages[mark:] if m.topic == topic]) >= 2)
        sent = [m.json() for m in rec.messages[mark:] if m.topic == topic]
        assert sent[0]["components"]["removed_entity"] == {"p": "sensor"}  # HA removes the component
        assert "removed_entity" not in sent[-1]["components"] and len(sent[-1]["components"]) == N
        assert "removed_entity" not in json.loads((data / REGISTRY_FILE).read_text())["components"][topic]

        # Discovery off: the device config is emptied, HA removes the device with all its entities.
        cfg["mqtt"]["discovery"] = False
        async with running_bridge(cfg, EventBus()):
            await rec.wait(lambda r: r.last(topic).payload == b"")
        assert json.loads((data / REGISTRY_FILE).read_text()) == {"topics": [], "components": {}}
    async with recorder(mosquitto, f"{prefix}/#") as late:
        await late.client.publish(f"{prefix}/probe", b"x", qos=1)
        await late.wait(lambda r: r.on(f"{prefix}/probe"))
        assert [m.topic for m in late.messages] == [f"{prefix}/probe"]


async def test_switching_discovery_forms_migrates_the_same_entities(
    mosquitto: Broker, tmp_path: Path
) -> None:
    """components -> device -> components: HA's migrate_discovery steps, same unique ids throughout."""
    base = _base()
    data = tmp_path / "data"
    cfg = mqtt_config(mosquitto, base, data, discovery_mode="components")
    prefix = cfg["mqtt"]["discovery_prefix"]
    async with recorder(mosquitto, f"{prefix}/#") as rec:
        async with running_bridge(cfg, EventBus()) as bridge:
            per_component = await rec.wait(lambda r: (d := _entities(r, prefix)) and len(d) == N and d)
        old_topics = _config_topics(rec, prefix)
        assert len(old_topics) == N
        # The unique ids of earlier releases: aniworldd_<install id>_<object id>, unchanged.
        legacy = {e: per_component[e]["unique_id"] for e in LEGACY}
        assert legacy == {e: f"aniworldd_{bridge.install_id}_{e[1]}" for e in LEGACY}

        cfg["mqtt"]["discovery_mode"] = "device"
        mark = len(rec.messages)
        async with running_bridge(cfg, EventBus()):
            await rec.wait(lambda r: all(r.last(t).payload == b"" for t in old_topics))
        topic = device_topic(prefix, bridge.install_id)
        order = [(m.topic, m.payload) for m in rec.messages[mark:] if m.topic.endswith("/config")]
        device_at = next(i for i, (t, _) in enumerate(order) if t == topic)
        for old in old_topics:  # migrate_discovery first, then the device config, then the old topic emptied
            first = next(i for i, (t, _) in enumerate(order) if t == old)
            last = max(i for i, (t, _) in enumerate(order) if t == old)
            assert json.loads(order[first][1]) == {"migrate_discovery": True}
            assert first < device_at < last and order[last][1] == b""
        device = _entities(rec, prefix, after=mark)
        assert set(device) == set(per_component)
        assert {e: c["unique_id"] for e, c in device.items()} == {
            e: c["unique_id"] for e, c in per_component.items()
        }
        for entity, config in per_component.items():  # the same options, only the form differs
            assert device[entity] == config, entity

        cfg["mqtt"]["discovery_mode"] = "components"
        mark = len(rec.messages)
        async with running_bridge(cfg, EventBus()):
            await rec.wait(lambda r: r.last(topic).payload == b"")
        back = [(m.topic, m.payload) for m in rec.messages[mark:] if m.topic == topic]
        assert json.loads(back[0][1]) == {"migrate_discovery": True} and back[-1][1] == b""
        assert _entities(rec, prefix, after=mark) == per_component
    async with recorder(mosquitto, f"{prefix}/#") as late:  # the broker keeps exactly the component configs
        await late.wait(lambda r: len(_config_topics(r, prefix)) == N)
        assert _config_topics(late, prefix) == old_topics


@pytest.mark.slow
async def test_daemon_process_online_sigterm_offline_and_will_after_kill9(
    mosquitto: Broker, tmp_path: Path
) -> None:
    base = _base()
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"server:\n  port: {free_port()}\n"
        f"library:\n  roots: [{tmp_path / 'library'}]\n  watch: false\n  scan_on_start: false\n"
        "downloads:\n  autostart: false\n"
        f"mqtt:\n  host: 127.0.0.1\n  port: {mosquitto.port}\n  base_topic: {base}\n"
        f"  client_id: daemon-{base}\n  discovery_prefix: ha-{base}\n  keepalive: 30\n"
    )

    def spawn() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "aniworldd", "run", "--config", str(cfg_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def status(r: Recorder) -> bytes | None:
        m = r.last(f"{base}/status")
        return m.payload if m else None

    async with recorder(mosquitto, f"{base}/status", f"ha-{base}/#") as rec:
        proc = spawn()
        try:
            await rec.wait(lambda r: status(r) == b"online", within=30)
            # + a free-space sensor for the library root (and hoster health when the queue tracks it)
            first = await rec.wait(lambda r: (d := _entities(r, f"ha-{base}")) and len(d) > N and d)
            first_ids = {c["unique_id"] for c in first.values()}
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 15) == 0
            await rec.wait(lambda r: status(r) == b"offline")
        finally:
            if proc.poll() is None:
                proc.kill()

        mark = len(rec.messages)
        proc = spawn()
        try:
            await rec.wait(
                lambda r: any(
                    m.topic == f"{base}/status" and m.payload == b"online" for m in r.messages[mark:]
                ),
                within=30,
            )
            second = await rec.wait(
                lambda r: (d := _entities(r, f"ha-{base}", after=mark)) and len(d) == len(first) and d
            )
            assert {c["unique_id"] for c in second.values()} == first_ids
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 15)
            # The broker sends the will: retained `offline`, although the daemon never said goodbye.
            await rec.wait(lambda r: status(r) == b"offline")
        finally:
            if proc.poll() is None:
                proc.kill()
    async with recorder(mosquitto, f"{base}/status") as late:
        await late.wait(lambda r: r.last(f"{base}/status"))
        assert late.last(f"{base}/status").payload == b"offline" and late.last(f"{base}/status").retain


async def test_real_download_and_scan_services_over_mqtt(
    mosquitto: Broker, config_factory, tmp_path: Path
) -> None:
    """The same topics and commands with the real DownloadService/ScanService on a real SQLite file."""
    from aniworldd.db import Store
    from aniworldd.services.download_service import DownloadService
    from aniworldd.services.scan_service import ScanService

    base = _base()
    cfg = config_factory(
        "library:\n  watch: false\n  scan_on_start: false\n"
        f"  roots: [{tmp_path / 'library'}]\n"
        "downloads:\n  autostart: false\n"
        f"mqtt:\n  host: {mosquitto.host}\n  port: {mosquitto.port}\n  base_topic: {base}\n"
        f"  client_id: real-{base}\n  discovery_prefix: ha-{base}\n  progress_interval: 0.1\n"
    )
    (tmp_path / "library").mkdir(exist_ok=True)
    store = Store(cfg["database"]["url"], cfg["data_dir"])

    def seed() -> None:
        s = store.e.AnimeSeries(
            key="attack-on-titan", name="Attack on Titan", folder="Attack on Titan (2013)"
        )
        for n in (1, 2, 3):
            store.e.Episode(series=s, season=1, number=n, languages=["ger-sub"])

    await store.run(seed)
    bus = EventBus()
    queue = DownloadService(cfg, store, bus)
    scan = ScanService(cfg, store, bus)
    try:
        async with recorder(mosquitto, f"{base}/#") as rec, running_bridge(cfg, bus, queue, scan):
            await rec.wait(lambda r: _state(r, f"{base}/queue/state") and _state(r, f"{base}/scan/state"))

            resp = await rec.request(
                base,
                "queue/add",
                {"key": "attack-on-titan", "season": 1, "episodes": [1, 2], "transaction": 5},
            )
            assert resp["status"] == "ok" and resp["transaction"] == 5
            assert sorted(i["episode"] for i in resp["data"]["items"]) == [1, 2]
            await rec.wait(lambda r: _state(r, f"{base}/queue/state")["statistics"]["pending"] == 2)
            assert len(await queue.items("pending")) == 2  # really in the database

            dup = await rec.request(
                base, "queue/add", {"key": "attack-on-titan", "season": 1, "episodes": [2]}
            )
            assert dup["status"] == "error" and dup["data"]["code"] == "conflict"
            missing = await rec.request(
                base, "queue/add", {"key": "attack-on-titan", "season": 9, "episodes": [1]}
            )
            assert missing["status"] == "error" and missing["data"]["code"] == "not_found"

            assert (await rec.request(base, "queue/paused", raw=b"ON"))["status"] == "ok"
            await rec.wait(lambda r: _state(r, f"{base}/queue/state")["is_paused"] is True)
            assert (await rec.request(base, "queue/resume"))["status"] == "ok"
            await rec.wait(lambda r: _state(r, f"{base}/queue/state")["is_paused"] is False)
            for command in ("queue/retry", "queue/clear_completed"):
                assert (await rec.request(base, command))["status"] == "ok", command

            mark = len(rec.messages)
            assert (await rec.request(base, "scan/rescan"))["status"] == "ok"
            event = await rec.wait(
                lambda r: next((m.json() for m in r.messages[mark:] if m.topic == f"{base}/event"), None)
            )
            assert event["type"] == "scan_complete"
            done = await rec.wait(lambda r: (s := _state(r, f"{base}/scan/state")) and s["last_scan"] and s)
            assert done["running"] is False and done["series"] == 0
    finally:
        await queue.close()
        await scan.close()
        store.close()
