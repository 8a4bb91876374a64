"""Notifications: webhooks (the bus's events POSTed to user URLs in the WebSocket envelope) and Apprise
(`notifications.apprise`: one library for ntfy, Telegram, Discord, Gotify, Pushover, e-mail and 100+ more,
each target a URL with the events it wants, as a short human-readable title and message).

Each webhook and each Apprise target has its own bounded outbox and sender task, so a dead endpoint only
delays (and eventually drops) its own deliveries: the daemon and the other targets never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp

from aniworldd import __version__
from aniworldd.core.labels import episode_label
from aniworldd.events import (
    DOWNLOAD_COMPLETE,
    DOWNLOAD_FAILED,
    NEW_EPISODES,
    SCAN_COMPLETE,
    Event,
    EventBus,
    to_json,
)
from aniworldd.services.errors import BadRequest

log = logging.getLogger(__name__)

HEALTH = "health"
FORWARDED = {DOWNLOAD_COMPLETE, DOWNLOAD_FAILED, SCAN_COMPLETE, NEW_EPISODES, HEALTH}
OUTBOX_SIZE = 100


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    last_error: str | None = None


@dataclass
class _Webhook:
    url: str
    events: set[str]
    timeout: float
    outbox: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(OUTBOX_SIZE))
    stats: WebhookStats = field(default_factory=WebhookStats)


class _OutboxNotifier:
    """What both notifiers share: one bounded outbox and one sender task per target, fed from the bus.

    A slow or dead target only ever delays itself; when its outbox is full the oldest message goes
    (fresh news matters more than old news) and is counted as dropped.  Subclasses say what a target
    gets for an event (`_payload`), how it is delivered (`_deliver`) and how its URL is shown.
    """

    #: Prefix of the task names.
    name = "notify"
    #: How the API names a target and the config list (error messages of `test`).
    target_word = "target"
    config_key = "notifications"

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._tasks: list[asyncio.Task] = []
        self._sub = None

    def _targets(self) -> list[Any]:
        raise NotImplementedError

    def _payload(self, event: Event) -> Any:
        """What the targets get for `event` (None: nothing to send)."""
        raise NotImplementedError

    async def _deliver(self, target: Any, payload: Any) -> bool:
        raise NotImplementedError

    def _shown_url(self, target: Any) -> str:
        return target.url

    async def _opened(self) -> None:
        """Before the first delivery (a session to open)."""

    async def _closed(self) -> None:
        """After the last delivery (a session to close)."""

    async def start(self) -> None:
        if not self._targets():
            return
        await self._opened()
        self._sub = self.bus.subscribe(FORWARDED)
        self._tasks.append(asyncio.create_task(self._route(), name=f"{self.name}-route"))
        for i, target in enumerate(self._targets()):
            self._tasks.append(asyncio.create_task(self._sender(target), name=f"{self.name}-{i}"))

    async def _route(self) -> None:
        async for event in self._sub:
            self.enqueue(event)

    def enqueue(self, event: Event) -> None:
        payload = self._payload(event)
        if payload is None:
            return
        for target in self._targets():
            if event.type not in target.events:
                continue
            if target.outbox.full():
                target.outbox.get_nowait()
                target.stats.dropped += 1
            target.outbox.put_nowait(payload)

    async def _sender(self, target: Any) -> None:
        while True:
            await self._deliver(target, await target.outbox.get())

    def _test_payload(self) -> Any:
        raise NotImplementedError

    async def test(self, index: int | None = None) -> list[dict]:
        """Send a test now to one target (by index) or all; returns per-target results."""
        targets = self._targets()
        if not targets:
            raise BadRequest(f"no {self.target_word}s are configured ({self.config_key})")
        if index is not None and not 0 <= index < len(targets):
            raise BadRequest(f"no {self.target_word} with index {index}", {"index": index})
        await self._opened()
        payload = self._test_payload()
        results = []
        for target in targets if index is None else [targets[index]]:
            target.stats.last_error = None
            ok = await self._deliver(target, payload)
            results.append(
                {"url": self._shown_url(target), "ok": ok, "error": None if ok else target.stats.last_error}
            )
        return results

    def status(self) -> list[dict]:
        return [
            {
                "url": self._shown_url(t),
                "events": sorted(t.events),
                "pending": t.outbox.qsize(),
                **t.stats.__dict__,
            }
            for t in self._targets()
        ]

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._closed()


class WebhookNotifier(_OutboxNotifier):
    name = "webhook"
    target_word = "webhook"
    config_key = "notifications.webhooks"

    def __init__(self, bus: EventBus, webhooks: list[dict], retries: int = 3, backoff: float = 1.0) -> None:
        super().__init__(bus)
        self.retries = retries
        self.backoff = backoff
        self.hooks = [_Webhook(h["url"], set(h["events"]), h["timeout"]) for h in webhooks]
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def _new_session() -> aiohttp.ClientSession:
        # Bodies go through the daemon's one JSON encoder: a datetime in event data never kills a sender.
        return aiohttp.ClientSession(
            headers={"User-Agent": f"aniworldd/{__version__}"},
            json_serialize=partial(to_json, lenient=True),
        )

    def _targets(self) -> list[_Webhook]:
        return self.hooks

    def _payload(self, event: Event) -> dict:
        return event.envelope()

    async def _opened(self) -> None:
        if self._session is None or self._session.closed:
            self._session = self._new_session()

    def _test_payload(self) -> dict:
        return Event("test", {"message": "aniworldd webhook test"}).envelope()

    async def _closed(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _deliver(self, hook: _Webhook, body: dict) -> bool:
        assert self._session is not None
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                async with self._session.post(
                    hook.url, json=body, timeout=aiohttp.ClientTimeout(total=hook.timeout)
                ) as resp:
                    if resp.status < 400:
                        hook.stats.delivered += 1
                        return True
                    hook.stats.last_error = f"HTTP {resp.status}"
                    if 400 <= resp.status < 500 and resp.status != 429:
                        break  # the receiver refuses this body; retrying will not change its mind
            except (aiohttp.ClientError, TimeoutError) as exc:
                hook.stats.last_error = str(exc) or type(exc).__name__
            if attempt < self.retries:
                await asyncio.sleep(delay)
                delay *= 2
        hook.stats.failed += 1
        log.warning("webhook %s failed: %s", hook.url, hook.stats.last_error)
        return False


# -- Apprise -------------------------------------------------------------------------------------------


def _episode_label(data: dict) -> str:
    season, episode = data.get("season"), data.get("episode")
    if isinstance(season, int) and isinstance(episode, int):
        return episode_label(season, episode)
    return ""


def _series(data: dict) -> str:
    return str(data.get("folder") or data.get("name") or data.get("key") or "a series")


def format_event(event: Event) -> tuple[str, str, str] | None:
    """(title, body, apprise notify type) for a person, or None when the event is not worth a message:
    a failed attempt the daemon retries by itself, a partial rescan after a download."""
    data = event.data if isinstance(event.data, dict) else {}
    what = " ".join(p for p in (_series(data), _episode_label(data)) if p)
    language = f" ({data['language']})" if data.get("language") else ""
    if event.type == DOWNLOAD_COMPLETE:
        return f"Downloaded: {what}", f"{what}{language} is in the library.", "success"
    if event.type == DOWNLOAD_FAILED:
        if data.get("will_retry"):
            return None
        attempts = data.get("attempts")
        tries = f" after {attempts} attempt(s)" if attempts else ""
        reason = data.get("reason") or "unknown reason"
        return f"Download failed: {what}", f"{what}{language} failed{tries}: {reason}", "failure"
    if event.type == NEW_EPISODES:
        episodes = data.get("episodes") or []
        labels = [_episode_label(e) for e in episodes[:5] if isinstance(e, dict)]
        listed = ", ".join(x for x in labels if x)
        more = f" (+{len(episodes) - 5} more)" if len(episodes) > 5 else ""
        body = f"{len(episodes)} new episode(s) of {_series(data)}" + (f": {listed}{more}" if listed else "")
        return f"New episodes: {_series(data)}", body + ".", "info"
    if event.type == SCAN_COMPLETE:
        if data.get("scope") == "partial":
            return None
        unmatched = data.get("unmatched")
        n_unmatched = len(unmatched) if isinstance(unmatched, list) else int(unmatched or 0)
        body = (
            f"{data.get('series', 0)} series, {data.get('episodes', 0)} episodes, "
            f"{data.get('missing_episodes', 0)} missing, {n_unmatched} unmatched folder(s)."
        )
        return "Library scan finished", body, "info"
    if event.type == HEALTH:
        component = data.get("component") or "daemon"
        message = data.get("message") or ""
        if data.get("status") == "ok":
            return f"aniworldd: {component} works again", message or f"{component} is healthy.", "success"
        return f"aniworldd: {component} {data.get('status') or 'problem'}", message or "-", "warning"
    if event.type == "test":
        return "aniworldd test notification", str(data.get("message") or "It works."), "info"
    return None


@dataclass
class _AppriseTarget:
    url: str
    events: set[str]
    client: object
    outbox: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(OUTBOX_SIZE))
    stats: WebhookStats = field(default_factory=WebhookStats)

    @property
    def safe_url(self) -> str:
        """The URL with its secrets (tokens, passwords) masked, for logs, the API and the UI."""
        for service in self.client:  # type: ignore[attr-defined]
            return service.url(privacy=True)
        return self.url.split("://", 1)[0] + "://..."


class AppriseNotifier(_OutboxNotifier):
    """notifications.apprise: each target an Apprise URL plus the events it wants (see format_event)."""

    name = "apprise"
    target_word = "Apprise target"
    config_key = "notifications.apprise"

    def __init__(self, bus: EventBus, targets: list[dict]) -> None:
        super().__init__(bus)
        self.targets: list[_AppriseTarget] = []
        if targets:
            import apprise  # only loaded by those who configure a target

            for t in targets:
                client = apprise.Apprise()
                if not client.add(t["url"]):  # the config schema checked it; keep a clear log if not
                    log.error("apprise: cannot use %s:// target; skipped", t["url"].split("://", 1)[0])
                    continue
                self.targets.append(_AppriseTarget(t["url"], set(t["events"]), client))

    def _targets(self) -> list[_AppriseTarget]:
        return self.targets

    def _payload(self, event: Event) -> tuple[str, str, str] | None:
        return format_event(event)

    def _shown_url(self, target: _AppriseTarget) -> str:
        return target.safe_url

    def _test_payload(self) -> tuple[str, str, str] | None:
        return format_event(Event("test", {"message": "aniworldd can reach this target."}))

    async def _deliver(self, target: _AppriseTarget, message: tuple[str, str, str]) -> bool:
        title, body, notify_type = message
        try:
            # Apprise's own HTTP calls block: a thread keeps the event loop free.
            ok = bool(
                await asyncio.to_thread(
                    target.client.notify,  # type: ignore[attr-defined]
                    title=title,
                    body=body,
                    notify_type=notify_type,
                )
            )
        except Exception as exc:  # a plugin bug must not kill the sender task
            ok = False
            target.stats.last_error = f"{type(exc).__name__}: {exc}"
        if ok:
            target.stats.delivered += 1
            return True
        target.stats.failed += 1
        target.stats.last_error = target.stats.last_error or "delivery failed (see the daemon log)"
        log.warning("apprise %s: delivery of %r failed", target.safe_url, title)
        return False
