"""Operations endpoints: `GET /api/system/status` (for humans and dashboards) and `GET /metrics` (Prometheus).

/api/system/status sits under /api, so the API's auth middleware protects it like every other route.
/metrics is outside /api on purpose, like node_exporter: scrapers rarely carry tokens, it holds only counts,
and the reverse-proxy examples in contrib/ show how to keep it to the LAN. Nothing here touches the
filesystem on the event loop: disk usage and database size run in a thread (NAS disks may be asleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import shutil
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from aniworldd import __version__
from aniworldd.api import health
from aniworldd.api.common import IDENTITY, QUERY
from aniworldd.api.context import AppContext
from aniworldd.events import iso_timestamp, to_json
from aniworldd.logtail import CAPACITY
from aniworldd.metrics import CONTENT_TYPE, Metrics
from aniworldd.services.auth_service import API_KEY, Forbidden, scope_allows
from aniworldd.services.errors import Unavailable

log = logging.getLogger(__name__)

QUEUE_STATES = ("pending", "active", "completed", "failed")


def _ctx_keys() -> list[web.AppKey]:
    """The AppKey(s) create_app may store the context under (api.common's, health's), found at call time."""
    keys = []
    try:
        from aniworldd.api import common

        keys.append(common.CTX)
    except (ImportError, AttributeError):  # pragma: no cover - the API module set is still growing
        pass
    keys.append(health.CTX)
    return keys


def ctx_of(app: web.Application) -> AppContext | None:
    for key in _ctx_keys():
        if key in app:
            return app[key]
    return None


def _request_ctx(request: web.Request) -> AppContext:
    ctx = ctx_of(request.app)
    if ctx is None:
        raise web.HTTPServiceUnavailable(text="daemon context missing")
    return ctx


def _with_usage(entry: dict[str, Any], path: Path) -> dict[str, Any]:
    """`entry` with the free/total bytes of the disk holding `path`; an unreadable one gives `error`."""
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        entry.update(free_bytes=None, total_bytes=None, free_gb=None, error=exc.strerror or str(exc))
    else:
        entry.update(free_bytes=usage.free, total_bytes=usage.total, free_gb=round(usage.free / 1e9, 2))
    return entry


def disk_usage(roots: list[str]) -> list[dict]:
    """Free/total bytes per library root; a missing or unreadable root is reported, not raised."""
    result = []
    for root in roots:
        entry: dict[str, Any] = {"root": root, "exists": Path(root).is_dir()}
        result.append(_with_usage(entry, Path(root)))
    return result


def _existing_ancestor(path: Path) -> Path:
    """The path, or its nearest existing parent: a temp dir made at the first download has its disk."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def storage_usage(config: dict) -> list[dict]:
    """Free/total bytes where the daemon writes besides the library: its data dir and the download temp dir.

    A folder not created yet reports the disk it will be created on (`exists` false); errors are reported.
    """
    dirs = [("data", config.get("data_dir")), ("temp", (config.get("downloads") or {}).get("temp_dir"))]
    result = []
    for role, value in dirs:
        if not value:
            continue
        path = Path(value)
        entry: dict[str, Any] = {"role": role, "path": str(value), "exists": path.is_dir()}
        result.append(_with_usage(entry, _existing_ancestor(path)))
    return result


def _queue_counts_from_db(ctx: AppContext) -> dict[str, int]:
    """Counts straight from the table (run on the DB thread), for when the download service is not running."""
    rows = ctx.store.db.select(
        "SELECT status, COUNT(*) FROM download_queue_item WHERE deleted_at IS NULL GROUP BY status"
    )
    by_status = {str(status): int(n) for status, n in rows}
    return {
        "pending": by_status.get("pending", 0),
        "active": by_status.get("downloading", 0),
        "completed": by_status.get("completed", 0),
        "failed": by_status.get("failed", 0),
    }


def _database_size(ctx: AppContext) -> int | None:
    try:
        return ctx.store.size_bytes()
    except Exception as exc:  # a vanished WAL file or a Postgres hiccup: report no size, not a 500
        log.debug("database size unavailable: %s", exc)
        return None


async def queue_counts(ctx: AppContext) -> dict[str, Any]:
    if ctx.queue is not None:
        status = await ctx.queue.status()
        stats = status.get("statistics") or {}
        lists = {
            "pending": "pending_queue",
            "active": "active_downloads",
            "completed": "completed_downloads",
            "failed": "failed_downloads",
        }
        counts: dict[str, Any] = {s: int(stats.get(s, len(status.get(lists[s]) or []))) for s in QUEUE_STATES}
        counts.update(
            is_running=bool(status.get("is_running")),
            is_paused=bool(status.get("is_paused")),
            speed_mbps=stats.get("speed_mbps"),
            source="queue",
        )
        return counts
    counts = await ctx.store.run(_queue_counts_from_db, ctx)
    return {**counts, "is_running": False, "is_paused": False, "speed_mbps": None, "source": "database"}


def mqtt_state(ctx: AppContext) -> dict[str, Any]:
    enabled = bool(ctx.config.get("mqtt", {}).get("host"))
    connected = None
    if ctx.mqtt is not None:
        connected = bool(getattr(ctx.mqtt, "connected", False))
    elif enabled:
        connected = False
    return {
        "enabled": enabled,
        "connected": connected,
        "host": ctx.config["mqtt"]["host"],
        "port": ctx.config["mqtt"]["port"],
    }


def hoster_health(ctx: AppContext) -> dict[str, dict]:
    """HosterHealth.snapshot() of the download queue ({} when the daemon runs without one)."""
    health = getattr(ctx.queue, "hoster_health", None)
    return health.snapshot() if health is not None else {}


async def _scan_state(ctx: AppContext) -> dict | None:
    if ctx.scan is None:
        return None
    state = ctx.scan.state()
    if asyncio.iscoroutine(state):
        state = await state
    return state


async def system_status(request: web.Request) -> web.Response:
    ctx = _request_ctx(request)
    uptime = ctx.uptime_s
    started = datetime.now(UTC) - timedelta(seconds=uptime)
    disks, storage, db_size = await asyncio.gather(
        asyncio.to_thread(disk_usage, list(ctx.config["library"]["roots"])),
        asyncio.to_thread(storage_usage, ctx.config),
        asyncio.to_thread(_database_size, ctx),
    )
    body: dict[str, Any] = {
        "version": __version__,
        "python": platform.python_version(),
        "uptime_s": uptime,
        "started_at": iso_timestamp(started),
        "data_dir": ctx.config["data_dir"],
        "database": {"provider": ctx.store.provider, "url": ctx.store.safe_url, "size_bytes": db_size},
        "library": disks,
        "storage": storage,
        "queue": None,
        "scan": None,
        "mqtt": mqtt_state(ctx),
        "cluster": None,
    }
    cluster = ctx.extras.get("cluster")
    if cluster is not None:
        body["cluster"] = await cluster.state()
    # A component that fails to answer must not take the whole status page down: report it instead.
    try:
        body["queue"] = await queue_counts(ctx)
    except Exception as exc:
        log.warning("system status: queue counts unavailable: %s", exc)
        body["queue"] = {"error": str(exc)}
    health = getattr(ctx.queue, "provider_health", None)
    body["provider_health"] = health.snapshot() if health is not None else {}
    try:
        body["hosters"] = hoster_health(ctx)
    except Exception as exc:
        log.warning("system status: hoster health unavailable: %s", exc)
        body["hosters"] = {"error": str(exc)}
    try:
        body["scan"] = await _scan_state(ctx)
    except Exception as exc:
        log.warning("system status: scan state unavailable: %s", exc)
        body["scan"] = {"error": str(exc)}
    return web.json_response(body, dumps=partial(to_json, lenient=True))


def _metrics_of(ctx: AppContext) -> Metrics:
    metrics = ctx.extras.get("metrics")
    if metrics is None:  # an app built without the daemon (tests, tools): count from now on
        metrics = ctx.extras["metrics"] = Metrics(ctx.bus)
    return metrics


async def metrics(request: web.Request) -> web.Response:
    ctx = _request_ctx(request)
    m = _metrics_of(ctx)
    if not m.queue_seen and ctx.queue is not None:
        with contextlib.suppress(Exception):
            m.seed_queue(await ctx.queue.status())
    mqtt = mqtt_state(ctx)["connected"]
    hosters: dict = {}
    with contextlib.suppress(Exception):  # a scrape must not fail over one part
        hosters = hoster_health(ctx)
    node = ctx.extras.get("cluster")
    cluster = None
    if node is not None:
        cluster = {"role": node.role, "node": node.node, "leader": node.leading()}
    text = m.render(
        uptime_s=time.monotonic() - ctx.started_at, mqtt_connected=mqtt, hosters=hosters, cluster=cluster
    )
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


_NUM_OR_NULL = {"type": ["number", "null"]}
STATUS_SCHEMA: dict = {
    "type": "object",
    "required": ["version", "uptime_s", "started_at", "database", "library", "queue", "mqtt"],
    "properties": {
        "version": {"type": "string"},
        "python": {"type": "string"},
        "uptime_s": {"type": "number"},
        "started_at": {"type": "string", "format": "date-time"},
        "data_dir": {"type": "string"},
        "database": {
            "type": "object",
            "properties": {
                "provider": {"type": "string", "enum": ["sqlite", "postgres"]},
                "url": {"type": "string", "description": "without the password"},
                "size_bytes": {"type": ["integer", "null"]},
            },
        },
        "library": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "root": {"type": "string"},
                    "exists": {"type": "boolean"},
                    "free_bytes": {"type": ["integer", "null"]},
                    "total_bytes": {"type": ["integer", "null"]},
                    "free_gb": _NUM_OR_NULL,
                    "error": {"type": "string"},
                },
            },
        },
        "storage": {
            "type": "array",
            "description": "free space of the data dir and the download temp dir (a folder not created "
            "yet: the disk it will be on, exists false)",
            "items": {
                "type": "object",
                "properties": {
                    "role": {"type": "string", "enum": ["data", "temp"]},
                    "path": {"type": "string"},
                    "exists": {"type": "boolean"},
                    "free_bytes": {"type": ["integer", "null"]},
                    "total_bytes": {"type": ["integer", "null"]},
                    "free_gb": _NUM_OR_NULL,
                    "error": {"type": "string"},
                },
            },
        },
        "queue": {
            "type": ["object", "null"],
            "description": "counts from the download service, or from the database when it is not running "
            "(source); {error} when it could not answer",
            "properties": {
                **{s: {"type": "integer"} for s in QUEUE_STATES},
                "is_running": {"type": "boolean"},
                "is_paused": {"type": "boolean"},
                "speed_mbps": _NUM_OR_NULL,
                "source": {"type": "string", "enum": ["queue", "database"]},
                "error": {"type": "string"},
            },
        },
        "scan": {"type": ["object", "null"], "description": "ScanService.state() when the scanner runs"},
        "provider_health": {
            "type": "object",
            "description": "provider hosts that block us now (captcha, browser check): host -> {status, "
            "challenge, message, hint, since, retry_at, strikes}; empty when every site lets us in",
            "additionalProperties": {"type": "object"},
        },
        "hosters": {
            "type": "object",
            "description": "hoster health per hoster (configured ones first): outcomes of the queue's "
            "tries, the 24 h success rate and a running cool-down; {error} when it could not answer",
            "additionalProperties": {
                "type": ["object", "string"],
                "properties": {
                    "attempts": {"type": "integer"},
                    "successes": {"type": "integer"},
                    "failures_in_a_row": {"type": "integer"},
                    "last_error": {"type": ["string", "null"]},
                    "last_error_at": {"type": ["string", "null"], "format": "date-time"},
                    "last_success_at": {"type": ["string", "null"], "format": "date-time"},
                    "success_rate_24h": _NUM_OR_NULL,
                    "attempts_24h": {"type": "integer"},
                    "cooling_down_until": {"type": ["string", "null"], "format": "date-time"},
                    "state": {"type": "string", "enum": ["ok", "failing", "cooling_down", "unknown"]},
                },
            },
        },
        "mqtt": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "connected": {"type": ["boolean", "null"]},
                "host": {"type": ["string", "null"]},
                "port": {"type": "integer"},
            },
        },
        "cluster": {
            "type": ["object", "null"],
            "description": "null for one process; with cluster.redis_url: this process's role and links",
            "properties": {
                "role": {"type": "string", "enum": ["all", "api", "worker"]},
                "node": {"type": "string"},
                "leader": {"type": "array", "items": {"type": "string"}},
                "redis": {"type": "object"},
            },
        },
    },
}


# -- doctor (issue 14): the handler is thin, aniworldd.services.doctor does the work ----------------

DOCTOR_SCHEMA: dict = {
    "type": "object",
    "required": ["ok", "steps"],
    "properties": {
        "ok": {"type": "boolean", "description": "every step passed"},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "target", "ok", "detail", "hint"],
                "properties": {
                    "name": {
                        "type": "string",
                        "enum": [
                            "config",
                            "dns",
                            "tcp/tls",
                            "challenge",
                            "search",
                            "series",
                            "episode",
                            "hoster",
                        ],
                    },
                    "target": {"type": "string", "description": "host, address, page or hoster checked"},
                    "ok": {"type": "boolean"},
                    "detail": {"type": "string"},
                    "hint": {"type": "string", "description": "what to change; empty when the step passed"},
                },
            },
        },
    },
}
_DOCTOR_LOCK = "doctor_lock"


async def system_doctor(request: web.Request) -> web.Response:
    """One run at a time per daemon: a second click waits for the running check instead of doubling it."""
    from aniworldd.services.doctor import diagnose

    ctx = _request_ctx(request)
    lock = ctx.extras.setdefault(_DOCTOR_LOCK, asyncio.Lock())
    async with lock:
        source = str(ctx.config_path) if ctx.config_path else "running configuration"
        report = await diagnose(ctx.config, source)
    return web.json_response(report.to_dict())


# -- the last log lines (issue 17): the ring buffer aniworldd.logtail keeps, read by the system page ------

LOG_LINE_SCHEMA: dict = {
    "type": "object",
    "required": ["seq", "at", "level", "logger", "message"],
    "properties": {
        "seq": {"type": "integer", "description": "increases by one per line; ask for ?after=<seq>"},
        "at": {"type": "string", "format": "date-time"},
        "level": {"type": "string", "description": "DEBUG, INFO, WARNING, ERROR or CRITICAL"},
        "logger": {"type": "string"},
        "message": {"type": "string", "description": "credentials masked"},
    },
}
LOGS_SCHEMA: dict = {
    "type": "object",
    "required": ["lines", "last", "capacity", "dropped"],
    "properties": {
        "lines": {"type": "array", "items": LOG_LINE_SCHEMA, "description": "oldest first"},
        "last": {"type": "integer", "description": "newest sequence number (0: nothing logged yet)"},
        "capacity": {"type": "integer", "description": "lines the daemon keeps"},
        "dropped": {
            "type": "integer",
            "description": "lines after `after` that fell out of the buffer before they were asked for",
        },
    },
}


def _logs_query() -> Any:
    import voluptuous as vol

    from aniworldd.api.schemas import query_int

    return vol.Schema(
        {
            vol.Optional(
                "after",
                default=0,
                description="only lines with a greater seq (the `last` of the previous answer)",
            ): query_int(0, 9_999_999_999),
            vol.Optional(
                "limit", description=f"at most this many (the newest); all {CAPACITY} when omitted"
            ): (query_int(0, CAPACITY)),
        },
        extra=vol.ALLOW_EXTRA,
    )


def _require_admin(request: web.Request) -> None:
    """Log lines can tell a lot about the house (paths, hosts, errors): API keys need the `admin` scope,
    like the configuration. Login tokens may (the owner)."""
    identity = request.get(IDENTITY)
    if identity is not None and identity.kind == API_KEY and not scope_allows(identity.scope, "admin"):
        raise Forbidden(
            f"this API key has scope {identity.scope!r}; GET /api/system/logs needs 'admin'",
            {"scope": identity.scope, "needed": "admin"},
            code="insufficient_scope",
        )


def log_tail_of(ctx: AppContext) -> Any:
    """The LogTail the daemon (the composition root) keeps; an app built without one keeps no log lines."""
    tail = ctx.extras.get("logtail")
    if tail is None:
        raise Unavailable("this process keeps no log lines")
    return tail


async def system_logs(request: web.Request) -> web.Response:
    _require_admin(request)
    ctx = _request_ctx(request)
    q = request.get(QUERY) or {}
    return web.json_response(log_tail_of(ctx).lines(q.get("after", 0), q.get("limit")))


def _route_table() -> list:
    """/api/system/status in the API's route table (auth, OpenAPI); empty if that table is not there."""
    try:
        from aniworldd.api.schemas import Route
    except ImportError:  # pragma: no cover - an app without the route table registers it in add_routes
        return []
    return [
        Route(
            "GET",
            "/api/system/status",
            system_status,
            "Version, uptime, free disk per library root, database size, queue counts, MQTT state, "
            "hoster health",
            "system",
            responses={200: ("daemon status", STATUS_SCHEMA)},
        ),
        Route(
            "GET",
            "/api/system/doctor",
            system_doctor,
            "Check each link to the sites and hosters: config, DNS, TCP/TLS, challenge, search, series, "
            "episode, hosters",
            "system",
            description="Runs `aniworldd doctor` against the running configuration (a few seconds up to "
            "about a minute; nothing is downloaded or stored). 200 whether or not every step passed: `ok` "
            "says. A failing step carries a fix hint; a step that could not run because an earlier one "
            "failed says `skipped: <step> failed`. Proxy passwords never appear.",
            responses={200: ("one step per link, in order", DOCTOR_SCHEMA)},
        ),
        Route(
            "GET",
            "/api/system/logs",
            system_logs,
            "The last log lines of the daemon (credentials masked)",
            "system",
            query=_logs_query(),
            description="The daemon keeps its last 200 log lines in memory. `after` returns only newer "
            "lines, so a page can poll for what is new; `last` is the value to send next time "
            "(smaller than a remembered one after a restart: start again from 0). API keys need the "
            "`admin` scope.",
            responses={
                200: ("log lines, oldest first", LOGS_SCHEMA),
                403: ("an API key without the admin scope", None),
            },
        ),
    ]


#: Picked up by create_app: registered through the API's wrapper, so auth and /api/openapi.json cover it.
ROUTES = _route_table()


def add_routes(app: web.Application) -> None:
    """Called by create_app: /metrics (outside the JSON API and its auth). When the app already carries its
    AppContext, counting starts right away."""
    ctx = ctx_of(app)
    if ctx is not None:
        _metrics_of(ctx)
    if not ROUTES:
        app.router.add_get("/api/system/status", system_status)
    app.router.add_get("/metrics", metrics)
