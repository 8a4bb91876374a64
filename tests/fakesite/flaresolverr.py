"""A stand-in for FlareSolverr, speaking its documented v1 API, for tests where the real one cannot run.

Models: FlareSolverr (the *arr ecosystem's standard) is a small HTTP service that opens a URL in a real
browser, waits until Cloudflare's JS challenge has run, and hands back the page, the cookies
(`cf_clearance`) and the browser's User-Agent; a client then reuses cookie + User-Agent for its own
requests until they stop working.  API (as in FlareSolverr 3.x):

    POST /v1  {"cmd": "request.get", "url": "...", "maxTimeout": 60000, ["proxy": {"url": ...}]}
    -> 200 {"status": "ok", "message": "Challenge solved!" | "Challenge not detected!",
            "solution": {"url", "status", "headers", "response",
                         "cookies": [{"name", "value", "domain", "path", "expires", "size",
                                      "httpOnly", "secure", "session", "sameSite"}],
                         "userAgent"},
            "startTimestamp", "endTimestamp", "version"}
    -> 500 {"status": "error", "message": "Error: ...", "startTimestamp", "endTimestamp", "version"}
    GET /  -> {"msg": "FlareSolverr is ready!", "version", "userAgent"};  GET /health -> {"status": "ok"}

How: instead of a browser it fetches the URL itself with curl_cffi impersonating Chrome (so it passes
the TLS gate) and a fixed browser User-Agent (`USER_AGENT`), trusting the test CA and resolving the
tests' names through `state.dns_names` (like the browser would through the user's DNS).  When the
answer is the challenge page, it does what the page's script would do in a browser: reads the
`cf_clearance=<value>` the script sets, and fetches again with that cookie.  Other commands
(`sessions.*`, `request.post`) answer the error form.  Names outside `state.dns_names` and addresses
off loopback fail like an unresolvable name in a browser (the tests never leave this machine).
The real FlareSolverr on this machine: see tests/unit/test_fakesite_obstacles.py's module docstring
and real_flaresolverr.py.
"""

from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .state import FakeSiteState

VERSION = "3.3.21"
#: The browser User-Agent the stand-in reports and fetches with (a desktop Chrome on Linux).
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
_CLEARANCE = re.compile(r"cf_clearance=([^;\"'\s]+)")
_CHALLENGE_TITLES = ("<title>Just a moment...</title>", "<title>DDoS-Guard</title>")


class SolveError(Exception):
    """The request could not be solved; the message goes into the error answer."""


class FakeFlareSolverr:
    """`await fs.start()`; clients POST to `fs.url + "/v1"`; `await fs.stop()`."""

    def __init__(
        self, state: FakeSiteState | None = None, ca_file: Path | str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.state = state
        self.ca_file = str(ca_file) if ca_file else None
        self.host = host
        self.port = 0
        #: One dict per /v1 call: {"cmd", "url", "status", "message"}.
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL (`http://127.0.0.1:PORT`), as users configure it; the API is at `/v1`."""
        return f"http://{self.host}:{self.port}"

    async def start(self, port: int = 0) -> FakeFlareSolverr:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/health", self._health)
        app.router.add_post("/v1", self._v1)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        server = site._server  # noqa: SLF001 - the bound port when port=0
        self.port = server.sockets[0].getsockname()[1] if server and server.sockets else port
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"msg": "FlareSolverr is ready!", "version": VERSION, "userAgent": USER_AGENT}
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _v1(self, request: web.Request) -> web.Response:
        start = int(time.time() * 1000)
        entry: dict[str, Any] = {"cmd": None, "url": None}
        try:
            try:
                body = await request.json()
            except ValueError:
                raise SolveError("Request body is not valid JSON.") from None
            if not isinstance(body, dict):
                raise SolveError("Request body must be a JSON object.")
            entry.update(cmd=body.get("cmd"), url=body.get("url"))
            cmd = body.get("cmd")
            if not cmd:
                raise SolveError("Request parameter 'cmd' is mandatory.")
            if cmd != "request.get":
                raise SolveError(f"Request parameter 'cmd' = '{cmd}' is invalid.")
            url = body.get("url")
            if not isinstance(url, str) or not url:
                raise SolveError("Request parameter 'url' is mandatory in 'request.get' command.")
            try:
                max_seconds = max(1.0, float(body.get("maxTimeout") or 60000) / 1000)
            except (TypeError, ValueError):
                max_seconds = 60.0
            proxy = body.get("proxy") if isinstance(body.get("proxy"), dict) else None
            message, solution = await self._solve(url, max_seconds, proxy.get("url") if proxy else None)
        except SolveError as exc:
            entry.update(status="error", message=f"Error: {exc}")
            self.requests.append(entry)
            return web.json_response(
                {
                    "status": "error",
                    "message": f"Error: {exc}",
                    "startTimestamp": start,
                    "endTimestamp": int(time.time() * 1000),
                    "version": VERSION,
                },
                status=500,
            )
        entry.update(status="ok", message=message)
        self.requests.append(entry)
        return web.json_response(
            {
                "status": "ok",
                "message": message,
                "solution": solution,
                "startTimestamp": start,
                "endTimestamp": int(time.time() * 1000),
                "version": VERSION,
            }
        )

    async def _solve(self, url: str, max_seconds: float, proxy: str | None) -> tuple[str, dict[str, Any]]:
        from curl_cffi import CurlOpt
        from curl_cffi.requests import AsyncSession
        from curl_cffi.requests.exceptions import RequestException

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SolveError(f"Error solving the challenge. Invalid URL: {url}")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        options: dict[Any, Any] = {}
        if self.ca_file:
            options[CurlOpt.CAINFO] = self.ca_file
        address = self.state.dns_names.get(host.lower()) if self.state is not None else None
        if address:
            options[CurlOpt.RESOLVE] = [f"{host}:{port}:{address}"]
        if proxy is None:
            _only_loopback(address or host, url)
        headers = {"User-Agent": USER_AGENT, "Accept-Language": "en-US,en;q=0.9"}
        cookies: dict[str, str] = {}
        message = "Challenge not detected!"
        try:
            async with AsyncSession(
                impersonate="chrome", curl_options=options, proxy=proxy, timeout=max_seconds
            ) as session:
                resp = await session.get(url, headers=headers)
                if _is_challenge(resp.status_code, resp.text):
                    match = _CLEARANCE.search(resp.text)
                    if match is None:
                        raise SolveError(
                            "Error solving the challenge. No clearance script on the challenge page."
                        )
                    cookies["cf_clearance"] = match.group(1)
                    resp = await session.get(url, headers=headers, cookies=cookies)
                    if _is_challenge(resp.status_code, resp.text):
                        raise SolveError(
                            "Error solving the challenge. The challenge came back after the clearance."
                        )
                    message = "Challenge solved!"
        except RequestException as exc:
            raise SolveError(f"Error solving the challenge. {exc}") from None
        expires = time.time() + 1800
        solution = {
            "url": str(resp.url),
            "status": resp.status_code,
            "headers": {k.lower(): v for k, v in resp.headers.items()},
            "response": resp.text,
            "cookies": [
                {
                    "name": name,
                    "value": value,
                    "domain": host,
                    "path": "/",
                    "expires": expires,
                    "size": len(name) + len(value),
                    "httpOnly": False,
                    "secure": parts.scheme == "https",
                    "session": False,
                    "sameSite": "Lax",
                }
                for name, value in cookies.items()
            ],
            "userAgent": USER_AGENT,
        }
        return message, solution


def _only_loopback(address: str, url: str) -> None:
    """Keep the stand-in on this machine: names outside the fake's table do not resolve for it."""
    if address.lower() == "localhost":
        return
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        raise SolveError(f"Error solving the challenge. net::ERR_NAME_NOT_RESOLVED at {url}") from None
    if not ip.is_loopback:
        raise SolveError(f"Error solving the challenge. net::ERR_CONNECTION_REFUSED at {url}")


def _is_challenge(status: int, text: str) -> bool:
    return status in (403, 503) and any(title in text for title in _CHALLENGE_TITLES)
