"""Request schemas (voluptuous), response shapes (JSON Schema) and THE route table.

Everything the API exposes is declared once here: app.py registers handlers from ROUTES (validating bodies,
queries and path parameters with these schemas) and openapi.py turns the very same entries into
/api/openapi.json, so the document cannot drift from what the server does.

Validators used in request schemas must be convertible to JSON Schema (openapi.py knows the voluptuous
building blocks; custom ones carry a `json_schema` attribute).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import voluptuous as vol

from aniworldd.config import LANGUAGE_CODES

KEY_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KEY_PATTERN = KEY_RE.pattern
SITES = ("aniworld", "sto")
PRIORITIES = ("high", "normal", "low")


def json_schema(schema: dict) -> Callable[[Callable], Callable]:
    """Attach the JSON Schema a custom validator stands for."""

    def deco(fn: Callable) -> Callable:
        fn.json_schema = schema  # type: ignore[attr-defined]
        return fn

    return deco


@json_schema({"type": "integer"})
def StrictInt(value: Any) -> int:  # noqa: N802 - reads like a type in schemas
    """An integer that is not a bool (JSON `true` must not pass as 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise vol.Invalid("expected an integer")
    return value


@json_schema({"type": "string"})
def Text(value: Any) -> str:  # noqa: N802
    """A string with surrounding whitespace removed (so "  " is empty, not text)."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a string")
    return value.strip()


@json_schema({"type": "boolean"})
def QueryBool(value: Any) -> bool:  # noqa: N802
    """`?all=true|false|1|0|yes|no` (query values are strings)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise vol.Invalid("expected true or false")


#: Row ids are 32-bit in the database (SQLite and PostgreSQL alike).
MAX_ID = 2**31 - 1


@json_schema({"type": "integer", "minimum": 1, "maximum": MAX_ID})
def PathId(value: Any) -> int:  # noqa: N802
    """A positive integer id from a path segment."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 10 or not 1 <= int(text) <= MAX_ID:
        raise vol.Invalid("expected a positive integer id")
    return int(text)


@json_schema({"type": "string", "pattern": KEY_PATTERN, "minLength": 1, "maxLength": 200})
def Key(value: Any) -> str:  # noqa: N802
    """A series key: the provider URL slug (lowercase letters, digits, single hyphens)."""
    if not isinstance(value, str) or len(value) > 200 or not KEY_RE.match(value):
        raise vol.Invalid("invalid series key: expected lowercase letters, digits and single hyphens")
    return value


# --- request bodies ----------------------------------------------------------------------------------------

PASSWORD = vol.Schema(
    {vol.Required("password", description="the master password"): vol.All(str, vol.Length(min=1, max=1024))},
    extra=vol.REMOVE_EXTRA,
)
SETUP = vol.Schema(
    {
        vol.Required("password", description="new master password (at least 8 characters)"): vol.All(
            str, vol.Length(min=8, max=1024)
        )
    },
    extra=vol.REMOVE_EXTRA,
)
API_KEY_CREATE = vol.Schema(
    {vol.Required("name", description="what the key is for"): vol.All(Text, vol.Length(min=1, max=100))},
    extra=vol.REMOVE_EXTRA,
)
SEARCH = vol.Schema(
    {
        vol.Required("query", description="title to look for"): vol.All(Text, vol.Length(min=1, max=200)),
        vol.Optional("site", description="aniworld (anime) or sto (series); both when omitted"): vol.Any(
            None, vol.In(SITES)
        ),
    },
    extra=vol.REMOVE_EXTRA,
)
ADD = vol.Schema(
    {
        vol.Required("link", description="series URL, e.g. https://aniworld.to/anime/stream/<key>"): vol.All(
            Text, vol.Length(min=1, max=1000)
        )
    },
    extra=vol.REMOVE_EXTRA,
)
RESCAN = vol.Schema(
    {vol.Optional("key", description="scan only this series"): vol.Any(None, Key)},
    extra=vol.REMOVE_EXTRA,
)
MATCH = vol.Schema(
    {
        vol.Required("folder", description="an unmatched folder name as listed"): vol.All(
            str, vol.Length(min=1, max=255)
        ),
        vol.Required("key"): Key,
        vol.Optional("site", default="aniworld"): vol.In(SITES),
        vol.Optional("root", description="the library root, when the folder name exists in several"): vol.Any(
            None, vol.All(str, vol.Length(min=1, max=4096))
        ),
    },
    extra=vol.REMOVE_EXTRA,
)
EPISODE_REF = vol.Schema(
    {
        vol.Required("season", description="season number, 0 for movies"): vol.All(
            StrictInt, vol.Range(min=0, max=999)
        ),
        vol.Required("episode"): vol.All(StrictInt, vol.Range(min=1, max=9999)),
    },
    extra=vol.REMOVE_EXTRA,
)
DOWNLOAD_REQUEST = vol.Schema(
    {
        vol.Required("serie_id", description="the series key"): Key,
        vol.Optional("serie_folder", description="informative only; the key identifies the series"): vol.Any(
            None, str
        ),
        vol.Optional("serie_name", description="informative only"): vol.Any(None, str),
        vol.Required("episodes"): vol.All([EPISODE_REF], vol.Length(min=1, max=5000)),
        vol.Optional("priority", default="normal"): vol.In(PRIORITIES),
        vol.Optional("language", description="preferred language; config order when omitted"): vol.Any(
            None, vol.In(LANGUAGE_CODES)
        ),
    },
    extra=vol.REMOVE_EXTRA,
)
RETRY = vol.Schema(
    {
        vol.Optional("item_ids", description="items to retry; every failed item when omitted"): vol.Any(
            None, vol.All([vol.All(StrictInt, vol.Range(min=1, max=MAX_ID))], vol.Length(max=10000))
        )
    },
    extra=vol.REMOVE_EXTRA,
)
PRIORITY_CHANGE = vol.Schema(
    {vol.Required("priority", description="new priority of a pending item"): vol.In(PRIORITIES)},
    extra=vol.REMOVE_EXTRA,
)
#: PUT /api/config and POST /api/config/validate take the YAML document as JSON (or {"config": document});
#: its content is checked by the config schema itself and reported as 422 with per-field issues.
CONFIG_DOCUMENT = vol.Schema({}, extra=vol.ALLOW_EXTRA)

# --- query strings and path parameters ---------------------------------------------------------------------

ANIME_LIST_QUERY = vol.Schema(
    {
        vol.Optional(
            "all", default=False, description="true: every series, not only those missing episodes"
        ): QueryBool
    },
    extra=vol.ALLOW_EXTRA,
)


#: Items per list GET /api/queue/status returns at most (services.download_service.MAX_PAGE says the same).
QUEUE_PAGE_MAX = 200
#: Highest offset into a queue list (row ids are 32-bit, so no list is longer).
QUEUE_OFFSET_MAX = MAX_ID


def query_int(low: int, high: int) -> Callable[[Any], int]:
    """`?name=<digits>` between `low` and `high` (query values are strings; "1.5", "-1", "" are refused)."""

    @json_schema({"type": "integer", "minimum": low, "maximum": high})
    def check(value: Any) -> int:
        text = str(value)
        if not text.isascii() or not text.isdigit() or len(text) > 10 or not low <= int(text) <= high:
            raise vol.Invalid(f"expected a whole number from {low} to {high}")
        return int(text)

    return check


QUEUE_STATUS_QUERY = vol.Schema(
    {
        vol.Optional(
            "limit",
            description="items per list (0: counts only); without it 50 active and pending, 20 completed "
            "and failed",
        ): query_int(0, QUEUE_PAGE_MAX),
        vol.Optional(
            "offset", default=0, description="items to skip in every list (with limit: the next page)"
        ): query_int(0, QUEUE_OFFSET_MAX),
    },
    extra=vol.ALLOW_EXTRA,
)


#: GET /api/queue/completed (the history page, issue 17): finished items, filtered and paged.
QUEUE_HISTORY_QUERY = vol.Schema(
    {
        vol.Optional(
            "status", default="all", description="all finished items, or only completed or failed ones"
        ): vol.In(("all", "completed", "failed")),
        vol.Optional(
            "q", description="only series whose name or key contains this text (case-insensitive)"
        ): vol.All(str, vol.Length(max=200)),
        vol.Optional("limit", default=50, description="items per page"): query_int(1, QUEUE_PAGE_MAX),
        vol.Optional("offset", default=0, description="items to skip (the next page)"): query_int(
            0, QUEUE_OFFSET_MAX
        ),
    },
    extra=vol.ALLOW_EXTRA,
)


#: DELETE /api/anime/{key}: unknown parameters are refused (a misspelt delete_files must not pass unnoticed).
ANIME_REMOVE_QUERY = vol.Schema(
    {
        vol.Optional(
            "delete_files",
            default=False,
            description="also delete the series folder (only inside a configured library root, never "
            "through a symlink); the files are kept when omitted",
        ): QueryBool
    },
    extra=vol.PREVENT_EXTRA,
)


@json_schema({"type": "string", "minLength": 1, "maxLength": 255})
def AnimeId(value: Any) -> str:  # noqa: N802
    """A key, or (backward compatibility) a folder name; resolved to a key by the handler."""
    if not isinstance(value, str) or not value or len(value) > 255:
        raise vol.Invalid("expected a series key")
    return value


@json_schema({"type": "string", "pattern": r"^config-\d{8}T\d{12}Z\.yaml$"})
def BackupName(value: Any) -> str:  # noqa: N802
    if not isinstance(value, str) or not re.match(r"^config-\d{8}T\d{12}Z\.yaml$", value):
        raise vol.Invalid("invalid backup name")
    return value


WS_QUERY = vol.Schema(
    {
        vol.Optional("token", description="JWT (browsers cannot set headers on a WebSocket)"): str,
        vol.Optional("rooms", description="comma-separated rooms to join right away"): str,
    },
    extra=vol.ALLOW_EXTRA,
)

# --- response shapes (JSON Schema 2020-12, as OpenAPI 3.1 uses) ---------------------------------------------

NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}
TIMESTAMP = {"type": ["string", "null"], "description": "ISO-8601 UTC"}


def _obj(props: dict, required: list[str] | None = None, **extra: Any) -> dict:
    return {"type": "object", "properties": props, "required": required or list(props), **extra}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def list_of(name: str) -> dict:
    return {"type": "array", "items": ref(name)}


_TOTAL = {"type": "integer", "minimum": 0, "description": "items in the whole list (the page may hold fewer)"}

COMPONENTS: dict[str, dict] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                }
            )
        }
    ),
    "Token": _obj(
        {
            "access_token": {"type": "string"},
            "token_type": {"const": "bearer"},
            "expires_at": {"type": "string", "description": "ISO-8601 UTC"},
        }
    ),
    "AuthStatus": _obj(
        {
            "configured": {"type": "boolean"},
            "authenticated": {"type": "boolean"},
            "method": {"enum": ["bearer", "api_key", None]},
            "expires_at": TIMESTAMP,
            "api_keys_enabled": {"type": "boolean"},
        }
    ),
    "Message": _obj({"status": {"type": "string"}, "message": {"type": "string"}}, ["status"]),
    "ApiKey": _obj(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "created_at": TIMESTAMP,
            "last_used_at": TIMESTAMP,
        }
    ),
    "NewApiKey": _obj(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "key": {"type": "string", "description": "shown once; send it as X-Api-Key"},
            "created_at": TIMESTAMP,
        }
    ),
    "AnimeSummary": _obj(
        {
            "key": {"type": "string"},
            "name": {"type": "string"},
            "site": {"type": "string"},
            "folder": NULLABLE_STR,
            "link": NULLABLE_STR,
            "missing_episodes": {
                "type": "object",
                "description": 'season number (as a string, "0" = movies) -> missing episode numbers',
                "additionalProperties": {"type": "array", "items": {"type": "integer"}},
            },
            "missing_count": {"type": "integer"},
            "listed_count": {"type": "integer", "description": "episodes the provider lists"},
            "on_disk_count": {"type": "integer", "description": "listed episodes present on disk"},
            "queued_count": {"type": "integer", "description": "pending or downloading queue items"},
            "languages": {"type": "array", "items": {"type": "string"}, "description": "of the files"},
        },
        ["key", "name", "site", "folder", "link", "missing_episodes", "missing_count"],
    ),
    "EpisodeStatus": _obj(
        {
            "season": {"type": "integer"},
            "episode": {"type": "integer"},
            "title": NULLABLE_STR,
            "languages": {"type": "array", "items": {"type": "string"}},
            "status": {"enum": ["on_disk", "missing", "queued", "downloading"]},
        }
    ),
    "AnimeDetail": _obj(
        {
            "key": {"type": "string"},
            "title": {"type": "string"},
            "name": {"type": "string"},
            "site": {"type": "string"},
            "folder": NULLABLE_STR,
            "link": NULLABLE_STR,
            "description": NULLABLE_STR,
            "episodes": list_of("EpisodeStatus"),
        }
    ),
    "SeriesRemoved": _obj(
        {
            "status": {"type": "string"},
            "message": {"type": "string"},
            "key": {"type": "string"},
            "name": {"type": "string"},
            "site": {"type": "string"},
            "folder": NULLABLE_STR,
            "root": NULLABLE_STR,
            "files_deleted": {"type": "boolean", "description": "the series folder was deleted"},
            "files_kept": {
                "type": "boolean",
                "description": "a folder stays on disk; the next scan lists it as unmatched",
            },
            "cancelled_downloads": {"type": "integer", "description": "queue items cancelled and removed"},
            "warning": {"type": "string", "description": "files that could not be deleted"},
        },
        ["status", "message", "key", "files_deleted", "files_kept", "cancelled_downloads"],
    ),
    "SearchResult": _obj(
        {
            "key": {"type": "string"},
            "name": {"type": "string"},
            "site": {"type": "string"},
            "link": {"type": "string"},
            "year": NULLABLE_INT,
        }
    ),
    "AddResult": _obj(
        {"status": {"type": "string"}, "message": {"type": "string"}, "key": {"type": "string"}},
        description="status, message and the series' fields (key, name, site, folder, link, ...)",
    ),
    "ScanStarted": _obj({"status": {"const": "started"}, "key": NULLABLE_STR}, ["status"]),
    "UnmatchedFolder": {"type": "object", "description": "a library folder without a key marker"},
    "DownloadItem": _obj(
        {
            "id": {"type": "integer"},
            "serie_id": {"type": "string", "description": "the series key"},
            "key": {"type": "string"},
            "serie_folder": NULLABLE_STR,
            "serie_name": {"type": "string"},
            "season": {"type": "integer"},
            "episode": {"type": "integer"},
            "language": NULLABLE_STR,
            "status": {"type": "string", "description": "pending, downloading, completed, failed, cancelled"},
            "priority": {"type": "string"},
            "progress": {"type": "number"},
            "episode_title": {"type": "string", "description": "in GET /api/queue/status and queue_status"},
        },
        ["id", "serie_id", "serie_folder", "serie_name", "episode", "status", "progress"],
    ),
    "QueueHistory": _obj(
        {
            "items": {
                "type": "array",
                "items": {
                    "allOf": [ref("DownloadItem")],
                    "properties": {
                        "error": {**NULLABLE_STR, "description": "why a failed item failed"},
                        "finished_at": {**TIMESTAMP, "description": "when it completed or failed"},
                    },
                },
                "description": "newest first",
            },
            "total": _TOTAL,
            "counts": _obj({"completed": {"type": "integer"}, "failed": {"type": "integer"}}),
            "status": {"type": "string", "enum": ["all", "completed", "failed"]},
            "q": {"type": "string"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        }
    ),
    "QueueStatus": _obj(
        {
            "is_running": {"type": "boolean"},
            "is_paused": {"type": "boolean"},
            "active_downloads": {**list_of("DownloadItem"), "description": "downloading, oldest first"},
            "active_downloads_total": _TOTAL,
            "pending_queue": {**list_of("DownloadItem"), "description": "waiting, in queue order"},
            "pending_queue_total": _TOTAL,
            "completed_downloads": {**list_of("DownloadItem"), "description": "newest first"},
            "completed_downloads_total": _TOTAL,
            "failed_downloads": {**list_of("DownloadItem"), "description": "newest first"},
            "failed_downloads_total": _TOTAL,
            "statistics": _obj(
                {
                    "active": {"type": "integer"},
                    "pending": {"type": "integer"},
                    "completed": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "speed_mbps": {"type": "number", "description": "all downloads together, MiB/s"},
                }
            ),
        },
        [
            "is_running",
            "is_paused",
            "active_downloads",
            "pending_queue",
            "completed_downloads",
            "failed_downloads",
            "active_downloads_total",
            "pending_queue_total",
            "completed_downloads_total",
            "failed_downloads_total",
            "statistics",
        ],
        description="Each list holds one page (see the limit and offset parameters; the queue_status "
        "WebSocket message holds the first page); `<list>_total` counts the whole list, so a list is cut "
        "where offset + its length < its total.",
    ),
    "QueueAdded": _obj(
        {
            "status": {"type": "string"},
            "message": {"type": "string"},
            "items": list_of("DownloadItem"),
            "added_items": {"type": "array", "items": {"type": "integer"}},
        }
    ),
    "QueueAction": _obj(
        {"status": {"type": "string"}, "message": {"type": "string"}, "queue": ref("QueueStatus")}, ["status"]
    ),
    "QueueCount": _obj(
        {"status": {"type": "string"}, "message": {"type": "string"}, "count": {"type": "integer"}},
        ["status", "count"],
    ),
    "ConfigIssue": _obj({"path": {"type": "string"}, "line": NULLABLE_INT, "message": {"type": "string"}}),
    "ConfigDocument": _obj(
        {
            "config": {"type": "object", "description": "the YAML file as written"},
            "effective": {"type": "object", "description": "with defaults and environment overrides applied"},
            "restart_required": {
                "type": "array",
                "items": {"type": "string"},
                "description": "after a save: changed settings (section.key) that apply when the daemon "
                "restarts; the downloads settings apply at once",
            },
        },
        ["config", "effective"],
    ),
    "ConfigValidation": _obj({"valid": {"type": "boolean"}, "errors": list_of("ConfigIssue")}),
    "ConfigOption": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "dotted path, e.g. downloads.quality"},
            "section": {"type": "string"},
            "type": {
                "type": "string",
                "enum": ["bool", "int", "float", "duration", "rate", "string", "list", "enum", "mapping"],
            },
            "choices": {"type": "array", "description": "allowed values (enum) or list items"},
            "default": {},
            "unit": NULLABLE_STR,
            "description": {"type": "string", "description": "the comment of the key in config.example.yaml"},
            "secret": {"type": "boolean"},
            "restart": {"type": "boolean", "description": "a change applies when the daemon restarts"},
            "essential": {"type": "boolean", "description": "shown first on the config page"},
            "login_only": {"type": "boolean", "description": "an API key may not change it"},
        },
        "required": ["path", "section", "type", "default", "description", "secret", "restart", "essential"],
        "additionalProperties": True,
    },
    "ConfigSchema": _obj(
        {
            "sections": {
                "type": "array",
                "items": _obj(
                    {"id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"}}
                ),
            },
            "options": list_of("ConfigOption"),
            "secret_placeholder": {"type": "string"},
        }
    ),
    "ConfigBackup": _obj(
        {"name": {"type": "string"}, "size": {"type": "integer"}, "created_at": {"type": "string"}}
    ),
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "database": {"type": "string", "enum": ["ok", "error"]},
            "role": {
                "type": "string",
                "enum": ["all", "api", "worker"],
                "description": "several processes only",
            },
            "node": {"type": "string", "description": "several processes only: cluster.node"},
            "redis": {"type": "string", "enum": ["ok", "error"], "description": "several processes only"},
            "leader": {"type": "array", "items": {"type": "string"}, "description": "elections this one won"},
        },
        "required": ["status"],
    },
}

# --- the route table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    #: "module.function" inside aniworldd.api, or the handler itself.
    handler: str | Callable
    summary: str
    tag: str
    auth: bool = True
    body: vol.Schema | None = None
    body_required: bool = True
    query: vol.Schema | None = None
    params: dict[str, Callable] = field(default_factory=dict)
    #: status -> (description, JSON schema of the body or None)
    responses: dict[int, tuple[str, dict | None]] = field(default_factory=dict)
    #: the service this route needs on the context, "a|b" when either will do (503 when none is running)
    needs: str | None = None
    description: str = ""
    #: a WebSocket upgrade route (documented, not validated as JSON)
    websocket: bool = False
    #: JWT only (API keys are refused): managing API keys must not be possible with an API key
    login_only: bool = False

    @property
    def name(self) -> str:
        return self.handler if isinstance(self.handler, str) else self.handler.__name__


OK_MESSAGE = (200, ("done", ref("Message")))
SUMMARIES = list_of("AnimeSummary")

ROUTES: list[Route] = [
    # auth
    Route(
        "POST",
        "/api/auth/login",
        "auth.login",
        "Log in with the master password; returns a JWT",
        "auth",
        auth=False,
        body=PASSWORD,
        responses={
            200: ("a bearer token", ref("Token")),
            401: ("wrong password", None),
            409: ("no master password set yet", None),
            429: ("too many failed attempts", None),
        },
        needs="auth",
    ),
    Route(
        "POST",
        "/api/auth/logout",
        "auth.logout",
        "Revoke the token used for this request",
        "auth",
        responses={200: ("logged out", ref("Message")), 400: ("not a login token (API key)", None)},
        needs="auth",
    ),
    Route(
        "GET",
        "/api/auth/status",
        "auth.status",
        "Whether a password is set and the caller is logged in",
        "auth",
        auth=False,
        responses={200: ("auth status", ref("AuthStatus"))},
        needs="auth",
    ),
    Route(
        "POST",
        "/api/auth/setup",
        "auth.setup",
        "Set the master password once, while none is set",
        "auth",
        auth=False,
        body=SETUP,
        responses={
            201: ("password set; the caller is logged in", ref("Token")),
            409: ("a master password is already set", None),
        },
        needs="auth",
    ),
    Route(
        "GET",
        "/api/auth/api-keys",
        "auth.list_api_keys",
        "List API keys (never the keys themselves)",
        "auth",
        login_only=True,
        responses={
            200: ("API keys", list_of("ApiKey")),
            403: ("API keys disabled or used with an API key", None),
        },
        needs="auth",
    ),
    Route(
        "POST",
        "/api/auth/api-keys",
        "auth.create_api_key",
        "Create an API key for scripts (X-Api-Key)",
        "auth",
        login_only=True,
        body=API_KEY_CREATE,
        responses={
            201: ("the new key; shown only once", ref("NewApiKey")),
            403: ("API keys disabled or used with an API key", None),
        },
        needs="auth",
    ),
    Route(
        "DELETE",
        "/api/auth/api-keys/{key_id}",
        "auth.revoke_api_key",
        "Revoke an API key",
        "auth",
        login_only=True,
        params={"key_id": PathId},
        responses={
            200: ("revoked", ref("Message")),
            403: ("API keys disabled or used with an API key", None),
            404: ("no such key", None),
        },
        needs="auth",
    ),
    # config
    Route(
        "GET",
        "/api/config",
        "config.get_config",
        "The config file as written and the effective config",
        "config",
        responses={200: ("config", ref("ConfigDocument"))},
        needs="config_service",
    ),
    Route(
        "PUT",
        "/api/config",
        "config.put_config",
        "Validate and save the config file (atomic, with backup)",
        "config",
        body=CONFIG_DOCUMENT,
        responses={200: ("saved", ref("ConfigDocument")), 422: ("invalid config: details.errors", None)},
        needs="config_service",
        description='Body: the YAML document as a JSON object (or {"config": document}). The downloads '
        "settings apply at once; the answer's restart_required lists the changes that wait for a restart.",
    ),
    Route(
        "POST",
        "/api/config/validate",
        "config.validate_config",
        "Check a config document without saving",
        "config",
        body=CONFIG_DOCUMENT,
        responses={200: ("validation result", ref("ConfigValidation"))},
        needs="config_service",
    ),
    Route(
        "GET",
        "/api/config/backups",
        "config.list_backups",
        "Config backups, newest first",
        "config",
        responses={200: ("backups", list_of("ConfigBackup"))},
        needs="config_service",
    ),
    Route(
        "GET",
        "/api/config/schema",
        "config.get_config_schema",
        "Every config option: type, allowed values, default, unit, description",
        "config",
        responses={200: ("the options, in the order the config page shows them", ref("ConfigSchema"))},
        description="Types and allowed values come from the validation schema, descriptions from the "
        "comments of config.example.yaml; `essential` options are shown first, `restart` ones apply after a "
        "restart.",
    ),
    Route(
        "POST",
        "/api/config/backups/{name}/restore",
        "config.restore_backup",
        "Restore a config backup",
        "config",
        params={"name": BackupName},
        responses={
            200: ("restored", ref("ConfigDocument")),
            404: ("no such backup", None),
            422: ("the backup is not a valid config", None),
        },
        needs="config_service",
    ),
    # anime
    Route(
        "GET",
        "/api/anime",
        "anime.list_anime",
        "Series with missing episodes (all series with ?all=true)",
        "anime",
        query=ANIME_LIST_QUERY,
        responses={200: ("series", SUMMARIES)},
        needs="library|anime",
    ),
    Route(
        "POST",
        "/api/anime/search",
        "anime.search",
        "Search the provider sites",
        "anime",
        body=SEARCH,
        responses={
            200: ("results", list_of("SearchResult")),
            403: ("the provider blocked us", None),
            502: ("the provider answered something unexpected", None),
        },
        needs="anime",
    ),
    Route(
        "POST",
        "/api/anime/add",
        "anime.add",
        "Add a series by its URL (the key is taken from the link)",
        "anime",
        body=ADD,
        responses={
            200: ("added (or already present)", ref("AddResult")),
            403: ("the provider blocked us", None),
            404: ("the provider has no such series", None),
            502: ("the provider answered something unexpected", None),
        },
        needs="anime",
    ),
    Route(
        "POST",
        "/api/anime/rescan",
        "anime.rescan",
        "Start a library scan (optionally of one series)",
        "anime",
        body=RESCAN,
        body_required=False,
        responses={202: ("scan started", ref("ScanStarted")), 404: ("unknown key", None)},
        needs="scan",
    ),
    Route(
        "GET",
        "/api/anime/{anime_id}",
        "anime.detail",
        "One series with every episode and its status",
        "anime",
        params={"anime_id": AnimeId},
        responses={200: ("series detail", ref("AnimeDetail")), 404: ("unknown series", None)},
        needs="library|anime",
        description="anime_id is the series key; a folder name is accepted for backward compatibility and "
        "resolved to its key once.",
    ),
    Route(
        "DELETE",
        "/api/anime/{key}",
        "anime.remove",
        "Remove a series from the library (and its queued downloads); files kept unless delete_files",
        "anime",
        params={"key": Key},
        query=ANIME_REMOVE_QUERY,
        responses={
            200: ("removed", ref("SeriesRemoved")),
            400: ("bad key or query parameter", None),
            404: ("unknown series", None),
            409: ("delete_files refused: the folder is outside the library roots or a symlink", None),
            503: ("delete_files refused: the library root is not mounted or the folder not writable", None),
        },
        needs="anime",
        description="The series leaves the library, monitoring and the calendar; its pending, failed and "
        "running downloads are cancelled and removed (a running one is stopped, its temp files deleted). "
        "Without delete_files the folder stays on disk with its marker: scans list it under "
        "/api/library/unmatched (series deleted) instead of adding it back; adding the series again or "
        "matching the folder brings it back. Announced as a series_removed event (WebSocket room downloads, "
        "MQTT <base>/event). Nothing changes when the request is refused.",
    ),
    Route(
        "GET",
        "/api/library/unmatched",
        "anime.unmatched",
        "Library folders without a key marker",
        "anime",
        responses={200: ("folders", list_of("UnmatchedFolder"))},
        needs="library|scan",
    ),
    Route(
        "POST",
        "/api/library/match",
        "anime.match",
        "Match an unmatched folder to a series key",
        "anime",
        body=MATCH,
        responses={
            200: ("matched", ref("Message")),
            404: ("unknown folder", None),
            409: ("the key is already used by another folder", None),
        },
        needs="library",
    ),
    # queue
    Route(
        "GET",
        "/api/queue/status",
        "queue.status",
        "The download queue, one page of each list",
        "queue",
        query=QUEUE_STATUS_QUERY,
        responses={200: ("queue status", ref("QueueStatus"))},
        description="Counts and flags, and a page of each list: without parameters the first 50 active and "
        "pending and the 20 newest completed and failed items (what the queue_status WebSocket message "
        "carries); `limit` (at most 200) and `offset` page through every list at once. `<list>_total` "
        "tells how many items a list has in all.",
        needs="queue",
    ),
    Route(
        "POST",
        "/api/queue/add",
        "queue.add",
        "Queue episodes of a series for download",
        "queue",
        body=DOWNLOAD_REQUEST,
        responses={
            201: ("created items", ref("QueueAdded")),
            404: ("unknown series or episode", None),
            409: ("already queued", None),
        },
        needs="queue",
    ),
    Route(
        "POST",
        "/api/queue/start",
        "queue.start",
        "Start the queue workers",
        "queue",
        responses={200: ("started", ref("QueueAction"))},
        needs="queue",
    ),
    Route(
        "POST",
        "/api/queue/stop",
        "queue.stop",
        "Stop the queue (running downloads are interrupted and kept)",
        "queue",
        responses={200: ("stopped", ref("QueueAction"))},
        needs="queue",
    ),
    Route(
        "POST",
        "/api/queue/pause",
        "queue.pause",
        "Pause: running downloads finish, no new ones start",
        "queue",
        responses={200: ("paused", ref("QueueAction"))},
        needs="queue",
    ),
    Route(
        "POST",
        "/api/queue/resume",
        "queue.resume",
        "Resume a paused queue",
        "queue",
        responses={200: ("resumed", ref("QueueAction"))},
        needs="queue",
    ),
    Route(
        "POST",
        "/api/queue/retry",
        "queue.retry",
        "Retry failed items (all, or the given ids)",
        "queue",
        body=RETRY,
        body_required=False,
        responses={200: ("retried", ref("QueueCount")), 404: ("no such item", None)},
        needs="queue",
    ),
    Route(
        "GET",
        "/api/queue/completed",
        "queue.history",
        "Download history: completed and failed items with the failure reason, newest first",
        "queue",
        query=QUEUE_HISTORY_QUERY,
        responses={200: ("one page of finished items", ref("QueueHistory"))},
        description="Read from the database (works while the queue is stopped). `status` picks completed "
        "or failed items, `q` filters on the series name or key, `limit`/`offset` page; `total` counts the "
        "matching items, `counts` each kind matching `q`. Failed items carry the reason in `error`. Items "
        "removed from the queue (Clear completed, remove) are not listed.",
    ),
    Route(
        "DELETE",
        "/api/queue/completed",
        "queue.clear_completed",
        "Remove completed items from the list",
        "queue",
        responses={200: ("cleared", ref("QueueCount"))},
        needs="queue",
    ),
    Route(
        "DELETE",
        "/api/queue/{item_id}",
        "queue.remove",
        "Remove (cancel) a queue item",
        "queue",
        params={"item_id": PathId},
        responses={200: ("removed", ref("Message")), 404: ("no such item", None)},
        needs="queue",
    ),
    Route(
        "PATCH",
        "/api/queue/{item_id}",
        "queue.set_priority",
        "Change the priority of a pending queue item",
        "queue",
        params={"item_id": PathId},
        body=PRIORITY_CHANGE,
        responses={
            200: ("the updated item", ref("DownloadItem")),
            404: ("no such item", None),
            409: ("the item is not pending (downloading, completed, failed or cancelled)", None),
        },
        needs="queue",
    ),
    # websocket and docs
    Route(
        "GET",
        "/ws/connect",
        "ws.connect",
        "WebSocket: live download and scan events",
        "websocket",
        query=WS_QUERY,
        websocket=True,
        responses={101: ("switching to WebSocket", None), 400: ("not a WebSocket request", None)},
        description='Send {"action": "join"|"leave", "room": ROOM} with ROOM one of downloads, '
        "download_progress, scan_progress; "
        'receive {"type", "timestamp", "data"} messages of the types download_progress, '
        "download_complete, download_failed, queue_status, scan_progress, scan_complete, scan_failed. "
        "queue_status carries a QueueStatus with the first page of each list (50 active and pending, 20 "
        "completed and failed) and `<list>_total`, so its size does not grow with the queue. "
        "scan_progress carries `partial` and scan_complete `scope` (full | partial: a few folders, e.g. "
        "after a download) and `requested` (true when a user asked for the scan: API, CLI, MQTT; false for "
        "the daemon's own scans); `unmatched` in scan_complete is the list of unmatched folder names. "
        'Authenticate with ?token=JWT or the Authorization header. {"action": "ping"} answers pong.',
    ),
    Route(
        "GET",
        "/health",
        "health.health",
        "Liveness and database check (no auth)",
        "system",
        auth=False,
        responses={200: ("healthy", ref("Health")), 503: ("database unreachable", ref("Health"))},
    ),
    Route(
        "GET",
        "/api/openapi.json",
        "openapi.openapi_json",
        "This document",
        "system",
        auth=False,
        responses={200: ("OpenAPI 3.1 document", {"type": "object"})},
    ),
    Route(
        "GET",
        "/api/docs",
        "openapi.docs_page",
        "Human-readable API documentation (HTML)",
        "system",
        auth=False,
        responses={200: ("HTML page", None)},
    ),
]
