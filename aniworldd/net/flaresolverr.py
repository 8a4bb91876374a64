"""FlareSolverr: the *arr ecosystem's standard way past Cloudflare's JS challenge.

FlareSolverr runs a real browser; its v1 API (`POST /v1 {"cmd": "request.get", "url", "maxTimeout"}`)
answers with the page plus the cookies and User-Agent that passed the challenge.  We only need the
latter: the `cf_clearance` cookie is bound to that User-Agent, so both are reused for the host until
a challenge shows up again.  Turnstile captchas need a human and are not sent here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


class FlareSolverrError(Exception):
    """FlareSolverr is unreachable or could not pass the challenge."""


@dataclass(slots=True)
class Clearance:
    user_agent: str
    cookies: dict[str, str] = field(default_factory=dict)


class FlareSolverr:
    """A small client for one FlareSolverr instance (a local service; aiohttp is fine for it)."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.endpoint = url.rstrip("/") + ("" if url.rstrip("/").endswith("/v1") else "/v1")
        self.timeout = max(float(timeout), 10.0)
        self._session: aiohttp.ClientSession | None = None
        self.solved = 0

    async def solve(self, url: str, *, proxy: str | None = None) -> Clearance:
        payload: dict[str, Any] = {"cmd": "request.get", "url": url, "maxTimeout": int(self.timeout * 1000)}
        if proxy:
            payload["proxy"] = {"url": proxy}
        if self._session is None or self._session.closed:
            # The solver drives a browser: allow it its time plus a margin for the answer.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout + 15))
        try:
            async with self._session.post(self.endpoint, json=payload) as resp:
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise FlareSolverrError(f"FlareSolverr at {self.endpoint} failed: {exc}") from None
        if not isinstance(data, dict) or data.get("status") != "ok":
            message = data.get("message") if isinstance(data, dict) else None
            raise FlareSolverrError(f"FlareSolverr: {message or 'no solution'}")
        solution = data.get("solution") or {}
        cookies = {
            str(c["name"]): str(c.get("value", ""))
            for c in solution.get("cookies") or []
            if isinstance(c, dict) and c.get("name")
        }
        agent = solution.get("userAgent")
        if not isinstance(agent, str) or not agent:
            raise FlareSolverrError("FlareSolverr answered without a userAgent")
        self.solved += 1
        return Clearance(user_agent=agent, cookies=cookies)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
