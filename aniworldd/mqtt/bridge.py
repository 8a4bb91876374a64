"""The MQTT bridge: mirrors bus events to retained topics, answers requests, publishes HA discovery.

Topics under `<base>` (all state topics retained and bounded; see README "MQTT topics"):
  status            online/offline; also the last will, so a crash shows `offline`
  queue/state       {is_running, is_paused, statistics: {pending, active, completed, failed, speed_mbps},
                    speed_mbps}: counts and flags only (~200 bytes whatever the queue holds)
  queue/active      {count, speed_mbps, paused, current, downloads: [...]}, at most once per progress_interval
  queue/failed      {count, items: [...]}: the newest 20 failures with their reasons
  scan/state        {running, percent, last_scan, series, episodes, missing_episodes, unmatched (a count),
                    library_updated, library_changes, last_full: {...}}
  health            {problem, status, message, components}: `health` bus events (provider blocked ...)
  hosters           {healthy, total, hosters: {...}}: only when the queue tracks hoster health
  storage           {roots: {<root id>: {path, free_bytes, total_bytes, free_gib, used_percent}}}
  settings          {max_concurrent, speed_limit_mibps, language, languages}
  update            {installed_version, latest_version?, release_url?}
  event             not retained: download_complete/failed, scan_complete/failed, new_episodes
  request/<cmd>     commands in; response/<cmd> answers out (see commands.py)

The daemon must keep working while the broker is down, so the client runs in its own task with
reconnect + exponential backoff, and every (re)connect republishes the whole retained picture once (a
topic whose payload did not change since it was last sent on this connection is not sent again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt

from aniworldd import __version__
from aniworldd import events as ev
from aniworldd.events import Event, EventBus
from aniworldd.mqtt.commands import CommandDispatcher, CommandError
from aniworldd.mqtt.discovery import (
    DiscoveryRegistry,
    Published,
    build_discovery,
    components_of,
    configuration_url,
    is_device_topic,
    load_install_id,
)
from aniworldd.mqtt.protocols import QueueControl, ScanControl
from aniworldd.mqtt.sampling import hosters_payload, settings_payload, storage_payload
from aniworldd.mqtt.state import (
    FORWARDED,
    HEALTH,
    HOSTER_HEALTH_EVENT,
    QUEUE_ACTIVE,
    QUEUE_FAILED,
    QUEUE_STATE,
    SCAN_STATE,
    SUBSCRIBED,
    MirrorState,
    dumps,
    forwarded_envelope,
)
from aniworldd.mqtt.update_check import fetch_latest, update_payload

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
_COMMAND_BACKLOG = 100
STORAGE = "storage"
HOSTERS = "hosters"
SETTINGS = "settings"
UPDATE = "update"
#: Free space and hoster health are sampled this often (and after every finished download).
STORAGE_INTERVAL = 60.0
HOSTERS_INTERVAL = 30.0
MIGRATE = {"migrate_discovery": True}
_SAMPLED = (STORAGE, HOSTERS, SETTINGS, UPDATE)


class MqttBridge:
    """One aiomqtt client task plus the bus consumer and throttled state publishers."""

    def __init__(
        self,
        config: dict,
        bus: EventBus,
        data_dir: str | Path,
        queue: QueueControl | None = None,
        scan: ScanControl | None = None,
        *,
        services: Any = None,
        version: str = __version__,
        reconnect_min: float = 1.0,
        reconnect_max: float = 60.0,
    ) -> None:
        self.config = config
        self.mqtt: dict = config["mqtt"]
        self.bus = bus
        self.data_dir = Path(data_dir)
        self._queue = queue
        self._scan = scan
        # Any object with `.queue` / `.scan` attributes (the daemon's AppContext), read at use time so
        # the bridge does not depend on the order in which the daemon builds the other components.
        self._services = services
        self.version = version
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max

        self.base = self.mqtt["base_topic"].rstrip("/")
        self.prefix = self.mqtt["discovery_prefix"].rstrip("/")
        self.status_topic = f"{self.base}/status"
        self.birth_topic = f"{self.prefix}/status"
        self.interval = float(self.mqtt.get("progress_interval", 1.0))
        self.roots = [str(r) for r in (config.get("library") or {}).get("roots") or []]

        self.state = MirrorState()
        self._storage: dict | None = None
        self._hosters: dict | None = None
        self._latest: dict | None = None
        self.dispatcher = CommandDispatcher(self, on_queue_changed=self.refresh_queue)
        self.registry = DiscoveryRegistry(self.data_dir)
        self.install_id = load_install_id(self.data_dir)

        self._client: aiomqtt.Client | None = None
        self._connected = False
        self._closing = False
        self._tasks: list[asyncio.Task] = []
        self._dirty = {
            name: asyncio.Event()
            for name in (QUEUE_STATE, QUEUE_ACTIVE, QUEUE_FAILED, SCAN_STATE, HEALTH) + _SAMPLED
        }
        # What each retained topic last carried on this connection: unchanged state is not sent again.
        self._sent: dict[str, str] = {}
        self._commands: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=_COMMAND_BACKLOG)
        self._sub = None
        self.last_error: str | None = None
        self.update_error: str | None = None
        self._sample_soon = asyncio.Event()
        self.connects = 0
        self.published = 0

    # --- public surface ------------------------------------------------------------------------
    @property
    def queue(self) -> QueueControl | None:
        return self._queue if self._queue is not None else getattr(self._services, "queue", None)

    @property
    def scan(self) -> ScanControl | None:
        return self._scan if self._scan is not None else getattr(self._services, "scan", None)

    @property
    def hoster_health(self) -> Any:
        """The queue's hoster-health tracker when it has one (`snapshot()`), else None."""
        return getattr(self.queue, "hoster_health", None)

    @property
    def connected(self) -> bool:
        return self._connected

    def status(self) -> dict:
        """For the API's status page."""
        return {
            "enabled": True,
            "connected": self._connected,
            "broker": f"{self.mqtt['host']}:{self.mqtt['port']}",
            "base_topic": self.base,
            "discovery": bool(self.mqtt.get("discovery", True)),
            "discovery_mode": self.mqtt.get("discovery_mode", "device"),
            "connects": self.connects,
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        """Seed the state from the services and start the background tasks; never waits for the broker."""
        self._sub = self.bus.subscribe(set(SUBSCRIBED), maxsize=2000, scope="cluster")
        await self._seed()
        self._spawn(self._consume_events(), "mqtt-events")
        self._spawn(self._run_commands(), "mqtt-commands")
        for name in self._dirty:
            self._spawn(self._pump(name), f"mqtt-pump-{name}")
        self._spawn(self._sample_loop(), "mqtt-sampler")
        if self.mqtt.get("update_check"):
            self._spawn(self._update_loop(), "mqtt-update-check")
        self._spawn(self._connection_loop(), "mqtt-connection")

    async def close(self) -> None:
        """Say `offline` (retained) while still connected, then disconnect cleanly and stop the tasks."""
        self._closing = True
        client = self._client
        if client is not None and self._connected:
            with contextlib.suppress(Exception):
                await client.publish(self.status_topic, OFFLINE, qos=1, retain=True, timeout=3)
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        pending = set(self._tasks)
        while pending:
            # Cancel again what is still running: Python 3.11's wait_for (inside aiomqtt's publish) can
            # swallow a cancel that races a PUBACK, and that task would then wait for messages for good.
            _, pending = await asyncio.wait(pending, timeout=1.0)
            for task in pending:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        self._tasks.clear()
        self._connected = False
        self._client = None

    async def refresh_queue(self) -> None:
        """Re-read the queue status (after a command, on connect) and mark queue topics dirty."""
        queue = self.queue
        if queue is None:
            return
        self._mark(self.state.set_queue_status(await queue.status()))

    def downloads_config(self) -> dict:
        """The running `downloads` settings (the queue's config dict, which apply_settings updates)."""
        queue_config = getattr(self.queue, "config", None)
        source = queue_config if isinstance(queue_config, dict) else self.config
        return source.get("downloads") or {}

    async def set_download_setting(self, key: str, value: Any) -> dict:
        """Change one live `downloads` setting from HA: saved to the config file when the daemon has one
        (with a backup, like a save in the UI; it survives a restart), applied to the queue at once."""
        config_service = getattr(self._services, "config_service", None)
        downloads = self.downloads_config()
        if config_service is not None and getattr(config_service, "path", None) is not None:
            from aniworldd.config import ConfigError

            doc = (await asyncio.to_thread(config_service.get))["config"]
            section = doc.get("downloads") if isinstance(doc.get("downloads"), dict) else {}
            doc["downloads"] = {**section, key: value}
            try:
                saved = await config_service.save(doc)
            except ConfigError as exc:
                raise CommandError(str(exc.issues[0].message if exc.issues else exc)) from exc
            effective = dict(saved["effective"]["downloads"])
        else:
            effective = {**downloads, key: value}
        apply = getattr(self.queue, "apply_settings", None)
        if callable(apply):
            apply(effective)
        else:
            downloads[key] = value
        self._mark({SETTINGS})
        return settings_payload(self.downloads_config())

    # --- internals: state ----------------------------------------------------------------------
    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.append(task)

    def _mark(self, names: set[str]) -> None:
        for name in names:
            self._dirty[name].set()

    async def _seed(self) -> None:
        try:
            await self.refresh_queue()
        except Exception as exc:
            log.warning("mqtt: cannot read the queue status: %s", exc)
        scan = self.scan
        if scan is not None:
            try:
                self._mark(self.state.set_scan_state(scan.state()))
            except Exception as exc:
                log.warning("mqtt: cannot read the scan state: %s", exc)

    async def _consume_events(self) -> None:
        assert self._sub is not None
        async for event in self._sub:
            try:
                self._mark(self.state.apply(event))
                if event.type in (ev.QUEUE_STATUS, ev.CONFIG_CHANGED):
                    self._mark({SETTINGS})  # a config save applies new download settings
                if event.type in (ev.DOWNLOAD_COMPLETE, ev.DOWNLOAD_FAILED, HOSTER_HEALTH_EVENT):
                    self._sample_soon.set()  # a finished file changes free space; outcomes change hosters
                if event.type in FORWARDED:
                    await self._forward(event)
            except Exception:
                log.exception("mqtt: handling %s failed", event.type)

    async def _forward(self, event: Event) -> None:
        # QoS 1: an automation ("download failed" notification) should not miss its one message.
        await self._publish(f"{self.base}/event", dumps(forwarded_envelope(event)), retain=False, qos=1)

    def _payload(self, name: str) -> tuple[str, str] | None:
        """(topic, JSON) of one retained state topic, or None while there is nothing to say yet."""
        doc: Any
        if name == QUEUE_STATE:
            topic, doc = "queue/state", self.state.queue_payload()
        elif name == QUEUE_ACTIVE:
            topic, doc = "queue/active", self.state.active_payload()
        elif name == QUEUE_FAILED:
            topic, doc = "queue/failed", self.state.failed_payload()
        elif name == SCAN_STATE:
            topic, doc = "scan/state", self.state.scan_payload()
        elif name == HEALTH:
            topic, doc = "health", self.state.health_payload()
        elif name == STORAGE:
            topic, doc = "storage", self._storage
        elif name == HOSTERS:
            topic, doc = "hosters", self._hosters
        elif name == SETTINGS:
            topic, doc = "settings", settings_payload(self.downloads_config())
        else:
            topic, doc = "update", update_payload(self.version, self._latest)
        return None if doc is None else (f"{self.base}/{topic}", dumps(doc))

    async def _pump(self, name: str) -> None:
        """Publish one state topic: at once on the first change, then at most once per interval.

        Changes arriving during the pause are coalesced into one trailing publish of the newest state,
        so progress traffic stays bounded however fast downloads report; a payload equal to the one
        last sent is not sent again.
        """
        flag = self._dirty[name]
        while True:
            await flag.wait()
            flag.clear()
            if self._connected:
                await self._publish_state(name)
            await asyncio.sleep(self.interval)

    async def _publish_state(self, name: str, force: bool = False, qos: int = 0) -> None:
        built = self._payload(name)
        if built is None:
            return
        topic, payload = built
        if not force and self._sent.get(topic) == payload:
            return
        if await self._publish(topic, payload, retain=True, qos=qos):
            self._sent[topic] = payload

    async def _sample_loop(self) -> None:
        """Free space per library root and hoster health: at start, every interval, after each download."""
        next_storage = next_hosters = 0.0
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            soon = self._sample_soon.is_set()
            self._sample_soon.clear()
            if self.roots and (soon or now >= next_storage):
                try:
                    self._storage = await asyncio.to_thread(storage_payload, self.roots)
                    self._mark({STORAGE})
                except Exception:
                    log.exception("mqtt: sampling free space failed")
                next_storage = now + STORAGE_INTERVAL
            tracker = self.hoster_health
            if tracker is not None and (soon or now >= next_hosters):
                try:
                    self._hosters = hosters_payload(tracker.snapshot())
                    self._mark({HOSTERS})
                except Exception:
                    log.exception("mqtt: reading hoster health failed")
                next_hosters = now + HOSTERS_INTERVAL
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races the event
            # (close() then waited for this task for good).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(STORAGE_INTERVAL, HOSTERS_INTERVAL)):
                    await self._sample_soon.wait()

    async def _update_loop(self) -> None:
        """mqtt.update_check: the newest release from PyPI's JSON (update_url), every update_interval."""
        url = self.mqtt.get("update_url") or "https://pypi.org/pypi/aniworldd/json"
        every = float(self.mqtt.get("update_interval") or 86400.0)
        async with aiohttp.ClientSession(headers={"User-Agent": f"aniworldd/{self.version}"}) as session:
            while True:
                try:
                    self._latest = await fetch_latest(session, url)
                    self.update_error = None
                    self._mark({UPDATE})
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    self.update_error = str(exc) or type(exc).__name__
                    log.warning("mqtt: update check at %s failed: %s", url, self.update_error)
                await asyncio.sleep(every)

    async def _publish(self, topic: str, payload: str | bytes, retain: bool, qos: int = 0) -> bool:
        client = self._client
        if client is None or not self._connected or self._closing:
            return False  # closing: `offline` is the last word (close() sends it itself)
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=10)
            self.published += 1
            return True
        except aiomqtt.MqttError as exc:
            # The connection task notices the loss and republishes everything after reconnecting.
            log.debug("mqtt: publish to %s failed: %s", topic, exc)
            return False

    # --- internals: connection -----------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext | None:
        tls = self.mqtt.get("tls") or {}
        if not tls.get("enabled"):
            return None
        ctx = ssl.create_default_context(cafile=tls.get("ca_file") or None)
        if tls.get("insecure"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _client_factory(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.mqtt["host"],
            int(self.mqtt["port"]),
            username=self.mqtt.get("username"),
            password=self.mqtt.get("password"),
            identifier=self.mqtt.get("client_id") or None,
            keepalive=int(self.mqtt.get("keepalive", 60)),
            will=aiomqtt.Will(self.status_topic, OFFLINE, qos=1, retain=True),
            tls_context=self._tls_context(),
            timeout=10,
            logger=logging.getLogger("aniworldd.mqtt.client"),
        )

    async def _connection_loop(self) -> None:
        delay = self.reconnect_min
        while not self._closing:
            try:
                async with self._client_factory() as client:
                    self._client = client
                    self._connected = True
                    self.connects += 1
                    self.last_error = None
                    delay = self.reconnect_min
                    log.info("mqtt: connected to %s:%s", self.mqtt["host"], self.mqtt["port"])
                    await client.subscribe(f"{self.base}/request/#", qos=1)
                    await client.subscribe(self.birth_topic, qos=1)
                    await self._announce(refresh=True)
                    async for message in client.messages:
                        try:
                            await self._on_message(message)
                        except aiomqtt.MqttError:
                            raise
                        except Exception:
                            log.exception("mqtt: handling a message on %s failed", message.topic)
            except aiomqtt.MqttError as exc:
                if self._closing:
                    break
                if self._connected or self.last_error != str(exc):
                    log.warning(
                        "mqtt: broker %s:%s unavailable (%s); retrying in %.1fs",
                        self.mqtt["host"],
                        self.mqtt["port"],
                        exc,
                        delay,
                    )
                self.last_error = str(exc)
            except (ssl.SSLError, OSError) as exc:  # bad CA file, TLS handshake: the admin may fix it
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("mqtt: cannot connect: %s; retrying in %.1fs", self.last_error, delay)
            except Exception as exc:  # never let the bridge die: MQTT is optional, the daemon is not
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("mqtt: unexpected error; retrying in %.1fs", delay)
            finally:
                self._connected = False
                self._client = None
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.reconnect_max)

    async def _announce(self, refresh: bool) -> None:
        """(Re)publish online, discovery (clearing stale entities) and every retained state topic, once."""
        if refresh:
            self._sent.clear()  # a new connection: the broker may have lost every retained message
            await self._seed()
        await self._publish(self.status_topic, ONLINE, retain=True, qos=1)
        await self._publish_discovery()
        for name in self._dirty:
            await self._publish_state(name, force=True, qos=1)

    async def _publish_discovery(self) -> None:
        """Publish the discovery configs and remove what this install published before and no longer offers.

        - per-component form: an empty retained payload deletes a stale entity;
        - device form: a component gone from `cmps` is first sent as `{"p": platform}` (HA removes it),
          then the device config without it;
        - switching forms: `{"migrate_discovery": true}` to the old topics, the new configs, then the old
          topics emptied (HA's documented migration: entities keep their ids, history and renames).
        """
        configs = build_discovery(
            self.mqtt,
            self.install_id,
            self.version,
            configuration_url(self.config.get("server") or {}),
            roots=self.roots,
            hosters=self.hoster_health is not None,
        )
        previous = self.registry.load()
        stale = sorted(previous.topics - set(configs))
        offered = {oid for topic, payload in configs.items() for oid in components_of(topic, payload)}
        migrating = [t for t in stale if set(previous.components.get(t) or components_of(t, {})) & offered]
        for topic in migrating:
            if not await self._publish(topic, dumps(MIGRATE), retain=True, qos=1):
                return
        for topic, payload in configs.items():
            gone = {
                oid: platform
                for oid, platform in (previous.components.get(topic) or {}).items()
                if oid not in payload.get("components", {})
            }
            if is_device_topic(topic) and gone:
                removal = {
                    **payload,
                    "components": {**payload["components"], **{o: {"p": p} for o, p in gone.items()}},
                }
                if not await self._publish(topic, dumps(removal), retain=True, qos=1):
                    return
            if not await self._publish(topic, dumps(payload), retain=True, qos=1):
                return
        for topic in stale:
            # An empty retained payload makes HA delete the entity and the broker forget the config.
            if not await self._publish(topic, b"", retain=True, qos=1):
                return
        published = Published(
            set(configs), {t: components_of(t, p) for t, p in configs.items() if is_device_topic(t)}
        )
        if published != previous:
            try:
                self.registry.save(published)
            except OSError as exc:
                log.warning("mqtt: cannot save %s: %s", self.registry.path, exc)

    async def _on_message(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        if topic == self.birth_topic:
            # HA restarted: resend everything. The broker's retained copy of the birth message
            # (delivered on every subscribe) is not a restart.
            if not message.retain and bytes(payload).strip() == ONLINE.encode():
                log.info("mqtt: Home Assistant came online; republishing discovery and state")
                await self._announce(refresh=False)
            return
        command = topic[len(f"{self.base}/request/") :]
        if not command or message.retain:
            return  # retained requests would replay on every reconnect
        try:
            self._commands.put_nowait((command, bytes(payload)))
        except asyncio.QueueFull:
            await self._respond(
                command,
                {
                    "status": "error",
                    "data": {"code": "busy"},
                    "error": "too many pending requests",
                    "transaction": None,
                },
            )

    async def _run_commands(self) -> None:
        """Commands run one after another, in arrival order (pause then resume must not swap)."""
        while True:
            command, payload = await self._commands.get()
            response = await self.dispatcher.handle(command, payload)
            await self._respond(command, response)

    async def _respond(self, command: str, response: dict) -> None:
        await self._publish(f"{self.base}/response/{command}", dumps(response), retain=False, qos=1)
