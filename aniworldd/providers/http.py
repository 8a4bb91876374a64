"""The one HTTP client every provider and hoster request goes through.

Why one place: being polite (per-host concurrency cap and minimum spacing), being robust (timeouts,
retries with exponential backoff) and telling the user *why* something failed (blocked / not found /
unreachable) are the same for every page, and the hoster resolvers reuse the same session and cookies.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from yarl import URL

from aniworldd.providers.base import BlockedError, NotFoundError, ProviderError, UnreachableError

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)

#: Bodies are only searched this far for challenge markers (they sit in the head).
_SNIFF_BYTES = 64 * 1024

_CHALLENGE_MARKERS = (
    ("<title>just a moment", 'Cloudflare challenge ("Just a moment...")'),
    ("cf-chl", "Cloudflare challenge"),
    ("cf_chl_opt", "Cloudflare challenge"),
    ("/cdn-cgi/challenge-platform", "Cloudflare challenge"),
    ("attention required! | cloudflare", "Cloudflare block page"),
    ("ddos-guard", "DDoS-Guard challenge"),
)
_CAPTCHA_MARKERS = ("g-recaptcha", "h-captcha", "cf-turnstile", "captcha")


@dataclass(slots=True)
class Page:
    """A fetched response, fully read (the connection is already released)."""

    url: str
    status: int
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)
    location: str | None = None

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise ProviderError(f"{self.url}: expected JSON, got {self.text[:80]!r}") from exc


def challenge_reason(status: int, headers: Mapping[str, str], text: str) -> str | None:
    """Why this response is an anti-bot wall rather than the page we asked for, or None."""
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return "Cloudflare challenge"
    head = text[:_SNIFF_BYTES].lower()
    for marker, reason in _CHALLENGE_MARKERS:
        if marker in head:
            return reason
    if status in (403, 429, 503):
        for marker in _CAPTCHA_MARKERS:
            if marker in head:
                return "captcha page"
    else:
        # A normal page may mention a captcha widget somewhere; only a captcha *page* counts.
        start = head.find("<title")
        title = head[start : head.find("</title>", start)] if start >= 0 else ""
        if "captcha" in title or "robot" in title:
            return "captcha page"
    return None


class _HostGate:
    """At most `limit` requests in flight to one host and `interval` seconds between request starts."""

    def __init__(self, limit: int, interval: float, clock: Callable[[], float], sleep) -> None:
        self.sem = asyncio.Semaphore(limit)
        self.lock = asyncio.Lock()
        self.interval = interval
        self.last_start: float | None = None
        self._clock = clock
        self._sleep = sleep

    async def __aenter__(self) -> None:
        await self.sem.acquire()
        try:
            if self.interval > 0:
                async with self.lock:
                    now = self._clock()
                    if self.last_start is not None:
                        wait = self.last_start + self.interval - now
                        if wait > 0:
                            await self._sleep(wait)
                            now = self._clock()
                    self.last_start = now
        except BaseException:
            self.sem.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.sem.release()


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, reason: str, delay: float | None = None, blocked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.blocked = blocked


class HttpClient:
    """Shared aiohttp session with per-host limits, retries, a GET page cache and error mapping.

    Plain constructor values (or `from_config(provider_cfg)`); `sleep` and `clock` can be injected
    so tests can check backoff and cache expiry without waiting.
    """

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 20.0,
        retries: int = 3,
        max_concurrent: int = 2,
        min_interval: float = 0.5,
        cache_ttl: float = 600.0,
        cache_size: int = 256,
        backoff: float = 1.0,
        backoff_max: float = 30.0,
        jitter: float = 0.1,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.user_agent = user_agent
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.max_concurrent = int(max_concurrent)
        self.min_interval = max(0.0, float(min_interval))
        self.cache_ttl = max(0.0, float(cache_ttl))
        self.cache_size = max(1, int(cache_size))
        self.backoff = max(0.0, float(backoff))
        self.backoff_max = float(backoff_max)
        self.jitter = max(0.0, float(jitter))
        self._sleep = sleep
        self._clock = clock
        self._session = session
        self._own_session = session is None
        self._gates: dict[str, _HostGate] = {}
        self._cache: OrderedDict[str, tuple[float, Page]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[Page]] = {}
        self.stats = {"requests": 0, "cache_hits": 0, "retries": 0, "errors": 0}

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], **overrides: Any) -> HttpClient:
        """Build from the `provider` config section (missing keys fall back to the defaults)."""
        kwargs: dict[str, Any] = {}
        for name in ("user_agent", "timeout", "retries", "max_concurrent", "min_interval", "cache_ttl"):
            if cfg.get(name) is not None:
                kwargs[name] = cfg[name]
        kwargs.update(overrides)
        return cls(**kwargs)

    # -- session ---------------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session (created on first use, inside the running loop); hoster resolvers reuse it."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={
                    "User-Agent": self.user_agent,
                    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                    "Accept-Language": "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7",
                },
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
            self._own_session = True
        return self._session

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        self._inflight.clear()
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- cache -----------------------------------------------------------------------------------

    def invalidate(self, url: str | None = None) -> None:
        """Forget one cached page, or all of them."""
        if url is None:
            self._cache.clear()
        else:
            self._cache.pop(url, None)

    def _cached(self, url: str) -> Page | None:
        entry = self._cache.get(url)
        if entry is None:
            return None
        expires, page = entry
        if self._clock() >= expires:
            del self._cache[url]
            return None
        self._cache.move_to_end(url)
        return page

    def _store(self, url: str, page: Page) -> None:
        if self.cache_ttl <= 0:
            return
        self._cache[url] = (self._clock() + self.cache_ttl, page)
        self._cache.move_to_end(url)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- public requests -------------------------------------------------------------------------

    async def get(
        self, url: str, *, use_cache: bool = True, headers: Mapping[str, str] | None = None
    ) -> Page:
        """GET a page (following redirects); cached for `cache_ttl`, concurrent GETs share one request."""
        cacheable = use_cache and self.cache_ttl > 0 and not headers
        if cacheable:
            hit = self._cached(url)
            if hit is not None:
                self.stats["cache_hits"] += 1
                return hit
            task = self._inflight.get(url)
            if task is None:
                task = asyncio.ensure_future(self._request("GET", url))
                self._inflight[url] = task
                task.add_done_callback(lambda t, u=url: self._finish_inflight(u, t))
            else:
                self.stats["cache_hits"] += 1
            return await asyncio.shield(task)
        page = await self._request("GET", url, headers=headers)
        if use_cache and self.cache_ttl > 0 and not headers:
            self._store(url, page)
        return page

    def _finish_inflight(self, url: str, task: asyncio.Task[Page]) -> None:
        if self._inflight.get(url) is task:
            del self._inflight[url]
        if not task.cancelled() and task.exception() is None:
            self._store(url, task.result())

    async def post(
        self, url: str, data: Mapping[str, str], *, headers: Mapping[str, str] | None = None
    ) -> Page:
        """POST a form (never cached)."""
        return await self._request("POST", url, data=dict(data), headers=headers)

    async def get_redirect(self, url: str, *, headers: Mapping[str, str] | None = None) -> Page:
        """GET without following redirects; `page.location` is the absolute Location (None if none)."""
        return await self._request("GET", url, headers=headers, follow=False)

    # -- core ------------------------------------------------------------------------------------

    def _gate(self, url: str) -> _HostGate:
        host = urlsplit(url).netloc.lower()
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = _HostGate(
                self.max_concurrent, self.min_interval, self._clock, self._sleep
            )
        return gate

    def backoff_delay(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based): backoff * 2**attempt, capped, plus jitter."""
        delay = min(self.backoff * (2**attempt), self.backoff_max)
        if self.jitter:
            delay += random.uniform(0, delay * self.jitter)
        return delay

    async def _request(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        follow: bool = True,
    ) -> Page:
        try:
            target = URL(url)
        except (ValueError, TypeError) as exc:
            raise ProviderError(f"invalid URL {url!r}") from exc
        if target.scheme not in ("http", "https") or not target.host:
            raise ProviderError(f"invalid URL {url!r}")
        last: _Retry | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
                delay = self.backoff_delay(attempt - 1)
                if last is not None and last.delay is not None:
                    delay = min(max(delay, last.delay), self.backoff_max)
                log.info("retrying %s %s in %.2fs (%s)", method, url, delay, last.reason if last else "")
                await self._sleep(delay)
            try:
                return await self._attempt(method, url, target, data, headers, follow)
            except _Retry as retry:
                last = retry
        self.stats["errors"] += 1
        assert last is not None
        tries = self.retries + 1
        if last.blocked:
            raise BlockedError(f"{_host(url)}: {last.reason} (after {tries} attempts)")
        raise UnreachableError(f"{_host(url)} unreachable: {last.reason} (after {tries} attempts)")

    async def _attempt(
        self,
        method: str,
        url: str,
        target: URL,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        follow: bool,
    ) -> Page:
        async with self._gate(url):
            self.stats["requests"] += 1
            try:
                async with self.session.request(
                    method, target, data=data, headers=headers, allow_redirects=follow
                ) as resp:
                    body = await resp.read()
                    text = _decode(body, resp.charset)
                    status = resp.status
                    final_url = str(resp.url)
                    resp_headers = {k.lower(): v for k, v in resp.headers.items()}
            except TimeoutError as exc:
                raise _Retry(f"timeout after {self.timeout:g}s") from exc
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                raise _Retry(f"{type(exc).__name__}: {exc}") from exc
            except aiohttp.ClientResponseError as exc:  # e.g. too many redirects, bad headers
                raise ProviderError(f"{_host(url)}: {exc}") from exc
        location = None
        if not follow and status in (301, 302, 303, 307, 308) and "location" in resp_headers:
            location = urljoin(final_url, resp_headers["location"])
        page = Page(url=final_url, status=status, text=text, headers=resp_headers, location=location)
        self._classify(url, page)
        return page

    def _classify(self, url: str, page: Page) -> None:
        """Raise the right error for a non-successful or challenge response; retryable ones as _Retry."""
        status = page.status
        reason = challenge_reason(status, page.headers, page.text)
        if status == 429:
            raise _Retry("rate limited (HTTP 429)", delay=_retry_after(page.headers), blocked=True)
        if reason is not None and (status in (403, 503) or status < 300):
            raise BlockedError(f"{_host(url)} blocked the request: {reason} (HTTP {status})")
        if status == 403:
            raise BlockedError(f"{_host(url)} refused the request (HTTP 403)")
        if status in (404, 410):
            raise NotFoundError(f"not found: {url} (HTTP {status})")
        if status >= 500:
            raise _Retry(f"HTTP {status}", delay=_retry_after(page.headers))
        if status >= 400:
            raise ProviderError(f"{_host(url)} answered HTTP {status} for {url}")


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
