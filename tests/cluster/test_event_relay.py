"""Events between processes through a real Redis: every cluster-scope subscriber of every process sees each
event once and in order, local-scope subscribers only their own process's, and nothing is lost over a Redis
restart (buffered while it is down, read after it is back)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from aniworldd.cluster.event_relay import RedisEventRelay
from aniworldd.cluster.redis_link import RedisLink
from aniworldd.events import Event, EventBus


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class Node:
    """One "process": a bus with its relay and a cluster- and a local-scope listener."""

    def __init__(self, url: str, prefix: str, name: str, **relay_args) -> None:
        self.link = RedisLink(url, prefix=prefix, node=name)
        self.bus = EventBus()
        self.relay = RedisEventRelay(self.link, self.bus, **relay_args)
        self.cluster: list[Event] = []
        self.local: list[Event] = []
        self.bus.add_listener(self.cluster.append, scope="cluster")
        self.bus.add_listener(self.local.append)

    def seen(self, events: list[Event]) -> list[tuple[str, int]]:
        return [(e.origin, e.data["n"]) for e in events]

    async def close(self) -> None:
        await self.relay.close()
        await self.link.close()


@asynccontextmanager
async def nodes(url: str, *names: str, **relay_args) -> AsyncIterator[list[Node]]:
    prefix = f"t{secrets.token_hex(4)}"
    started = [Node(url, prefix, name, **relay_args) for name in names]
    try:
        for node in started:
            await node.relay.start()
        yield started
    finally:
        for node in started:
            await node.close()


def test_without_relay_both_scopes_get_every_event_at_once():
    bus = EventBus()
    local: list[Event] = []
    cluster: list[Event] = []
    bus.add_listener(local.append)
    bus.add_listener(cluster.append, scope="cluster")
    event = bus.publish("x", {"n": 1})
    assert local == [event] and cluster == [event]


def test_wire_round_trip_keeps_timestamp_and_origin():
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    event = Event("download_complete", {"at": moment, "obj": object()}, moment, origin="w1")
    back = Event.from_wire(event.to_wire())
    assert (back.type, back.timestamp, back.origin) == ("download_complete", moment, "w1")
    assert back.data["at"] == "2026-01-02T03:04:05.678Z"
    assert isinstance(back.data["obj"], str)  # lenient: an odd value becomes a string, never an error


async def test_every_process_sees_every_event_once_in_order(redis_server):
    async with nodes(redis_server.url, "a", "b") as (a, b):
        subs = [n.bus.subscribe({"x"}, scope="cluster") for n in (a, b)]
        for i in range(100):
            (a if i % 3 else b).bus.publish("x", {"n": i})
        await until(lambda: len(a.cluster) >= 100 and len(b.cluster) >= 100)
        await asyncio.sleep(0.3)  # time for a duplicate to show up, if there were one

        assert a.seen(a.cluster) == b.seen(b.cluster)  # one order for everybody: the stream's
        assert sorted(n for _, n in a.seen(a.cluster)) == list(range(100))
        assert [e.data["n"] for e in a.cluster if e.origin == "a"] == [i for i in range(100) if i % 3]
        assert [e.data["n"] for e in a.local] == [i for i in range(100) if i % 3]
        assert [e.data["n"] for e in b.local] == [i for i in range(100) if not i % 3]
        assert {e.origin for e in b.local} == {"b"}
        for sub in subs:
            got = []
            while (event := sub.get_nowait()) is not None:
                got.append(event.data["n"])
            assert sorted(got) == list(range(100))
        assert a.relay.connected and a.relay.state()["sent"] == 66


async def test_publish_from_another_thread_is_relayed(redis_server):
    async with nodes(redis_server.url, "a", "b") as (a, b):
        thread = threading.Thread(target=lambda: [a.bus.publish("x", {"n": i}) for i in range(20)])
        thread.start()
        await asyncio.to_thread(thread.join)
        await until(lambda: len(b.cluster) == 20)
        assert [e.data["n"] for e in b.cluster] == list(range(20))
        assert [e.data["n"] for e in a.local] == list(range(20))


async def test_nothing_lost_over_a_redis_restart(redis_server):
    async with nodes(redis_server.url, "a", "b") as (a, b):
        for i in range(10):
            a.bus.publish("x", {"n": i})
        await until(lambda: len(b.cluster) == 10)

        redis_server.stop()
        for i in range(10, 30):  # during the outage: buffered
            (a if i % 2 else b).bus.publish("x", {"n": i})
        await until(lambda: not a.relay.connected and not b.relay.connected)
        assert a.relay.state()["buffered"] == 10
        redis_server.start()
        for i in range(30, 40):
            b.bus.publish("x", {"n": i})

        await until(lambda: len(a.cluster) >= 40 and len(b.cluster) >= 40)
        await asyncio.sleep(0.3)
        for node in (a, b):
            assert sorted(e.data["n"] for e in node.cluster) == list(range(40))
            for origin in ("a", "b"):
                mine = [e.data["n"] for e in node.cluster if e.origin == origin]
                assert mine == sorted(mine)  # each process's events in the order it published them
        await until(lambda: a.relay.connected and b.relay.connected)
        assert a.relay.state()["buffered"] == 0 and a.relay.state()["dropped"] == 0


async def test_reader_gets_what_another_process_writes_right_after_a_restart(redis_server):
    """While a's reader still waits to reconnect, a fresh process writes to the new (empty) stream; a must
    get those entries although they came before its first read after the restart."""
    async with nodes(redis_server.url, "a") as (a,):
        a.bus.publish("x", {"n": 0})
        await until(lambda: len(a.cluster) == 1)
        redis_server.stop()
        await until(lambda: not a.relay.connected)
        await asyncio.sleep(1.0)  # a's reader is now in its backoff
        redis_server.start()
        prefix = a.link.prefix
        c = Node(redis_server.url, prefix, "c")
        try:
            await c.relay.start()
            for i in range(1, 11):
                c.bus.publish("x", {"n": i})
            await until(lambda: len(a.cluster) == 11)
            assert [e.data["n"] for e in a.cluster] == list(range(11))
        finally:
            await c.close()


async def test_buffer_is_bounded_oldest_dropped(redis_server):
    async with nodes(redis_server.url, "a", "b", buffer=5) as (a, b):
        redis_server.stop()
        await until(lambda: not a.relay.connected)
        for i in range(8):
            a.bus.publish("x", {"n": i})
        assert a.relay.state()["dropped"] == 3
        redis_server.start()
        await until(lambda: len(b.cluster) == 5)
        assert [e.data["n"] for e in b.cluster] == [3, 4, 5, 6, 7]


async def test_close_detaches_from_the_bus(redis_server):
    async with nodes(redis_server.url, "a") as (a,):
        assert a.bus.relay is a.relay
        a.bus.publish("x", {"n": 1})
        await until(lambda: len(a.cluster) == 1)
        await a.relay.close()
        assert a.bus.relay is None
        a.bus.publish("x", {"n": 2})  # a single process again: cluster scope gets it directly
        assert [e.data["n"] for e in a.cluster] == [1, 2]


async def test_a_relay_started_while_redis_is_down_catches_up(redis_server):
    redis_server.stop()
    async with nodes(redis_server.url, "a") as (a,):
        assert not a.relay.connected
        a.bus.publish("x", {"n": 1})
        assert [e.data["n"] for e in a.local] == [1] and a.cluster == []
        redis_server.start()
        await until(lambda: len(a.cluster) == 1)
        assert a.relay.connected
