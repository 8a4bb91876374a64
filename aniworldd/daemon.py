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
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from aniworldd import __version__
from aniworldd.api.app import create_app
from aniworldd.api.context import AppContext
from aniworldd.config import ConfigError, load_config
from aniworldd.db import DatabaseError, Store
from aniworldd.db.services import AnimeSeriesService
from aniworldd.events import EventBus
from aniworldd.metrics import Metrics
from aniworldd.services.config_service import ConfigService
from aniworldd.systemd import Notifier, setup_logging

log = logging.getLogger("aniworldd")

Closer = Callable[[], Awaitable[None]]


class Daemon:
    def __init__(self, config: dict, config_path: Path | None = None, notifier: Notifier | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.started_at = time.monotonic()
        self._closers: list[Closer] = []
        self._tasks: list[asyncio.Task] = []
        self.ctx: AppContext | None = None
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    def _on_stop(self, closer: Closer) -> None:
        self._closers.append(closer)

    def _background(self, coro: Awaitable[None], name: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.append(task)
        return task

    async def start(self) -> None:
        cfg = self.config
        data_dir = Path(cfg["data_dir"])
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for root in cfg["library"]["roots"]:
            Path(root).mkdir(parents=True, exist_ok=True)

        store = Store(cfg["database"]["url"], data_dir)

        async def close_store() -> None:
            await asyncio.to_thread(store.close)

        self._on_stop(close_store)
        bus = EventBus()
        ctx = AppContext(config=cfg, store=store, bus=bus, config_path=self.config_path,
                         started_at=self.started_at)
        ctx.series = AnimeSeriesService(store)
        ctx.config_service = ConfigService(self.config_path, data_dir, bus)
        self.ctx = ctx

        # --- components (each block builds one service and registers how to stop it) ---

        # --- library scanner (issue 3): scan service + watcher + library views; first scan in background ---
        from aniworldd.services.library_service import LibraryService
        from aniworldd.services.scan_service import ScanService

        ctx.scan = ScanService(cfg, store, bus)
        ctx.library = LibraryService(cfg, store, ctx.scan)
        await ctx.scan.start()  # starts the watcher when library.watch
        self._on_stop(ctx.scan.close)
        if cfg["library"]["scan_on_start"]:
            ctx.scan.request_scan()

        # --- provider (issue 4): aniworld.to + s.to on one shared HTTP client, AnimeService ---
        from aniworldd.providers.registry import build_providers
        from aniworldd.services.anime_service import AnimeService

        providers = build_providers(cfg["provider"])
        ctx.extras["providers"] = providers  # hoster resolvers and cover downloads reuse providers.client
        self._on_stop(providers.close)
        ctx.anime = AnimeService(
            store, providers, cfg["library"]["roots"], bus,
            languages=cfg["downloads"]["language"], missing_by_language=cfg["library"]["missing_by_language"],
        )

        # --- auth (issue 6): master password, JWT sessions, API keys; env sets the password on first start ---
        from aniworldd.services.auth_service import AuthService

        ctx.auth = AuthService.from_config(store, cfg)
        await ctx.auth.bootstrap(os.environ.get("ANIWORLDD_MASTER_PASSWORD"))
        self._on_stop(ctx.auth.close)

        # --- download queue (issue 5): persistent queue, yt-dlp children; SourceFinder picks the sources ---
        from aniworldd.providers.sources import SourceFinder
        from aniworldd.services.download_service import DownloadService

        providers = ctx.extras["providers"]  # built by the provider block above
        finder = SourceFinder(providers.for_site, providers.client.session, cfg["downloads"]["hosters"],
                              cfg["downloads"]["language"], cfg["provider"]["user_agent"])
        ctx.queue = DownloadService(cfg, store, bus, finder)
        self._on_stop(ctx.queue.close)  # active downloads go back to pending, partial files kept
        if cfg["downloads"]["autostart"]:
            await ctx.queue.start()

        # --- metrics (packaging/ops): a bus listener counting downloads and scans for GET /metrics ---
        ctx.extras["metrics"] = Metrics(bus)

        # --- mqtt bridge (issue 7): only when mqtt.host is set; never waits for the broker ---
        if cfg["mqtt"]["host"]:
            from aniworldd.mqtt import MqttBridge

            ctx.mqtt = MqttBridge(cfg, bus, data_dir, services=ctx)  # reads ctx.queue/ctx.scan lazily
            await ctx.mqtt.start()
            self._on_stop(ctx.mqtt.close)  # publishes `offline` (retained) before disconnecting

        # --- library upkeep (issue 10): scheduled refresh, auto-queue, upgrades, NFO, webhooks, calendar ---
        # (refresh reads ctx.anime / ctx.queue at use time; covers come through the shared provider client)
        from aniworldd.services.calendar_service import CalendarService
        from aniworldd.services.metadata_service import MetadataService, provider_fetcher
        from aniworldd.services.notifications import WebhookNotifier
        from aniworldd.services.refresh_service import RefreshService

        upkeep_providers = ctx.extras.get("providers")
        ctx.extras["calendar"] = CalendarService(store)
        ctx.extras["notifier"] = WebhookNotifier(bus, cfg["notifications"]["webhooks"])
        await ctx.extras["notifier"].start()
        self._on_stop(ctx.extras["notifier"].close)
        cover_fetch = provider_fetcher(upkeep_providers.client) if upkeep_providers else None
        ctx.extras["metadata"] = MetadataService(store, cfg["library"]["write_nfo"], cover_fetch)
        await ctx.extras["metadata"].start(bus)
        self._on_stop(ctx.extras["metadata"].close)
        ctx.extras["refresh"] = RefreshService(
            store, None, None, cfg["provider"], cfg["downloads"], bus=bus, services=ctx
        )
        await ctx.extras["refresh"].start()
        self._on_stop(ctx.extras["refresh"].close)

        # --- web server ---
        app = create_app(ctx)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, cfg["server"]["host"], cfg["server"]["port"], reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # noqa: SLF001 - aiohttp has no public accessor
        self.port = sockets[0].getsockname()[1] if sockets else cfg["server"]["port"]
        self._on_stop(self.runner.cleanup)

        if self.notifier.watchdog_interval:
            self._background(self._watchdog_loop(self.notifier.watchdog_interval), "watchdog")
        status = f"listening on {cfg['server']['host']}:{self.port}"
        log.info("aniworldd %s %s (data dir %s)", __version__, status, data_dir)
        self.notifier.ready(status)

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        self.notifier.stopping()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
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


def run(config_path: str | None) -> int:
    """`aniworldd run`: load config, serve until SIGTERM/SIGINT, exit 0 on a clean stop."""
    path = config_path or os.environ.get("ANIWORLDD_CONFIG")
    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=__import__("sys").stderr)
        return 1
    setup_logging(config["logging"]["level"])
    daemon = Daemon(config, Path(path).resolve() if path else None)
    try:
        asyncio.run(_serve(daemon))
    except DatabaseError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
