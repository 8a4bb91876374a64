"""The leader lock on a real Redis: one holder at a time, hand-over on close, a leader that cannot reach
Redis steps down before its lease runs out, and a lock that is not ours is never released."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aniworldd.cluster.leader import LeaderLock
from aniworldd.cluster.redis_link import RedisLink

TTL = 1.0


class Contender:
    def __init__(self, url: str, prefix: str, node: str) -> None:
        self.link = RedisLink(url, prefix=prefix, node=node)
        self.calls: list[str] = []
        self.lock = LeaderLock(
            self.link, "worker", ttl=TTL, on_elected=self._elected, on_deposed=self._deposed
        )

    async def _elected(self) -> None:
        self.calls.append("elected")

    async def _deposed(self) -> None:
        self.calls.append("deposed")

    async def close(self) -> None:
        await self.lock.close()
        await self.link.close()


@asynccontextmanager
async def contenders(url: str, *nodes: str) -> AsyncIterator[list[Contender]]:
    prefix = f"t{secrets.token_hex(4)}"
    started = [Contender(url, prefix, node) for node in nodes]
    try:
        for c in started:
            await c.lock.start()
        yield started
    finally:
        for c in started:
            await c.close()


async def until(check: Callable[[], bool], within: float = 10.0, *, never_two: list[Contender] = ()) -> None:
    """Wait for `check`; meanwhile there must never be two leaders among `never_two`."""
    deadline = time.monotonic() + within
    while not check():
        assert sum(c.lock.is_leader for c in never_two) <= 1, "two leaders at once"
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def leaders(group: list[Contender]) -> list[Contender]:
    return [c for c in group if c.lock.is_leader]


async def test_exactly_one_of_three_leads(redis_server):
    async with contenders(redis_server.url, "a", "b", "c") as group:
        await until(lambda: len(leaders(group)) == 1, never_two=group)
        end = time.monotonic() + 3 * TTL  # through several renewals
        await until(lambda: time.monotonic() > end, never_two=group)
        (leader,) = leaders(group)
        assert leader.calls == ["elected"]
        assert await group[0].lock.holder() == leader.link.node
        assert all(c.calls == [] for c in group if c is not leader)


async def test_the_next_one_takes_over_when_the_leader_closes(redis_server):
    async with contenders(redis_server.url, "a", "b") as group:
        await until(lambda: len(leaders(group)) == 1, never_two=group)
        (first,) = leaders(group)
        (other,) = [c for c in group if c is not first]
        await first.lock.close()
        assert first.calls == ["elected", "deposed"]  # its duties stop before the lock is handed back
        await until(lambda: other.lock.is_leader, within=3 * TTL, never_two=group)
        assert await other.lock.holder() == other.link.node


async def test_a_leader_without_redis_steps_down_and_one_is_elected_when_it_is_back(redis_server):
    async with contenders(redis_server.url, "a", "b") as group:
        await until(lambda: len(leaders(group)) == 1, never_two=group)
        (first,) = leaders(group)
        redis_server.stop()
        await until(lambda: not first.lock.is_leader, within=3 * TTL)
        assert first.calls == ["elected", "deposed"]
        with_redis_gone = time.monotonic() + TTL
        await until(lambda: time.monotonic() > with_redis_gone)
        assert leaders(group) == []
        redis_server.start()
        await until(lambda: len(leaders(group)) == 1, never_two=group)


async def test_a_lost_lock_deposes_and_close_leaves_a_foreign_lock_alone(redis_server):
    async with contenders(redis_server.url, "a") as (a,):
        await until(lambda: a.lock.is_leader)
        await a.link.client.set(a.lock.key, b"intruder", px=60_000)  # e.g. ours expired, somebody took it
        await until(lambda: not a.lock.is_leader, within=3 * TTL)
        assert a.calls == ["elected", "deposed"]
        await a.lock.close()
        assert await a.lock.holder() == "intruder"


async def test_close_releases_the_lock_at_once(redis_server):
    async with contenders(redis_server.url, "a") as (a,):
        await until(lambda: a.lock.is_leader)
        await a.lock.close()
        assert await a.lock.holder() is None
