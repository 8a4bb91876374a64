"""This process's place in a cluster: its role, its Redis link and event relay, the elections it stands in.

Two singletons are elected, each with a Redis lock that expires (cluster.leader):
- `jobs` among the workers (and `all` processes): the scheduled refresh, the library watcher and the scan
  at start. Two of them would scan the same share twice and queue the same new episode from two places.
- `mqtt` among the API processes (and `all`): one MQTT bridge, so a command from Home Assistant runs once
  and the broker sees one client, not one per process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aniworldd.cluster.event_relay import RedisEventRelay
from aniworldd.cluster.leader import LeaderLock
from aniworldd.cluster.redis_link import RedisLink
from aniworldd.events import EventBus

Job = Callable[[], Awaitable[None]]

#: Seconds an elected process holds its lock without renewing it (another takes over after this).
LEADER_TTL = 10.0


class ClusterNode:
    def __init__(self, role: str, link: RedisLink, bus: EventBus) -> None:
        self.role = role
        self.link = link
        self.relay = RedisEventRelay(link, bus)
        self.elections: dict[str, LeaderLock] = {}

    @property
    def node(self) -> str:
        return self.link.node

    @property
    def runs_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def runs_downloads(self) -> bool:
        return self.role in ("all", "worker")

    async def start(self) -> None:
        await self.relay.start()

    async def stand(self, name: str, on_elected: Job, on_deposed: Job) -> None:
        """Stand in election `name`: `on_elected` runs when this process wins it, `on_deposed` when it
        loses it again (Redis away longer than the lock lives, or another process took over)."""

        lock = LeaderLock(self.link, name, ttl=LEADER_TTL, on_elected=on_elected, on_deposed=on_deposed)
        self.elections[name] = lock
        await lock.start()

    def leading(self) -> list[str]:
        """The elections this process holds now."""
        return sorted(name for name in self.elections if self.leads(name))

    def leads(self, name: str) -> bool:
        lock = self.elections.get(name)
        return lock is not None and lock.is_leader

    async def state(self) -> dict[str, Any]:
        """For /health and /api/system/status."""
        return {
            "role": self.role,
            "node": self.node,
            "redis": {"url": self.link.safe_url, "connected": await self.link.ping(), **self.relay.state()},
            "leader": self.leading(),
        }

    async def close(self) -> None:
        for lock in list(self.elections.values()):
            await lock.close()
        self.elections.clear()
        await self.relay.close()
        await self.link.close()
