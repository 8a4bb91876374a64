"""What a Home Assistant user sees, against a real mosquitto and the real queue/scan services.

Each test is one of the issue's "done when" checks: speed 0 after pause, attribute sets under HA's 16 KB,
no scan entity change from the partial rescan after a download, a small `queue/state` with 1,000 pending
items, a paused queue that stays paused over a restart; plus the new entities (events, problem, settings,
update, free space, hoster health). Entity states are what HA renders from our templates (ha_render.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aniworldd import __version__
from aniworldd import events as ev
from aniworldd.core.markers import write_marker
from aniworldd.db import Store
from aniworldd.events import EventBus
from aniworldd.mqtt import MqttBridge
from aniworldd.mqtt.discovery import root_id
from aniworldd.services.download_service import DownloadService
from aniworldd.services.scan_service import ScanService
from tests.integration.ha_render import (
    HA_ATTRIBUTE_LIMIT,
    attributes_of,
    attributes_size,
    entities_from,
    event_of,
    state_of,
)
from tests.integration.mqtt_fixtures import Broker, FakeQueue, FakeScan, Recorder, recorder

pytestmark = pytest.mark.mqtt
_counter = iter(range(1, 10_000))


def _base() -> str:
    return f"ha{os.getpid()}x{next(_counter)}"


@contextlib.asynccontextmanager
async def bridge_for(cfg: dict, bus: EventBus, queue: Any = None, scan: Any = None, services: Any = None):
    bridge = MqttBridge(
        cfg,
        bus,
        cfg["data_dir"],
        queue=queue,
        scan=scan,
        services=services,
        reconnect_min=0.05,
        reconnect_max=0.5,
    )
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.close()


def _mqtt_yaml(broker: Broker, base: str, **extra: Any) -> str:
    lines = [
        "mqtt:",
        f"  host: {broker.host}",
        f"  port: {broker.port}",
        f"  base_topic: {base}",
        f"  client_id: c-{base}",
        f"  discovery_prefix: ha-{base}",
        "  progress_interval: 0.2",
    ]
    lines += [f"  {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def _state(rec: Recorder, topic: str) -> Any:
    m = rec.last(topic)
    return m.json() if m else None


def _entity(rec: Recorder, prefix: str, platform: str, object_id: str) -> dict:
    return entities_from(rec.messages, prefix)[(platform, object_id)]


def _seen_states(rec: Recorder, config: dict, after: int = 0) -> list[tuple[str, dict | None]]:
    """(state, attributes) the entity shows after each message on its state topic, from index `after` on."""
    out = []
    for m in rec.messages[after:]:
        if m.topic == config["state_topic"]:
            attrs = (
                attributes_of(config, m.payload) if config.get("json_attributes_topic") == m.topic else None
            )
            out.append((state_of(config, m.payload), attrs))
    return out


def _progress(item_id: int, speed: float, percent: float = 40.0) -> dict:
    return {
        "download_id": item_id,
        "key": "attack-on-titan",
        "folder": "Attack On Titan",
        "season": 1,
        "episode": item_id,
        "language": "ger-sub",
        "percent": percent,
        "downloaded_bytes": 400,
        "total_bytes": 1000,
        "speed_mbps": speed,
        "eta_seconds": 12,
    }


async def test_pause_drops_speed_to_zero_within_one_progress_interval(
    mosquitto: Broker, tmp_path: Path
) -> None:
    from tests.integration.mqtt_fixtures import mqtt_config

    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data", progress_interval=0.5)
    prefix = cfg["mqtt"]["discovery_prefix"]
    bus = EventBus()
    queue = FakeQueue(bus)
    async with recorder(mosquitto, f"{base}/#", f"{prefix}/#") as rec, bridge_for(cfg, bus, queue) as bridge:
        await rec.wait(lambda r: len(entities_from(r.messages, prefix)) > 20)
        [item] = await queue.add("attack-on-titan", [(1, 1)])
        await queue.start()
        queue.set_status(item["id"], "downloading")
        bus.publish(ev.DOWNLOAD_PROGRESS, _progress(item["id"], 3.25))
        await rec.wait(lambda r: (_state(r, f"{base}/queue/active") or {}).get("speed_mbps") == 3.25)
        speed = _entity(rec, prefix, "sensor", "download_speed")
        current = _entity(rec, prefix, "sensor", "current_download")
        assert state_of(speed, rec.last(f"{base}/queue/active").payload) == "3.25"
        attrs = attributes_of(current, rec.last(f"{base}/queue/active").payload)
        assert state_of(current, rec.last(f"{base}/queue/active").payload) == "40.0"
        assert attrs["episode"] == item["episode"] and attrs["eta_seconds"] == 12

        mark = len(rec.messages)
        await queue.pause()
        # A progress report already on its way when the pause happened must not bring the speed back.
        bus.publish(ev.DOWNLOAD_PROGRESS, _progress(item["id"], 3.25, 41.0))
        first = await rec.wait_message(f"{base}/queue/active", after=mark)
        # The pump publishes at most once per progress_interval: the first publish after the pause is
        # within one interval, and it already says 0.
        assert first.json()["speed_mbps"] == 0.0 and first.json()["paused"] is True
        assert state_of(speed, first.payload) == "0.0"
        assert attributes_of(current, first.payload)["eta_seconds"] is None
        await asyncio.sleep(0.6)  # one more interval: nothing after the pause says otherwise
        assert all(
            m.json()["speed_mbps"] == 0.0 for m in rec.messages[mark:] if m.topic == f"{base}/queue/active"
        )
        assert _state(rec, f"{base}/queue/state")["speed_mbps"] == 0.0
        assert bridge.state.paused


async def test_real_queue_pause_reports_zero_speed(mosquitto: Broker, config_factory, tmp_path: Path) -> None:
    """The same with the real DownloadService: its queue_status after pause() zeroes what HA shows."""
    base = _base()
    cfg = config_factory(
        "library:\n  watch: false\n  scan_on_start: false\n"
        f"  roots: [{tmp_path / 'library'}]\ndownloads:\n  autostart: false\n" + _mqtt_yaml(mosquitto, base)
    )
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    bus = EventBus()
    queue = DownloadService(cfg, store, bus)
    try:
        async with recorder(mosquitto, f"{base}/#") as rec, bridge_for(cfg, bus, queue):
            await rec.wait(lambda r: _state(r, f"{base}/queue/active"))
            bus.publish(ev.DOWNLOAD_PROGRESS, _progress(7, 2.5))  # as a running download reports it
            await rec.wait(lambda r: _state(r, f"{base}/queue/active")["speed_mbps"] == 2.5)
            mark = len(rec.messages)
            await queue.pause()
            first = await rec.wait_message(f"{base}/queue/active", after=mark)
            assert first.json()["speed_mbps"] == 0.0
    finally:
        await queue.close()
        store.close()


async def test_400_unmatched_folders_stay_under_the_attribute_limit(
    mosquitto: Broker, config_factory, tmp_path: Path
) -> None:
    base = _base()
    library = tmp_path / "library"
    for i in range(400):  # folders without a marker: all unmatched, with long names like real ones
        (library / f"Some Very Long Anime Series Title Number {i:04d} (2024) [German Dub]").mkdir(
            parents=True
        )
    cfg = config_factory(
        f"library:\n  watch: false\n  scan_on_start: false\n  roots: [{library}]\n"
        + _mqtt_yaml(mosquitto, base)
    )
    prefix = f"ha-{base}"
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    bus = EventBus()
    scan = ScanService(cfg, store, bus)
    try:
        async with (
            recorder(mosquitto, f"{base}/#", f"{prefix}/#") as rec,
            bridge_for(cfg, bus, FakeQueue(bus), scan),
        ):
            await rec.wait(
                lambda r: _state(r, f"{base}/scan/state") and len(entities_from(r.messages, prefix)) > 20
            )
            mark = len(rec.messages)
            summary = await scan.scan_all()
            assert len(summary["unmatched"]) == 400  # the bus event really carries the 400 folders
            event = await rec.wait(lambda r: (m := r.last(f"{base}/event")) and m.json())
            assert event["type"] == "scan_complete" and event["data"]["unmatched"] == 400
            done = await rec.wait(
                lambda r: (s := _state(r, f"{base}/scan/state")) and s["unmatched"] == 400 and s
            )
            assert done["last_full"]["unmatched"] == 400 and done["last_scan"]
            entities = entities_from(rec.messages, prefix)
            checked = 0
            for (platform, object_id), config in entities.items():
                topic = config.get("json_attributes_topic")
                if not topic:
                    continue
                for m in rec.messages[mark:]:
                    if m.topic == topic:
                        size = attributes_size(attributes_of(config, m.payload))
                        assert size < HA_ATTRIBUTE_LIMIT, (platform, object_id, size)
                        checked += 1
            assert checked >= 2  # last_scan's attributes were among them
            assert all(
                len(m.payload) < HA_ATTRIBUTE_LIMIT
                for m in rec.messages
                if m.topic.startswith(base)  # every state topic and the scan_complete event
            )
    finally:
        await scan.close()
        store.close()


async def test_a_finished_download_changes_no_scan_entity(
    mosquitto: Broker, config_factory, tmp_path: Path
) -> None:
    """The partial rescan after a download updates the library counts, never Scan running / Last scan."""
    base = _base()
    library = tmp_path / "library"
    series = library / "Attack on Titan (2013)"
    series.mkdir(parents=True)
    write_marker(
        series, "attack-on-titan", "aniworld", "Attack on Titan", "https://aniworld.to/anime/stream/x"
    )
    (series / "Season 01").mkdir()
    (series / "Season 01" / "Attack on Titan - S01E001 - (German Dub).mp4").write_bytes(b"x" * 10)
    cfg = config_factory(
        f"library:\n  watch: false\n  scan_on_start: false\n  roots: [{library}]\n"
        + _mqtt_yaml(mosquitto, base)
    )
    prefix = f"ha-{base}"
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    bus = EventBus()
    scan = ScanService(cfg, store, bus)
    try:
        async with (
            recorder(mosquitto, f"{base}/#", f"{prefix}/#") as rec,
            bridge_for(cfg, bus, FakeQueue(bus), scan),
        ):
            await rec.wait(lambda r: len(entities_from(r.messages, prefix)) > 20)
            await scan.scan_all()
            full = await rec.wait(
                lambda r: (s := _state(r, f"{base}/scan/state")) and s["episodes"] == 1 and s
            )
            running = _entity(rec, prefix, "binary_sensor", "scan_running")
            last_scan = _entity(rec, prefix, "sensor", "last_scan")
            before = {
                "running": _seen_states(rec, running)[-1],
                "last_scan": _seen_states(rec, last_scan)[-1],
            }
            assert before["running"][0] == "OFF" and before["last_scan"][0] == full["last_full"]["at"]

            # A download finished: a new file in the series folder, then the rescan of just that folder
            # (what the watcher / the queue asks for).
            mark = len(rec.messages)
            (series / "Season 01" / "Attack on Titan - S01E002 - (German Dub).mp4").write_bytes(b"x" * 10)
            summary = await scan.scan_folders([(str(library), series.name)])
            assert summary["scope"] == "partial"
            after = await rec.wait(
                lambda r: (s := _state(r, f"{base}/scan/state")) and s["episodes"] == 2 and s, within=10
            )
            assert after["library_changes"] == full["library_changes"] + 1 and after["library_updated"]
            for name, config in (("running", running), ("last_scan", last_scan)):
                seen = _seen_states(rec, config, after=mark)
                assert seen and all(s == before[name] for s in seen), (name, seen, before[name])
            # ... and the next full scan still moves Last scan.
            mark = len(rec.messages)
            await scan.scan_all()
            await rec.wait(
                lambda r: any(
                    state_of(last_scan, m.payload) != before["last_scan"][0]
                    for m in r.messages[mark:]
                    if m.topic == f"{base}/scan/state"
                )
            )
    finally:
        await scan.close()
        store.close()


async def _seed_episodes(store: Store, count: int) -> None:
    def seed() -> None:
        s = store.e.AnimeSeries(key="one-piece", name="One Piece", folder="One Piece (1999)")
        for n in range(1, count + 1):
            store.e.Episode(series=s, season=1, number=n, languages=["ger-sub"])

    await store.run(seed)


async def test_queue_state_stays_small_with_1000_pending(
    mosquitto: Broker, config_factory, tmp_path: Path
) -> None:
    base = _base()
    cfg = config_factory(
        "library:\n  watch: false\n  scan_on_start: false\n"
        f"  roots: [{tmp_path / 'library'}]\ndownloads:\n  autostart: false\n" + _mqtt_yaml(mosquitto, base)
    )
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    await _seed_episodes(store, 1000)
    bus = EventBus()
    queue = DownloadService(cfg, store, bus)
    try:
        async with recorder(mosquitto, f"{base}/#") as rec, bridge_for(cfg, bus, queue):
            await rec.wait(lambda r: _state(r, f"{base}/queue/state"))
            await queue.add("one-piece", [(1, n) for n in range(1, 1001)])
            msg = await rec.wait(
                lambda r: (
                    (m := r.last(f"{base}/queue/state")) and m.json()["statistics"]["pending"] == 1000 and m
                )
            )
            assert len(msg.payload) < 2048, len(msg.payload)
            assert set(msg.json()) == {"is_running", "is_paused", "statistics", "speed_mbps"}
            # queue/active and queue/failed are bounded too (nothing active, nothing failed here)
            assert len(rec.last(f"{base}/queue/active").payload) < 2048
    finally:
        await queue.close()
        store.close()


async def test_restart_keeps_a_paused_queue_paused(mosquitto: Broker, config_factory, tmp_path: Path) -> None:
    """Paused (and started) through HA survives a daemon restart; autostart decides only the first start."""
    base = _base()
    cfg = config_factory(
        "library:\n  watch: false\n  scan_on_start: false\n"
        # warm_start 0: no yt-dlp child kept ready (the launcher is not what this test is about)
        f"  roots: [{tmp_path / 'library'}]\ndownloads:\n  autostart: true\n  warm_start: 0\n"
        + _mqtt_yaml(mosquitto, base)
    )
    store = Store(cfg["database"]["url"], cfg["data_dir"])

    async def run_once(action) -> dict:
        bus = EventBus()
        queue = DownloadService(cfg, store, bus)
        try:
            await queue.restore_control(cfg["downloads"]["autostart"])
            async with recorder(mosquitto, f"{base}/#") as rec, bridge_for(cfg, bus, queue):
                await rec.wait(lambda r: _state(r, f"{base}/queue/state"))
                if action:
                    await action(rec)
                return _state(rec, f"{base}/queue/state")
        finally:
            await queue.close()

    async def pause_from_ha(rec: Recorder) -> None:
        assert (await rec.request(base, "queue/paused", raw=b"ON"))["status"] == "ok"
        await rec.wait(lambda r: _state(r, f"{base}/queue/state")["is_paused"] is True)

    async def stop_from_ha(rec: Recorder) -> None:
        assert (await rec.request(base, "queue/stop"))["status"] == "ok"
        await rec.wait(lambda r: _state(r, f"{base}/queue/state")["is_running"] is False)

    try:
        first = await run_once(None)  # first start ever: autostart
        assert first["is_running"] is True and first["is_paused"] is False
        await run_once(pause_from_ha)
        again = await run_once(None)
        assert again["is_running"] is True and again["is_paused"] is True  # still paused after the restart
        await run_once(stop_from_ha)
        stopped = await run_once(None)
        assert stopped["is_running"] is False  # autostart: true does not override a stop
    finally:
        store.close()


async def test_events_problem_and_settings_entities(mosquitto: Broker, tmp_path: Path) -> None:
    from tests.integration.mqtt_fixtures import mqtt_config

    base = _base()
    library = tmp_path / "library"
    library.mkdir()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data")
    cfg["library"] = {"roots": [str(library)]}
    prefix = cfg["mqtt"]["discovery_prefix"]
    bus = EventBus()
    queue = FakeQueue(bus)
    async with (
        recorder(mosquitto, f"{base}/#", f"{prefix}/#") as rec,
        bridge_for(cfg, bus, queue, FakeScan(bus)),
    ):
        await rec.wait(lambda r: _state(r, f"{base}/storage") and len(entities_from(r.messages, prefix)) > 20)
        entities = entities_from(rec.messages, prefix)

        # Free space of the library root, in GiB, as a data_size sensor.
        space = entities[("sensor", f"free_space_{root_id(str(library))}")]
        assert space["device_class"] == "data_size" and space["unit_of_measurement"] == "GiB"
        assert float(state_of(space, rec.last(f"{base}/storage").payload)) > 0
        assert attributes_of(space, rec.last(f"{base}/storage").payload)["path"] == str(library)

        # Event entities: each fires for its own type only.
        mark = len(rec.messages)
        bus.publish(
            ev.DOWNLOAD_COMPLETE, {"download_id": 1, "key": "k", "season": 1, "episode": 2, "path": "/x"}
        )
        bus.publish(ev.DOWNLOAD_FAILED, {"download_id": 2, "key": "k", "reason": "gone", "will_retry": False})
        bus.publish(ev.NEW_EPISODES, {"key": "k", "episodes": [{"season": 1, "episode": 3}]})
        await rec.wait(lambda r: len([m for m in r.messages[mark:] if m.topic == f"{base}/event"]) == 3)
        fired = {}
        for m in rec.messages[mark:]:
            if m.topic != f"{base}/event":
                continue
            for event_type in ("download_complete", "download_failed", "new_episodes"):
                got = event_of(entities[("event", event_type)], m.payload)
                if got is not None:
                    assert event_type not in fired
                    fired[event_type] = got
        assert fired["download_complete"] == {
            "event_type": "download_complete",
            "download_id": 1,
            "key": "k",
            "season": 1,
            "episode": 2,
            "path": "/x",
        }
        assert fired["download_failed"]["reason"] == "gone"
        assert fired["new_episodes"]["episodes"] == [{"season": 1, "episode": 3}]

        # The problem sensor follows the daemon's health events.
        problem = entities[("binary_sensor", "problem")]
        assert problem["device_class"] == "problem"
        assert state_of(problem, rec.last(f"{base}/health").payload) == "OFF"
        bus.publish(
            "health", {"status": "blocked", "component": "provider", "message": "HTTP 403 from aniworld.to"}
        )
        await rec.wait(lambda r: state_of(problem, r.last(f"{base}/health").payload) == "ON")
        assert (
            attributes_of(problem, rec.last(f"{base}/health").payload)["message"]
            == "HTTP 403 from aniworld.to"
        )
        bus.publish("health", {"status": "ok", "component": "provider", "message": "refresh works again"})
        await rec.wait(lambda r: state_of(problem, r.last(f"{base}/health").payload) == "OFF")
        # Provider walls per host (services.provider_health): another host getting through clears nothing.
        wall = {"status": "blocked", "component": "provider", "host": "aniworld.to", "message": "captcha"}
        bus.publish("health", wall)
        bus.publish(
            "health", {"status": "ok", "component": "provider", "host": "s.to", "message": "in again"}
        )
        await rec.wait(lambda r: "provider s.to" in r.last(f"{base}/health").json()["components"])
        assert state_of(problem, rec.last(f"{base}/health").payload) == "ON"
        bus.publish("health", {**wall, "status": "ok", "message": "aniworld.to lets us in again"})
        await rec.wait(lambda r: state_of(problem, r.last(f"{base}/health").payload) == "OFF")

        # number / select: HA sends the bare value; the queue takes it at once and the state follows.
        parallel = entities[("number", "max_concurrent")]
        limit = entities[("number", "speed_limit")]
        language = entities[("select", "preferred_language")]
        await rec.client.publish(parallel["command_topic"], b"4", qos=1)
        await rec.client.publish(limit["command_topic"], b"2.5", qos=1)
        await rec.client.publish(language["command_topic"], b"eng-sub", qos=1)
        await rec.wait(lambda r: state_of(language, r.last(f"{base}/settings").payload) == "eng-sub")
        settings = rec.last(f"{base}/settings").payload
        assert state_of(parallel, settings) == "4" and state_of(limit, settings) == "2.5"
        assert queue.config["downloads"] == {
            "max_concurrent": 4,
            "speed_limit": "2560K",
            "language": ["eng-sub", "ger-dub", "ger-sub"],
        }
        for command, raw, needle in (
            ("settings/max_concurrent", b"0", "from 1 to 16"),
            ("settings/max_concurrent", b"2.5", "whole number"),
            ("settings/speed_limit", b"-1", "MiB/s"),
            ("settings/speed_limit", b"fast", "not valid JSON"),
            ("settings/speed_limit", b'"fast"', "expected a number"),
            ("settings/language", b"klingon", "expected one of"),
        ):
            resp = await rec.request(base, command, raw=raw)
            assert resp["status"] == "error" and needle in resp["error"], (command, resp)
        assert queue.config["downloads"]["max_concurrent"] == 4  # bad input changed nothing


async def test_settings_from_ha_are_saved_to_the_config_file(mosquitto: Broker, tmp_path: Path) -> None:
    """With a config file, a number entity change is saved (backup kept) and applied to the real queue."""
    from aniworldd.api.context import AppContext
    from aniworldd.config import load_config
    from aniworldd.services.config_service import ConfigService

    base = _base()
    path = tmp_path / "config.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'data'}\nlibrary:\n  roots: [{tmp_path / 'library'}]\n  watch: false\n"
        "  scan_on_start: false\ndownloads:\n  autostart: false\n" + _mqtt_yaml(mosquitto, base)
    )
    cfg = load_config(path)
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    bus = EventBus()
    queue = DownloadService(cfg, store, bus)
    ctx = AppContext(config=cfg, store=store, bus=bus, config_path=path)
    ctx.queue = queue
    ctx.config_service = ConfigService(path, Path(cfg["data_dir"]), bus, running=cfg)
    try:
        async with recorder(mosquitto, f"{base}/#") as rec, bridge_for(cfg, bus, queue, services=ctx):
            await rec.wait(lambda r: _state(r, f"{base}/settings"))
            resp = await rec.request(base, "settings/max_concurrent", raw=b"5")
            assert resp["status"] == "ok" and resp["data"]["max_concurrent"] == 5
            await rec.wait(lambda r: _state(r, f"{base}/settings")["max_concurrent"] == 5)
        assert queue.max_concurrent == 5  # applied to the running queue
        assert load_config(path)["downloads"]["max_concurrent"] == 5  # and kept for the next start
        assert list((Path(cfg["data_dir"]) / "config-backups").glob("config-*.yaml"))
    finally:
        await queue.close()
        store.close()


class _Tracker:
    """A hoster-health tracker as DownloadService.hoster_health exposes it."""

    def __init__(self) -> None:
        self.entries = {
            "VOE": {"attempts": 5, "successes": 5, "failures_in_a_row": 0, "state": "ok"},
            "Vidoza": {"attempts": 3, "successes": 0, "failures_in_a_row": 3, "state": "cooling_down"},
        }

    def snapshot(self) -> dict:
        return json.loads(json.dumps(self.entries))


async def test_hoster_health_sensor_when_the_queue_tracks_it(mosquitto: Broker, tmp_path: Path) -> None:
    from tests.integration.mqtt_fixtures import mqtt_config

    base = _base()
    cfg = mqtt_config(mosquitto, base, tmp_path / "data")
    prefix = cfg["mqtt"]["discovery_prefix"]
    bus = EventBus()
    queue = FakeQueue(bus)
    queue.hoster_health = _Tracker()
    async with recorder(mosquitto, f"{base}/#", f"{prefix}/#") as rec, bridge_for(cfg, bus, queue):
        await rec.wait(
            lambda r: (
                _state(r, f"{base}/hosters")
                and ("sensor", "hoster_health") in entities_from(r.messages, prefix)
            )
        )
        sensor = _entity(rec, prefix, "sensor", "hoster_health")
        assert state_of(sensor, rec.last(f"{base}/hosters").payload) == "1"
        assert attributes_of(sensor, rec.last(f"{base}/hosters").payload)["Vidoza"]["state"] == "cooling_down"
        queue.hoster_health.entries["Vidoza"].update(state="ok", failures_in_a_row=0)
        bus.publish("hoster_health", {"hoster": "Vidoza", "state": "ok"})  # the tracker's change event
        await rec.wait(lambda r: state_of(sensor, r.last(f"{base}/hosters").payload) == "2")
    # Without a tracker there is no such entity (and no topic).
    base2 = _base()
    cfg2 = mqtt_config(mosquitto, base2, tmp_path / "data2")
    async with (
        recorder(mosquitto, f"{base2}/#", f"ha-{base2}/#") as rec,
        bridge_for(cfg2, bus, FakeQueue(bus)),
    ):
        await rec.wait(lambda r: len(entities_from(r.messages, f"ha-{base2}")) > 20)
        assert ("sensor", "hoster_health") not in entities_from(rec.messages, f"ha-{base2}")
        assert rec.last(f"{base2}/hosters") is None


@contextlib.asynccontextmanager
async def pypi_like(version: str):
    """A PyPI-JSON-shaped server on 127.0.0.1 counting the requests it gets."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response(
            {
                "info": {
                    "name": "aniworldd",
                    "version": version,
                    "release_url": f"https://pypi.org/project/aniworldd/{version}/",
                }
            }
        )

    app = web.Application()
    app.router.add_get("/pypi/aniworldd/json", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/pypi/aniworldd/json", hits
    finally:
        await runner.cleanup()


async def test_update_check_only_when_enabled(mosquitto: Broker, tmp_path: Path) -> None:
    from tests.integration.mqtt_fixtures import mqtt_config

    async with pypi_like("99.1.0") as (url, hits):
        base = _base()
        cfg = mqtt_config(mosquitto, base, tmp_path / "off", update_url=url)  # update_check off (default)
        prefix = cfg["mqtt"]["discovery_prefix"]
        async with recorder(mosquitto, f"{base}/#", f"{prefix}/#") as rec, bridge_for(cfg, EventBus()):
            await rec.wait(
                lambda r: _state(r, f"{base}/update") and len(entities_from(r.messages, prefix)) > 20
            )
            update = _entity(rec, prefix, "update", "version")
            assert update["state_topic"] == f"{base}/update"
            assert _state(rec, f"{base}/update") == {"installed_version": __version__, "title": "aniworldd"}
            await asyncio.sleep(0.3)
        assert hits == []  # no network call unless enabled

        base = _base()
        cfg = mqtt_config(
            mosquitto, base, tmp_path / "on", update_url=url, update_check=True, update_interval=3600
        )
        async with recorder(mosquitto, f"{base}/#") as rec, bridge_for(cfg, EventBus()) as bridge:
            doc = await rec.wait(lambda r: (u := _state(r, f"{base}/update")) and "latest_version" in u and u)
            assert doc["installed_version"] == __version__ and doc["latest_version"] == "99.1.0"
            assert doc["release_url"].endswith("/99.1.0/") and bridge.update_error is None
        assert hits == ["/pypi/aniworldd/json"]


async def test_update_check_failure_is_reported_not_raised(mosquitto: Broker, tmp_path: Path) -> None:
    from tests.conftest import free_port
    from tests.integration.mqtt_fixtures import mqtt_config

    base = _base()
    dead = f"http://127.0.0.1:{free_port()}/pypi/aniworldd/json"  # nothing listens there
    cfg = mqtt_config(mosquitto, base, tmp_path / "d", update_url=dead, update_check=True)
    async with recorder(mosquitto, f"{base}/#") as rec, bridge_for(cfg, EventBus()) as bridge:
        await rec.wait(lambda r: _state(r, f"{base}/update"))
        for _ in range(100):
            if bridge.update_error:
                break
            await asyncio.sleep(0.05)
        assert bridge.update_error and "latest_version" not in _state(rec, f"{base}/update")
        assert (await rec.request(base, "queue/status"))["status"] == "error"  # the bridge still answers
