"""MQTT request/response commands (the Zigbee2MQTT pattern), independent of the MQTT client.

`<base>/request/<command>` carries an optional JSON object (may hold a `transaction` id); the answer on
`<base>/response/<command>` is always `{"status": "ok"|"error", "data", "error", "transaction"}`.
Whatever arrives, the dispatcher answers and never raises: a broken payload from an automation must not
take the bridge down.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import voluptuous as vol

from aniworldd.mqtt.protocols import QueueControl, ScanControl
from aniworldd.services.errors import ServiceError

log = logging.getLogger(__name__)

KEY_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
PRIORITIES = ("low", "normal", "high")
LANGUAGES = ("ger-dub", "ger-sub", "eng-sub", "eng-dub")
#: A button press from HA sends its payload_press; accept HA's default too.
_EMPTY_BODIES = {"", "PRESS", "press"}
_MAX_PAYLOAD = 64 * 1024
#: Commands whose HA entity (a select) sends a bare word, not JSON.
_RAW_TEXT = {"settings/language"}
#: Bounds of the HA number entities (discovery.py declares the same to HA).
MAX_CONCURRENT_RANGE = (1, 16)
SPEED_LIMIT_MAX = 1000.0


class CommandError(Exception):
    """A request the bridge refuses (bad payload, unknown command, missing component)."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


def _key(value: Any) -> str:
    if not isinstance(value, str) or not KEY_RE.match(value):
        raise vol.Invalid("expected a series key like 'attack-on-titan'")
    return value


def _episode_ref(value: Any) -> Any:
    if isinstance(value, bool):
        raise vol.Invalid("expected an episode number or {season, episode}")
    if isinstance(value, int):
        if value < 0:
            raise vol.Invalid("episode numbers are >= 0")
        return value
    if isinstance(value, dict):
        return vol.Schema(
            {
                vol.Required("season"): vol.All(int, vol.Range(min=0)),
                vol.Required("episode"): vol.All(int, vol.Range(min=0)),
            }
        )(value)
    raise vol.Invalid("expected an episode number or {season, episode}")


ADD_SCHEMA = vol.Schema(
    {
        vol.Required("key"): _key,
        vol.Optional("season"): vol.All(int, vol.Range(min=0)),
        vol.Required("episodes"): vol.All([_episode_ref], vol.Length(min=1, max=500)),
        vol.Optional("priority", default="normal"): vol.In(PRIORITIES),
        vol.Optional("language", default=None): vol.Any(None, vol.In(LANGUAGES)),
    }
)
RETRY_SCHEMA = vol.Schema(
    {vol.Optional("item_ids", default=None): vol.Any(None, [vol.All(int, vol.Range(min=1))])}
)
RESCAN_SCHEMA = vol.Schema({vol.Optional("keys", default=None): vol.Any(None, [_key])})
EMPTY_SCHEMA = vol.Schema({})


def _invalid(exc: vol.Invalid) -> CommandError:
    path = ".".join(str(p) for p in exc.path)
    return CommandError(f"{path}: {exc.msg}" if path else str(exc.msg))


def parse_request(payload: bytes | str | None, raw_text: bool = False) -> tuple[Any, Any]:
    """(body, transaction). Body is a dict, or a bare JSON scalar for commands that take one
    (`raw_text`: a payload that is not JSON is taken as a plain string, as an HA select sends it)."""
    if payload is None:
        return {}, None
    if isinstance(payload, bytes | bytearray):
        if len(payload) > _MAX_PAYLOAD:
            raise CommandError("payload too large")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError("payload is not UTF-8") from exc
    else:
        text = str(payload)
    text = text.strip()
    if text in _EMPTY_BODIES:
        return {}, None
    if text.upper() in ("ON", "OFF"):
        return text.upper(), None  # HA switch payloads
    try:
        body = json.loads(text)
    except ValueError as exc:
        if raw_text:
            return text, None
        raise CommandError(f"payload is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError:  # `[[[[...` nested 50,000 deep: invalid input, not an internal error
        if raw_text:
            return text, None
        raise CommandError("payload is not valid JSON: nested too deeply") from None
    if isinstance(body, dict):
        return body, body.pop("transaction", None)
    return body, None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class CommandDispatcher:
    """Maps command names to calls on the queue and scan services."""

    def __init__(
        self,
        services: Any,
        on_queue_changed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        # `services.queue` / `services.scan` (QueueControl / ScanControl or None) are read per request.
        self.services = services
        # Called after a queue command so `queue/state` reflects it even if the service stays silent.
        self.on_queue_changed = on_queue_changed
        self._handlers: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "queue/start": self._simple("start"),
            "queue/stop": self._simple("stop"),
            "queue/pause": self._simple("pause"),
            "queue/resume": self._simple("resume"),
            "queue/paused": self._paused,
            "queue/retry": self._retry,
            "queue/clear_completed": self._simple("clear_completed"),
            "queue/add": self._add,
            "queue/status": self._status,
            "scan/rescan": self._rescan,
            "settings/max_concurrent": self._max_concurrent,
            "settings/speed_limit": self._speed_limit,
            "settings/language": self._language,
        }

    @property
    def commands(self) -> list[str]:
        return sorted(self._handlers)

    async def handle(self, command: str, payload: bytes | str | None) -> dict:
        """Run one request and build its response document. Never raises."""
        transaction = None
        try:
            body, transaction = parse_request(payload, raw_text=command in _RAW_TEXT)
            handler = self._handlers.get(command)
            if handler is None:
                raise CommandError(
                    f"unknown command {command!r}; known: {', '.join(self.commands)}", "not_found"
                )
            data = await handler(body)
            return {
                "status": "ok",
                "data": data if data is not None else {},
                "error": None,
                "transaction": transaction,
            }
        except CommandError as exc:
            return self._error(str(exc), exc.code, transaction)
        except ServiceError as exc:
            return self._error(exc.message, exc.code, transaction, exc.details)
        except Exception as exc:  # a service bug must not kill the bridge; log it for the admin
            log.exception("mqtt command %s failed", command)
            return self._error(f"internal error: {type(exc).__name__}", "internal", transaction)

    @staticmethod
    def _error(message: str, code: str, transaction: Any, details: dict | None = None) -> dict:
        data: dict[str, Any] = {"code": code}
        if details:
            data["details"] = details
        return {"status": "error", "data": data, "error": message, "transaction": transaction}

    # --- helpers -------------------------------------------------------------------------------
    def _need_queue(self) -> QueueControl:
        queue = getattr(self.services, "queue", None)
        if queue is None:
            raise CommandError("the download queue is not available", "unavailable")
        return queue

    def _need_scan(self) -> ScanControl:
        scan = getattr(self.services, "scan", None)
        if scan is None:
            raise CommandError("the library scanner is not available", "unavailable")
        return scan

    @staticmethod
    def _body(schema: vol.Schema, body: Any) -> dict:
        if not isinstance(body, dict):
            raise CommandError("payload must be a JSON object")
        try:
            return schema(body)
        except vol.MultipleInvalid as exc:
            raise _invalid(exc.errors[0]) from exc
        except vol.Invalid as exc:
            raise _invalid(exc) from exc

    async def _changed(self) -> None:
        if self.on_queue_changed is not None:
            try:
                await self.on_queue_changed()
            except Exception:
                log.debug("refreshing queue state after a command failed", exc_info=True)

    @staticmethod
    def _plain(result: Any) -> Any:
        if isinstance(result, dict | list):
            return result
        if isinstance(result, bool | int | float | str):
            return {"result": result}
        return {}

    # --- handlers ------------------------------------------------------------------------------
    def _simple(self, method: str) -> Callable[[Any], Awaitable[Any]]:
        async def run(body: Any) -> Any:
            self._body(EMPTY_SCHEMA, body)
            result = await _maybe_await(getattr(self._need_queue(), method)())
            await self._changed()
            return self._plain(result)

        return run

    async def _paused(self, body: Any) -> Any:
        if isinstance(body, dict):
            body = body.get("paused", body.get("state"))
        if isinstance(body, str) and body.upper() in ("ON", "OFF", "TRUE", "FALSE"):
            body = body.upper() in ("ON", "TRUE")
        if not isinstance(body, bool):
            raise CommandError('expected "ON", "OFF", true, false or {"paused": true|false}')
        queue = self._need_queue()
        await _maybe_await(queue.pause() if body else queue.resume())
        await self._changed()
        return {"paused": body}

    async def _retry(self, body: Any) -> Any:
        args = self._body(RETRY_SCHEMA, body)
        result = await _maybe_await(self._need_queue().retry(args["item_ids"]))
        await self._changed()
        return self._plain(result)

    async def _add(self, body: Any) -> Any:
        args = self._body(ADD_SCHEMA, body)
        episodes: list[tuple[int, int]] = []
        for ref in args["episodes"]:
            if isinstance(ref, dict):
                episodes.append((ref["season"], ref["episode"]))
            elif "season" in args:
                episodes.append((args["season"], ref))
            else:
                raise CommandError("episodes: plain numbers need a 'season' (or use {season, episode})")
        items = await self._need_queue().add(
            args["key"], episodes, priority=args["priority"], language=args["language"]
        )
        await self._changed()
        return {"items": items}

    async def _status(self, body: Any) -> Any:
        return await self._need_queue().status()

    # --- settings (the HA number/select entities) ----------------------------------------------
    def _setter(self) -> Callable[[str, Any], Awaitable[dict]]:
        setter = getattr(self.services, "set_download_setting", None)
        if setter is None or self._need_queue() is None:
            raise CommandError("settings cannot be changed here", "unavailable")
        return setter

    @staticmethod
    def _number(body: Any, name: str) -> float:
        if isinstance(body, dict):
            body = body.get("value", body.get(name))
        if isinstance(body, str):
            try:
                body = float(body)
            except ValueError:
                body = None
        if isinstance(body, bool) or not isinstance(body, int | float) or body != body:
            raise CommandError(f'expected a number or {{"value": <number>}} for {name}')
        return float(body)

    async def _max_concurrent(self, body: Any) -> Any:
        value = self._number(body, "max_concurrent")
        low, high = MAX_CONCURRENT_RANGE
        if not value.is_integer() or not low <= value <= high:
            raise CommandError(f"max_concurrent must be a whole number from {low} to {high}")
        return await self._setter()("max_concurrent", int(value))

    async def _speed_limit(self, body: Any) -> Any:
        from aniworldd.mqtt.sampling import rate_setting

        value = self._number(body, "speed_limit")
        if not 0 <= value <= SPEED_LIMIT_MAX:
            raise CommandError(f"speed_limit must be 0 (unlimited) to {SPEED_LIMIT_MAX:g} MiB/s")
        return await self._setter()("speed_limit", rate_setting(value))

    async def _language(self, body: Any) -> Any:
        if isinstance(body, dict):
            body = body.get("language", body.get("value"))
        if not isinstance(body, str) or body.strip() not in LANGUAGES:
            raise CommandError(f"expected one of {', '.join(LANGUAGES)}")
        setter = self._setter()
        current = list(getattr(self.services, "downloads_config", dict)().get("language") or [])
        chosen = body.strip()
        order = [chosen] + [lang for lang in current if lang != chosen]
        return await setter("language", order)

    async def _rescan(self, body: Any) -> Any:
        args = self._body(RESCAN_SCHEMA, body)
        await _maybe_await(self._need_scan().request_scan(args["keys"]))
        return {"requested": True, "keys": args["keys"]}
