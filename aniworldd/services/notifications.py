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

import aiohttp

from aniworldd import __version__
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


class WebhookNotifier:
    def __init__(self, bus: EventBus, webhooks: list[dict], retries: int = 3, backoff: float = 1.0) -> None:
        self.bus = bus
        self.retries = retries
        self.backoff = backoff
        self.hooks = [_Webhook(h["url"], set(h["events"]), h["timeout"]) for h in webhooks]
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []
        self._sub = None

    @staticmethod
    def _new_session() -> aiohttp.ClientSession:
        # Bodies go through the daemon's one JSON encoder: a datetime in event data never kills a sender.
        return aiohttp.ClientSession(
            headers={"User-Agent": f"aniworldd/{__version__}"},
            json_serialize=partial(to_json, lenient=True),
        )

    async def start(self) -> None:
        if not self.hooks:
            return
        self._session = self._new_session()
        self._sub = self.bus.subscribe(FORWARDED)
        self._tasks.append(asyncio.create_task(self._route(), name="webhooks-route"))
        for hook in self.hooks:
            self._tasks.append(asyncio.create_task(self._sender(hook), name=f"webhook-{hook.url}"))

    async def _route(self) -> None:
        async for event in self._sub:
            self.enqueue(event)

    def enqueue(self, event: Event) -> None:
        for hook in self.hooks:
            if event.type not in hook.events:
                continue
            if hook.outbox.full():  # drop the oldest: fresh news matters more than old news
                hook.outbox.get_nowait()
                hook.stats.dropped += 1
            hook.outbox.put_nowait(event.envelope())

    async def _sender(self, hook: _Webhook) -> None:
        while True:
            body = await hook.outbox.get()
            await self._deliver(hook, body)

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

    async def test(self, index: int | None = None) -> list[dict]:
        """Send a `test` event now to one webhook (by index) or all; returns per-hook results."""
        if not self.hooks:
            raise BadRequest("no webhooks are configured (notifications.webhooks)")
        if index is not None and not 0 <= index < len(self.hooks):
            raise BadRequest(f"no webhook with index {index}", {"index": index})
        if self._session is None:
            self._session = self._new_session()
        targets = self.hooks if index is None else [self.hooks[index]]
        envelope = Event("test", {"message": "aniworldd webhook test"}).envelope()
        results = []
        for hook in targets:
            ok = await self._deliver(hook, envelope)
            results.append({"url": hook.url, "ok": ok, "error": None if ok else hook.stats.last_error})
        return results

    def status(self) -> list[dict]:
        return [
            {"url": h.url, "events": sorted(h.events), "pending": h.outbox.qsize(), **h.stats.__dict__}
            for h in self.hooks
        ]

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()


# -- Apprise -------------------------------------------------------------------------------------------


def _episode_label(data: dict) -> str:
    season, episode = data.get("season"), data.get("episode")
    if isinstance(season, int) and isinstance(episode, int):
        return f"S{season:02d}E{episode:03d}"
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


class AppriseNotifier:
    """notifications.apprise: each target an Apprise URL plus the events it wants (see format_event)."""

    def __init__(self, bus: EventBus, targets: list[dict]) -> None:
        self.bus = bus
        self.targets: list[_AppriseTarget] = []
        if targets:
            import apprise  # only loaded by those who configure a target

            for t in targets:
                client = apprise.Apprise()
                if not client.add(t["url"]):  # the config schema checked it; keep a clear log if not
                    log.error("apprise: cannot use %s:// target; skipped", t["url"].split("://", 1)[0])
                    continue
                self.targets.append(_AppriseTarget(t["url"], set(t["events"]), client))
        self._tasks: list[asyncio.Task] = []
        self._sub = None

    async def start(self) -> None:
        if not self.targets:
            return
        self._sub = self.bus.subscribe(FORWARDED)
        self._tasks.append(asyncio.create_task(self._route(), name="apprise-route"))
        for i, target in enumerate(self.targets):
            self._tasks.append(asyncio.create_task(self._sender(target), name=f"apprise-{i}"))

    async def _route(self) -> None:
        async for event in self._sub:
            self.enqueue(event)

    def enqueue(self, event: Event) -> None:
        message = format_event(event)
        if message is None:
            return
        for target in self.targets:
            if event.type not in target.events:
                continue
            if target.outbox.full():  # drop the oldest: fresh news matters more than old news
                target.outbox.get_nowait()
                target.stats.dropped += 1
            target.outbox.put_nowait(message)

    async def _sender(self, target: _AppriseTarget) -> None:
        while True:
            message = await target.outbox.get()
            await self._deliver(target, message)

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

    async def test(self, index: int | None = None) -> list[dict]:
        """Send a test notification now to one target (by index) or all; returns per-target results."""
        if not self.targets:
            raise BadRequest("no Apprise targets are configured (notifications.apprise)")
        if index is not None and not 0 <= index < len(self.targets):
            raise BadRequest(f"no Apprise target with index {index}", {"index": index})
        chosen = self.targets if index is None else [self.targets[index]]
        message = format_event(Event("test", {"message": "aniworldd can reach this target."}))
        assert message is not None
        results = []
        for target in chosen:
            target.stats.last_error = None
            ok = await self._deliver(target, message)
            results.append(
                {"url": target.safe_url, "ok": ok, "error": None if ok else target.stats.last_error}
            )
        return results

    def status(self) -> list[dict]:
        return [
            {"url": t.safe_url, "events": sorted(t.events), "pending": t.outbox.qsize(), **t.stats.__dict__}
            for t in self.targets
        ]

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
