"""Webhooks: the bus's events POSTed to user URLs in the WebSocket envelope.

Each webhook has its own bounded outbox and sender task, so a dead endpoint only delays (and eventually
drops) its own deliveries: the daemon and the other webhooks never wait for it.
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
