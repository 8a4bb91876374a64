"""A real aniworldd cluster for the end-to-end tests and bench/cluster.py: api and worker processes
(`python -m aniworldd run --role ...`) sharing one config, one PostgreSQL database, one Redis, one data_dir
and one temp_dir, downloading from the look-alike site (tests/fakesite) served by the caller's event loop.

Why a harness of its own: the cluster's promises (each episode downloaded once, events reach every api
process, a dead worker's item finishes elsewhere) only hold or break between separate processes, so every
node here is a real process, killed for real (SIGKILL of its process group and its download children).
Every process started here carries a tag in its environment; `close()` kills whatever still carries it,
so no test leaves a daemon, yt-dlp or ffmpeg behind even after a failed assertion.

The site listens on one port per worker (`ClusterSite.origin_for`), so its media log tells which worker
fetched which file: a worker's provider URLs name its own port (env override, the config stays shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.conftest import free_port
from tests.fakesite.hosters import add_routes
from tests.fakesite.sites import add_site_routes
from tests.fakesite.state import FakeSiteState

ROOT = Path(__file__).resolve().parents[2]
UA = "aniworldd-test"
PASSWORD = "cluster-test-password"
#: Environment variable every process started here carries (value: the cluster's tag); not ANIWORLDD_*, so
#: the config loader ignores it. Children (yt-dlp, ffmpeg) inherit it, which is how close() finds them.
TAG_ENV = "AW_CLUSTER_TEST_TAG"
#: Set (to anything) to start every node as `--role all` (Redis + PostgreSQL, no roles): for developing
#: the harness against a daemon without roles, and for comparing with one.
FORCE_ALL_ENV = "AW_CLUSTER_FORCE_ALL"


# ---- the look-alike site, one port per worker -------------------------------------------------------------


@dataclass
class MediaRequest:
    port: int
    method: str
    path: str
    range: str | None
    at: float


class ClusterSite:
    """The fake aniworld + hosters on as many loopback ports as asked for, one shared FakeSiteState."""

    def __init__(self, state: FakeSiteState) -> None:
        self.state = state
        self.media: list[MediaRequest] = []
        self.runner: web.AppRunner | None = None
        self._origins: dict[str, str] = {}

    async def start(self) -> ClusterSite:
        @web.middleware
        async def log_media(request: web.Request, handler):
            if request.path.startswith("/media/"):
                sock = request.transport.get_extra_info("sockname") if request.transport else None
                port = sock[1] if sock else 0
                rng = request.headers.get("Range")
                self.media.append(MediaRequest(port, request.method, request.path, rng, time.time()))
            return await handler(request)

        app = web.Application(middlewares=[log_media])
        add_site_routes(app, self.state)
        add_routes(app, self.state)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        return self

    async def origin_for(self, name: str) -> str:
        """http://127.0.0.1:PORT of a listener of `name`'s own (made on first use)."""
        if name not in self._origins:
            assert self.runner is not None, "start() first"
            tcp = web.TCPSite(self.runner, "127.0.0.1", 0)
            await tcp.start()
            port = tcp._server.sockets[0].getsockname()[1]  # noqa: SLF001
            self._origins[name] = f"http://127.0.0.1:{port}"
        return self._origins[name]

    def port_names(self) -> dict[int, str]:
        return {int(origin.rsplit(":", 1)[1]): name for name, origin in self._origins.items()}

    def fetches(self, code: str) -> list[MediaRequest]:
        """Media requests of one hoster file code (`/media/<hoster>-<code>.mp4`)."""
        return [m for m in self.media if m.path.endswith(f"-{code}.mp4")]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


# ---- the processes ---------------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    role: str
    port: int
    log: Path
    proc: subprocess.Popen
    #: Every pid seen below this node (download children live in process groups of their own).
    descendants: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def descendants(pid: int) -> set[int]:
    kids, found, todo = _children(), set(), [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def tagged_pids(tag: str) -> list[int]:
    """Processes whose environment carries TAG_ENV=tag (ours and their children, however re-parented)."""
    needle = f"{TAG_ENV}={tag}".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry.name}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in a session of its own (so a kill reaches its group), its output appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )


def _kill_group_and(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class Cluster:
    """One shared config and the processes started from it.

    `await start(role)` starts a node and waits for its /health; `kill(node)` is a machine dying (SIGKILL
    to the node and its download children); `await stop(node)` is a clean SIGTERM shutdown; `await close()`
    stops everything and sweeps up whatever still carries the cluster's tag.
    """

    def __init__(
        self,
        root: Path,
        pg_url: str,
        redis_url: str,
        site: ClusterSite,
        *,
        max_concurrent: int = 2,
        lease: float = 3.0,
        extra: str = "",
    ) -> None:
        self.root = root
        self.pg_url = pg_url
        self.redis_url = redis_url
        self.site = site
        self.tag = secrets.token_hex(8)
        self.nodes: list[Node] = []
        self.data_dir = root / "data"
        self.library = root / "library"
        self.temp_dir = root / "tmp"
        self.config = root / "config.yaml"
        #: downloads.max_concurrent: for the whole cluster (every worker claims within it)
        self.max_concurrent = max_concurrent
        #: cluster.lease: seconds until a dead worker's item goes to another
        self.lease = lease
        #: more YAML appended to the config (other sections)
        self.extra = extra
        self._tokens: dict[str, str] = {}
        self._http: aiohttp.ClientSession | None = None

    # -- setup -------------------------------------------------------------------------------------------

    async def write_config(self) -> Path:
        origin = await self.site.origin_for("shared")
        self.root.mkdir(parents=True, exist_ok=True)
        self.library.mkdir(exist_ok=True)
        self.temp_dir.mkdir(exist_ok=True)
        self.config.write_text(
            f"data_dir: {self.data_dir}\n"
            "server: {host: 127.0.0.1, port: 8080}\n"
            f"library: {{roots: [{self.library}], watch: false, scan_on_start: false, write_nfo: false}}\n"
            f"downloads: {{autostart: true, max_concurrent: {self.max_concurrent}, min_free_gb: 0, "
            f"temp_dir: {self.temp_dir}, language: [ger-dub], hosters: [Vidoza], retry_backoff: 0.2, "
            "warm_start: 0}\n"
            f"provider: {{aniworld_url: {origin}, sto_url: {origin}, user_agent: {UA}, min_interval: 0, "
            "retries: 0, timeout: 20, refresh_interval: 24h}\n"
            f"database: {{url: '{self.pg_url}'}}\n"
            f"cluster: {{redis_url: '{self.redis_url}', lease: {self.lease}}}\n"
            "logging: {level: INFO}\n"
            "mqtt: {host: null}\n" + self.extra
        )
        return self.config

    def seed(self, *series: Any) -> None:
        """Store the series and their episodes in the shared database, as a provider refresh would have."""
        from aniworldd.db import Store
        from tests.integration.download_helpers import seed

        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = Store(self.pg_url, self.data_dir)
        try:
            for s in series:
                seed(store, s)
        finally:
            store.close()

    # -- processes ---------------------------------------------------------------------------------------

    async def start(self, role: str, name: str | None = None, *, wait: bool = True, **env: str) -> Node:
        if not self.config.exists():
            await self.write_config()
        name = name or f"{role}{sum(n.role == role for n in self.nodes) + 1}"
        port = free_port()
        log = self.root / f"{name}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")}
        full_env.update(
            {
                TAG_ENV: self.tag,
                "ANIWORLDD_SERVER__PORT": str(port),
                "ANIWORLDD_CLUSTER__NODE": name,
                "ANIWORLDD_MASTER_PASSWORD": PASSWORD,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if role != "api":  # it downloads: its own site port tells its requests apart
            origin = await self.site.origin_for(name)
            full_env["ANIWORLDD_PROVIDER__ANIWORLD_URL"] = origin
            full_env["ANIWORLDD_PROVIDER__STO_URL"] = origin
        full_env.update(env)
        cmd = [sys.executable, "-m", "aniworldd", "run", "-c", str(self.config)]
        if role != "all" and not os.environ.get(FORCE_ALL_ENV):
            cmd[4:4] = ["--role", role]
        node = Node(name, role, port, log, _spawn(cmd, full_env, log))
        self.nodes.append(node)
        if wait:
            await self.wait_healthy(node)
        return node

    async def start_many(self, roles: Iterable[str]) -> list[Node]:
        nodes = [await self.start(role, wait=False) for role in roles]
        await asyncio.gather(*(self.wait_healthy(n) for n in nodes))
        return nodes

    async def wait_healthy(self, node: Node, within: float = 60.0) -> dict:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not node.alive:
                raise RuntimeError(f"{node.name} exited ({node.proc.returncode}):\n{node.tail()}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
                async with self.http.get(f"{node.url}/health", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return await r.json()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{node.name} not healthy after {within:.0f}s:\n{node.tail()}")

    def track(self) -> None:
        """Remember every node's current children, so a later kill reaches the ones it started."""
        for node in self.nodes:
            if node.alive:
                node.descendants |= descendants(node.proc.pid)

    def kill(self, node: Node, *, children: bool = True) -> None:
        """The node dies at once (SIGKILL): with the download processes it started (a machine dying), or
        with `children=False` alone (`kill -9 PID`: its children must then end by themselves)."""
        self.track()
        _kill_group_and([node.proc.pid, *(node.descendants if children else ())])
        node.proc.wait(10)

    def alive_children(self, node: Node) -> list[int]:
        """The processes seen below `node` (see track()) that still run."""
        alive = []
        for pid in node.descendants:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2] != "Z":
                alive.append(pid)
        return alive

    async def stop(self, node: Node, grace: float = 20.0) -> int | None:
        """A clean shutdown (SIGTERM); SIGKILL after `grace` seconds."""
        if node.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(node.proc.wait), grace)
            except TimeoutError:
                self.kill(node)
        return node.proc.returncode

    async def close(self) -> None:
        self.track()
        await asyncio.gather(*(self.stop(n, 10.0) for n in self.nodes), return_exceptions=True)
        for node in self.nodes:
            _kill_group_and(node.descendants)
        for _ in range(3):
            left = tagged_pids(self.tag)
            if not left:
                break
            _kill_group_and(left)
            await asyncio.sleep(0.2)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def logs(self, chars: int = 2500) -> str:
        return "\n".join(f"==== {n.name} (rc={n.proc.poll()}) ====\n{n.tail(chars)}" for n in self.nodes)

    # -- HTTP -------------------------------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def login(self, node: Node) -> str:
        async with self.http.post(f"{node.url}/api/auth/login", json={"password": PASSWORD}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"login on {node.name}: {r.status} {body}")
        return body.get("access_token") or body["token"]

    async def token(self, node: Node) -> str:
        """A login token of `node` (cached per node): tests that are not about shared auth log in where
        they talk, so they do not fail for the auth's sake; test c checks that tokens cross nodes."""
        if node.name not in self._tokens:
            self._tokens[node.name] = await self.login(node)
        return self._tokens[node.name]

    async def call(
        self, node: Node, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or await self.token(node)}"}
        async with self.http.request(method, f"{node.url}{path}", json=body, headers=headers) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def queue(self, node: Node, key: str, episodes: Iterable[tuple[int, int]]) -> list[int]:
        """POST /api/queue/add; the new items' ids."""
        body = {"serie_id": key, "episodes": [{"season": s, "episode": e} for s, e in episodes]}
        status, answer = await self.call(node, "POST", "/api/queue/add", body=body)
        if status != 201:
            raise RuntimeError(f"queue/add on {node.name}: {status} {answer}")
        return list(answer["added_items"])

    async def queue_status(self, node: Node) -> dict:
        status, answer = await self.call(node, "GET", "/api/queue/status")
        if status != 200:
            raise RuntimeError(f"queue/status on {node.name}: {status} {answer}")
        return answer

    async def ws(self, node: Node, rooms: str = "downloads,download_progress", token: str | None = None):
        return await WsClient.connect(self.http, node, token or await self.token(node), rooms)


async def until(ready: Callable[[], bool], within: float, interval: float = 0.05) -> bool:
    """Poll `ready` until it holds (True) or `within` seconds passed (False)."""
    deadline = time.monotonic() + within
    while True:
        if ready():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


# ---- a WebSocket client that keeps everything it received -----------------------------------------------


def event_time(message: dict) -> float:
    """The envelope's `timestamp` (ISO-8601 UTC, milliseconds, `Z`) as epoch seconds."""
    return datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00")).timestamp()


class WsClient:
    """A /ws/connect client; `messages` holds (receipt time, message) of everything received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, node: Node) -> None:
        self.ws = ws
        self.node = node
        self.messages: list[tuple[float, dict]] = []
        self.closed: tuple[int | None, str] | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, node: Node, token: str, rooms: str) -> WsClient:
        ws = await http.ws_connect(f"{node.url}/ws/connect?token={token}&rooms={rooms}", heartbeat=None)
        client = cls(ws, node)
        await client.barrier()
        return client

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.messages.append((time.time(), json.loads(msg.data)))
                    self._changed.set()
        finally:
            self.closed = (self.ws.close_code, "")
            self._changed.set()

    async def barrier(self, within: float = 10.0) -> None:
        """A ping answered: the rooms asked for at connect are joined."""
        seen = len(self.pongs())
        await self.ws.send_json({"action": "ping"})
        await self.wait(lambda: len(self.pongs()) > seen, within, "pong")

    def pongs(self) -> list[dict]:
        return [m for _, m in self.messages if m.get("type") == "pong"]

    def of(self, type_: str) -> list[dict]:
        return [m for _, m in self.messages if m.get("type") == type_]

    async def wait(self, ready: Callable[[], bool], within: float, what: str = "condition") -> None:
        deadline = time.monotonic() + within
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"WebSocket client on {self.node.name}: no {what} within {within:.0f}s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
            if self.closed is not None and not ready():
                raise ConnectionError(f"WebSocket to {self.node.name} closed ({self.closed}) before {what}")

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
