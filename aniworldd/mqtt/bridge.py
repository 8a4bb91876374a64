"""The MQTT bridge: mirrors bus events to retained topics, answers requests, publishes HA discovery.

Topics under `<base>`:
  status            online/offline, retained; also the last will, so a crash shows `offline`
  queue/state       retained QueueStatus + speed_mbps
  queue/active      retained {count, speed_mbps, downloads: [...]}, at most once per progress_interval
  scan/state        retained {running, percent, last_scan, series, missing_episodes, ...}
  event             not retained: download_complete/failed, scan_complete/failed in the seed's envelope
  request/<cmd>     commands in; response/<cmd> answers out (see commands.py)

The daemon must keep working while the broker is down, so the client runs in its own task with
reconnect + exponential backoff, and every (re)connect republishes the whole retained picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from pathlib import Path
from typing import Any

import aiomqtt

from aniworldd import __version__
from aniworldd.events import Event, EventBus
from aniworldd.mqtt.commands import CommandDispatcher
from aniworldd.mqtt.discovery import DiscoveryRegistry, build_discovery, configuration_url, load_install_id
from aniworldd.mqtt.protocols import QueueControl, ScanControl
from aniworldd.mqtt.state import (
    FORWARDED,
    QUEUE_ACTIVE,
    QUEUE_STATE,
    SCAN_STATE,
    SUBSCRIBED,
    MirrorState,
    dumps,
)

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
_COMMAND_BACKLOG = 100


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

        self.state = MirrorState()
        self.dispatcher = CommandDispatcher(self, on_queue_changed=self.refresh_queue)
        self.registry = DiscoveryRegistry(self.data_dir)
        self.install_id = load_install_id(self.data_dir)

        self._client: aiomqtt.Client | None = None
        self._connected = False
        self._closing = False
        self._tasks: list[asyncio.Task] = []
        self._dirty = {name: asyncio.Event() for name in (QUEUE_STATE, QUEUE_ACTIVE, SCAN_STATE)}
        self._commands: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=_COMMAND_BACKLOG)
        self._sub = None
        self.last_error: str | None = None
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
            "connects": self.connects,
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        """Seed the state from the services and start the background tasks; never waits for the broker."""
        self._sub = self.bus.subscribe(set(SUBSCRIBED), maxsize=2000)
        await self._seed()
        self._spawn(self._consume_events(), "mqtt-events")
        self._spawn(self._run_commands(), "mqtt-commands")
        for name in self._dirty:
            self._spawn(self._pump(name), f"mqtt-pump-{name}")
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
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._connected = False
        self._client = None

    async def refresh_queue(self) -> None:
        """Re-read the queue status (after a command, on connect) and mark queue topics dirty."""
        queue = self.queue
        if queue is None:
            return
        self._mark(self.state.set_queue_status(await queue.status()))

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
                if event.type in FORWARDED:
                    await self._forward(event)
            except Exception:
                log.exception("mqtt: handling %s failed", event.type)

    async def _forward(self, event: Event) -> None:
        # QoS 1: an automation ("download failed" notification) should not miss its one message.
        await self._publish(f"{self.base}/event", dumps(event.envelope()), retain=False, qos=1)

    def _payload(self, name: str) -> tuple[str, str]:
        if name == QUEUE_STATE:
            return f"{self.base}/queue/state", dumps(self.state.queue_payload())
        if name == QUEUE_ACTIVE:
            return f"{self.base}/queue/active", dumps(self.state.active_payload())
        return f"{self.base}/scan/state", dumps(self.state.scan_payload())

    async def _pump(self, name: str) -> None:
        """Publish one state topic: at once on the first change, then at most once per interval.

        Changes arriving during the pause are coalesced into one trailing publish of the newest state,
        so progress traffic stays bounded however fast downloads report.
        """
        flag = self._dirty[name]
        while True:
            await flag.wait()
            flag.clear()
            if self._connected:
                topic, payload = self._payload(name)
                await self._publish(topic, payload, retain=True)
            await asyncio.sleep(self.interval)

    async def _publish(self, topic: str, payload: str | bytes, retain: bool, qos: int = 0) -> bool:
        client = self._client
        if client is None or not self._connected:
            return False
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
        """(Re)publish online, discovery (clearing stale entities) and every retained state topic."""
        if refresh:
            await self._seed()
        await self._publish(self.status_topic, ONLINE, retain=True, qos=1)
        await self._publish_discovery()
        for name in self._dirty:
            topic, payload = self._payload(name)
            await self._publish(topic, payload, retain=True, qos=1)

    async def _publish_discovery(self) -> None:
        configs = build_discovery(
            self.mqtt, self.install_id, self.version, configuration_url(self.config.get("server") or {})
        )
        previous = self.registry.load()
        for topic in sorted(previous - set(configs)):
            # An empty retained payload makes HA delete the entity and the broker forget the config.
            if not await self._publish(topic, b"", retain=True, qos=1):
                return
        for topic, payload in configs.items():
            if not await self._publish(topic, dumps(payload), retain=True, qos=1):
                return
        if previous != set(configs):
            try:
                self.registry.save(set(configs))
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
