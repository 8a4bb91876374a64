"""Composition root: the only place that builds services and wires them together.

Start order follows dependencies (store → bus → services → web → background work); stop runs the
registered closers in reverse so nothing outlives what it depends on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from aniworldd import __version__, logtail
from aniworldd.api.app import create_app
from aniworldd.api.context import AppContext
from aniworldd.api.posters import PosterTokens
from aniworldd.commands import load_or_report
from aniworldd.config import ConfigError, check_cluster, config_path
from aniworldd.core.roots import missing_root_reason
from aniworldd.db import EXIT_DAMAGED, DatabaseDamaged, DatabaseError, Store
from aniworldd.db.services import AnimeSeriesService
from aniworldd.events import CONFIG_CHANGED, Event, EventBus
from aniworldd.limits import cap_connections, raise_nofile_limit
from aniworldd.metrics import Metrics
from aniworldd.providers.registry import ProviderSet, build_providers
from aniworldd.providers.sources import SourceFinder
from aniworldd.services.anime_service import AnimeService
from aniworldd.services.auth_service import AuthService
from aniworldd.services.calendar_service import CalendarService
from aniworldd.services.config_service import ConfigService
from aniworldd.services.download_service import DownloadService
from aniworldd.services.library_service import LibraryService
from aniworldd.services.metadata_service import MetadataService, provider_fetcher
from aniworldd.services.notifications import AppriseNotifier, WebhookNotifier
from aniworldd.services.poster_service import PosterService
from aniworldd.services.queue_claims import QueueClaims
from aniworldd.services.refresh_service import RefreshService
from aniworldd.services.scan_service import ScanService
from aniworldd.systemd import Notifier, setup_logging

if TYPE_CHECKING:
    from aniworldd.cluster.node import ClusterNode

log = logging.getLogger("aniworldd")

#: sys.setswitchinterval() for the daemon (seconds); see run().
LOOP_SWITCH_INTERVAL = 0.001

Closer = Callable[[], Awaitable[None]]


def _make_dirs(data_dir: Path, roots: list[str]) -> None:
    """The data dir, and the default library inside it; a configured root is never created (an unmounted
    share would fill the system disk): downloads into it wait until it is there."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for root in roots:
        if Path(root) == data_dir / "library":
            Path(root).mkdir(exist_ok=True)
        elif (reason := missing_root_reason(root)) is not None:
            log.warning("%s; downloads into it wait until it is there", reason)


class Daemon:
    def __init__(
        self,
        config: dict,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        log_tail: logtail.LogTail | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        #: The last log lines for GET /api/system/logs; `run()` attaches it before the first log line.
        self.log_tail = log_tail
        self.started_at = time.monotonic()
        self._closers: list[Closer] = []
        self._tasks: set[asyncio.Task] = set()
        self.ctx: AppContext | None = None
        self.runner: web.AppRunner | None = None
        self.port: int | None = None
        #: Several processes (cluster.redis_url): this one's role, Redis link and elections; None = alone.
        self.cluster: ClusterNode | None = None

    def _on_stop(self, closer: Closer) -> None:
        self._closers.append(closer)

    def _background(self, coro: Awaitable[None], name: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)  # short jobs (a config save) do not pile up
        return task

    async def start(self) -> None:
        cfg = self.config
        data_dir = Path(cfg["data_dir"])
        await asyncio.to_thread(_make_dirs, data_dir, cfg["library"]["roots"])

        store = Store(cfg["database"]["url"], data_dir)
        self._on_stop(lambda: asyncio.to_thread(store.close))
        bus = EventBus()
        ctx = AppContext(
            config=cfg, store=store, bus=bus, config_path=self.config_path, started_at=self.started_at
        )
        ctx.series = AnimeSeriesService(store)
        ctx.config_service = ConfigService(self.config_path, data_dir, bus, running=cfg)
        ctx.extras["metrics"] = Metrics(bus)  # a bus listener: counts downloads and scans for /metrics
        if self.log_tail is None:  # a Daemon built without run() (tests): its own, gone again on stop
            tail = self.log_tail = logtail.attach()

            async def detach() -> None:
                logging.getLogger().removeHandler(tail)

            self._on_stop(detach)
        ctx.extras["logtail"] = self.log_tail  # the last 200 log lines for GET /api/system/logs
        self.ctx = ctx

        self.cluster = await self._start_cluster(ctx)
        await self._start_library(ctx)
        providers = self._build_provider(ctx)
        await self._start_auth(ctx)
        await self._start_queue(ctx, providers)
        await self._start_mqtt(ctx, data_dir)
        await self._start_upkeep(ctx, providers)
        await self._start_web(ctx)
        if self.cluster is not None:
            await self._stand_for_election(ctx, self.cluster, data_dir)

        if self.notifier.watchdog_interval:
            self._background(self._watchdog_loop(self.notifier.watchdog_interval), "watchdog")
        status = f"listening on {cfg['server']['host']}:{self.port}"
        log.info("aniworldd %s %s (data dir %s)", __version__, status, data_dir)
        self.notifier.ready(status)

    async def _start_cluster(self, ctx: AppContext) -> ClusterNode | None:
        """With cluster.redis_url: the Redis link and the event relay, before any service publishes."""
        cluster = ctx.config["cluster"]
        if not cluster["redis_url"]:
            return None
        from aniworldd.cluster.node import ClusterNode
        from aniworldd.cluster.redis_link import RedisLink

        node = ClusterNode(
            cluster["role"], RedisLink(cluster["redis_url"], cluster["prefix"], cluster["node"]), ctx.bus
        )
        await node.start()
        self._on_stop(node.close)  # last: every service has published its final events by then
        ctx.extras["cluster"] = node
        log.info("cluster role %s as node %s (redis %s)", node.role, node.node, node.link.safe_url)
        return node

    async def _start_library(self, ctx: AppContext) -> None:
        """Scanner, watcher and library views; the first scan runs in the background. In a cluster the
        watcher and the scan at start belong to the elected `jobs` process (_stand_for_election)."""
        ctx.scan = ScanService(ctx.config, ctx.store, ctx.bus)
        ctx.library = LibraryService(ctx.config, ctx.store, ctx.scan)
        self._on_stop(ctx.scan.close)
        if self.cluster is not None:
            return
        await ctx.scan.start()  # starts the watcher when library.watch
        if ctx.config["library"]["scan_on_start"]:
            ctx.scan.request_scan(requested=False)  # the daemon's own scan: no "Scan finished" notice

    async def _stand_for_election(self, ctx: AppContext, cluster: ClusterNode, data_dir: Path) -> None:
        """Workers stand for the scheduled jobs, API processes for the MQTT bridge (cluster.node)."""
        if cluster.runs_downloads:
            first = {"scan": ctx.config["library"]["scan_on_start"]}

            async def jobs_elected() -> None:
                await ctx.scan.start()
                if first.pop("scan", False):
                    ctx.scan.request_scan(requested=False)
                await ctx.extras["refresh"].start()

            async def jobs_deposed() -> None:
                await ctx.scan.stop_watching()
                await ctx.extras["refresh"].close()

            await cluster.stand("jobs", jobs_elected, jobs_deposed)
        if cluster.runs_api and ctx.config["mqtt"]["host"]:

            async def mqtt_elected() -> None:
                await self._open_mqtt(ctx, data_dir)

            async def mqtt_deposed() -> None:
                bridge, ctx.mqtt = ctx.mqtt, None
                if bridge is not None:
                    await bridge.close()

            await cluster.stand("mqtt", mqtt_elected, mqtt_deposed)

    def _build_provider(self, ctx: AppContext) -> ProviderSet:
        """aniworld.to + s.to on one shared HTTP client (hosters and cover downloads reuse it)."""
        cfg = ctx.config
        providers = build_providers(cfg["provider"], data_dir=cfg["data_dir"])
        ctx.extras["providers"] = providers
        self._on_stop(providers.close)
        ctx.anime = AnimeService(
            ctx.store,
            providers,
            cfg["library"]["roots"],
            ctx.bus,
            languages=cfg["downloads"]["language"],
            missing_by_language=cfg["library"]["missing_by_language"],
        )
        return providers

    async def _start_auth(self, ctx: AppContext) -> None:
        """Master password, JWT sessions, API keys; ANIWORLDD_MASTER_PASSWORD sets it on first start."""
        # In a cluster, login limits and revocations are shared through Redis (cluster.shared_auth).
        link = self.cluster.link if self.cluster is not None else None
        ctx.auth = AuthService.from_config(ctx.store, ctx.config, link=link)
        ctx.extras["poster_tokens"] = PosterTokens(ctx.config["data_dir"], ctx.auth)  # `<img>` credentials
        await ctx.auth.bootstrap(os.environ.get("ANIWORLDD_MASTER_PASSWORD"))
        await ctx.auth.start()  # the revocation listener (with a link only)
        self._on_stop(ctx.auth.close)

    async def _start_queue(self, ctx: AppContext, providers: ProviderSet) -> None:
        """The persistent queue; yt-dlp children download what the SourceFinder resolves."""
        cfg = ctx.config
        finder = SourceFinder(
            providers.for_site,
            providers.client,
            cfg["downloads"]["hosters"],
            cfg["downloads"]["language"],
            providers.client.user_agent,
        )
        claims = None
        if self.cluster is not None:
            claims = QueueClaims(ctx.store, self.cluster.node, cfg["cluster"]["lease"])
        ctx.queue = DownloadService(
            cfg,
            ctx.store,
            ctx.bus,
            finder,
            claims=claims,
            dispatch=self.cluster is None or self.cluster.runs_downloads,
        )
        self._on_stop(ctx.queue.close)  # active downloads go back to pending, partial files kept
        ctx.bus.add_listener(lambda ev: self._on_config_saved(ctx, ev))
        # Started/stopped and paused survive restarts; downloads.autostart decides only the first start.
        await ctx.queue.restore_control(cfg["downloads"]["autostart"])

    def _on_config_saved(self, ctx: AppContext, event: Event) -> None:
        """A config saved through the API or UI: the download settings apply at once, the rest on restart."""
        if event.type != CONFIG_CHANGED:
            return

        async def apply() -> None:
            try:
                effective = (await asyncio.to_thread(ctx.config_service.get))["effective"]
            except Exception as exc:  # the file was changed by hand in between and is broken now
                log.warning("saved config not applied: %s", exc)
                return
            ctx.queue.apply_settings(effective["downloads"])

        self._background(apply(), "apply-config")

    async def _start_mqtt(self, ctx: AppContext, data_dir: Path) -> None:
        """Only when mqtt.host is set; never waits for the broker. A cluster: the elected API process's."""
        if not ctx.config["mqtt"]["host"] or self.cluster is not None:
            return
        await self._open_mqtt(ctx, data_dir)

    async def _open_mqtt(self, ctx: AppContext, data_dir: Path) -> None:
        from aniworldd.mqtt import MqttBridge  # aiomqtt is only loaded by those who use it

        bridge = ctx.mqtt = MqttBridge(
            ctx.config, ctx.bus, data_dir, queue=ctx.queue, scan=ctx.scan, services=ctx
        )
        await bridge.start()

        async def close() -> None:  # publishes `offline` (retained) before disconnecting
            if ctx.mqtt is bridge:
                ctx.mqtt = None
                await bridge.close()

        self._on_stop(close)

    async def _start_upkeep(self, ctx: AppContext, providers: ProviderSet) -> None:
        """Scheduled refresh with auto-queue and language upgrades, NFO/poster, webhooks, calendar."""
        cfg = ctx.config
        ctx.extras["calendar"] = CalendarService(ctx.store)
        notifier = WebhookNotifier(ctx.bus, cfg["notifications"]["webhooks"])
        ctx.extras["notifier"] = notifier
        await notifier.start()
        self._on_stop(notifier.close)
        apprise_notifier = AppriseNotifier(ctx.bus, cfg["notifications"]["apprise"])
        ctx.extras["apprise"] = apprise_notifier
        await apprise_notifier.start()
        self._on_stop(apprise_notifier.close)
        metadata = MetadataService(ctx.store, cfg["library"]["write_nfo"], provider_fetcher(providers.client))
        ctx.extras["metadata"] = metadata
        await metadata.start(ctx.bus)
        self._on_stop(metadata.close)
        ctx.extras["posters"] = PosterService(ctx.store, cfg["data_dir"])  # thumbnails for the library grid
        refresh = RefreshService(
            ctx.store, ctx.anime, ctx.queue, cfg["provider"], cfg["downloads"], bus=ctx.bus
        )
        ctx.extras["refresh"] = refresh
        if self.cluster is None:  # in a cluster: in the elected `jobs` process
            await refresh.start()
        self._on_stop(refresh.close)

    async def _start_web(self, ctx: AppContext) -> None:
        cfg = ctx.config
        # keepalive_timeout is also aiohttp's only limit on a new connection that never completes its
        # request headers (slowloris): server.header_timeout closes both idle and slow-header connections.
        self.runner = web.AppRunner(
            create_app(ctx),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=2.0,
            keepalive_timeout=cfg["server"]["header_timeout"],
        )
        await self.runner.setup()
        assert self.runner.server is not None
        cap_connections(self.runner.server, cfg["server"]["max_connections"])
        site = web.TCPSite(self.runner, cfg["server"]["host"], cfg["server"]["port"], reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # aiohttp has no public accessor
        self.port = sockets[0].getsockname()[1] if sockets else cfg["server"]["port"]
        self._on_stop(self.runner.cleanup)

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        self.notifier.stopping()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for closer in reversed(self._closers):
            try:
                await asyncio.wait_for(closer(), timeout=5)
            except Exception:
                log.exception("error while stopping")
        self._closers.clear()
        self.notifier.close()


async def _serve(daemon: Daemon) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await daemon.start()
    await stop.wait()
    log.info("stopping")
    await daemon.stop()


def run(arg: str | None, role: str | None = None) -> int:
    """`aniworldd run`: load config, serve until SIGTERM/SIGINT, exit 0 on a clean stop. `role` (the
    --role option) overrides cluster.role."""
    path = config_path(arg)
    config = load_or_report(path)
    if config is None:
        return 1
    if role is not None:
        config["cluster"]["role"] = role
        try:
            check_cluster(config)
        except ConfigError as exc:
            print(f"aniworldd: --role {role}:", file=sys.stderr)
            for issue in exc.issues:
                print(f"  {issue.path}: {issue.message}", file=sys.stderr)
            return 1
    setup_logging(config["logging"]["level"])
    tail = logtail.attach()  # from the first line on (the system page's live log)
    old, new = raise_nofile_limit()
    if new != old:
        log.info("open files limit raised from %d to %d", old, new)
    # CPU-heavy work (YAML, HTML parsing) runs in worker threads; with the default 5 ms GIL switch interval
    # every hand-back to the event loop can wait 5 ms, and a request needs several. 1 ms keeps /health fast
    # while a config is saved or a big provider page is parsed (bench/loop_stall.py).
    sys.setswitchinterval(LOOP_SWITCH_INTERVAL)
    daemon = Daemon(config, Path(path).resolve() if path else None, log_tail=tail)
    try:
        asyncio.run(_serve(daemon))
    except DatabaseDamaged as exc:  # a restart cannot fix it: a distinct status systemd does not restart on
        log.error("%s", exc)
        return EXIT_DAMAGED
    except DatabaseError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
