"""Queue claims between workers on one real PostgreSQL database (services.queue_claims).

Each worker is its own Store (its own connection), as in separate processes: the claim transactions really
run concurrently and PostgreSQL's locks decide.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from aniworldd.db import Store
from aniworldd.db.models import DOWNLOADING, PENDING, utcnow
from aniworldd.services.queue_claims import QueueClaims

pytestmark = pytest.mark.postgres


def _seed(store: Store, items: int) -> list[int]:
    def q() -> list[int]:
        e = store.e
        series = e.AnimeSeries(key="claims-test", name="Claims Test")
        rows = [e.DownloadQueueItem(series=series, season=1, episode=n) for n in range(1, items + 1)]
        store.db.flush()
        return [r.id for r in rows]

    return store.run_sync(q)


def _status(store: Store, item_id: int) -> str:
    return store.run_sync(lambda: store.e.DownloadQueueItem[item_id].status)


def _begin(store: Store, ids: list[int]) -> None:
    def q() -> None:
        for item_id in ids:
            store.e.DownloadQueueItem[item_id].status = DOWNLOADING

    store.run_sync(q)


@pytest.fixture
def stores(pg_url: str, tmp_path: Path):
    made = [Store(pg_url, tmp_path / f"w{n}") for n in range(4)]
    try:
        yield made
    finally:
        for store in made:
            store.close()


async def test_concurrent_claims_never_share_an_item_and_respect_the_cluster_limit(stores) -> None:
    ids = _seed(stores[0], 40)
    workers = [QueueClaims(store, f"worker-{n}", lease=30) for n, store in enumerate(stores)]

    async def claim(w: QueueClaims) -> list[int]:
        got, _ = await w.store.run(w.claim, 5, 12)
        return got

    rounds = await asyncio.gather(*(claim(w) for w in workers for _ in range(3)))
    claimed = [i for r in rounds for i in r]
    assert len(claimed) == len(set(claimed))  # no item twice
    assert len(claimed) == 12  # max_concurrent for the whole cluster, not per worker
    assert set(claimed) <= set(ids)
    holders = workers[0].store.run_sync(workers[0].holders)
    assert sorted(holders) == sorted(claimed)
    # first come, first served: the oldest items
    assert sorted(claimed) == ids[:12]


async def test_each_live_worker_gets_its_share_of_the_slots(stores) -> None:
    _seed(stores[0], 10)
    first = QueueClaims(stores[0], "first", lease=30)
    second = QueueClaims(stores[1], "second", lease=30)
    second.store.run_sync(second.join)  # started, has not looked at the queue yet
    got, _ = first.store.run_sync(first.claim, 4, 4)
    assert len(got) == 2  # not every slot: the other worker gets its half
    assert len(second.store.run_sync(second.claim, 4, 4)[0]) == 2
    second.store.run_sync(second.leave)  # it stops: its share is free for the others at once
    assert first.store.run_sync(first.claim, 4, 6)[0] != []


async def test_a_dead_workers_item_goes_to_another_worker_after_its_lease(stores) -> None:
    [item] = _seed(stores[0], 1)
    dead = QueueClaims(stores[0], "dead", lease=30)
    alive = QueueClaims(stores[1], "alive", lease=30)
    assert dead.store.run_sync(dead.claim, 1, 4)[0] == [item]
    _begin(stores[0], [item])
    assert alive.store.run_sync(alive.claim, 1, 4)[0] == []  # still leased: nobody else takes it
    assert _status(stores[1], item) == DOWNLOADING

    def expire() -> None:  # the dead worker's lease runs out (nobody renewed it)
        stores[0].e.QueueLease[item].expires_at = utcnow() - timedelta(seconds=1)

    stores[0].run_sync(expire)
    assert alive.store.run_sync(alive.claim, 1, 4)[0] == [item]
    assert _status(stores[1], item) == PENDING  # back to pending, for the new owner to begin
    assert alive.store.run_sync(alive.holders) == {item: "alive"}
    # the dead one, had it only been stalled, finds out at its next renewal and stops its download
    assert dead.store.run_sync(dead.renew, [item]) == [item]
    assert alive.store.run_sync(alive.renew, [item]) == []


async def test_an_item_removed_elsewhere_is_given_up_at_the_next_renewal(stores) -> None:
    [item] = _seed(stores[0], 1)
    worker = QueueClaims(stores[0], "worker", lease=30)
    assert worker.store.run_sync(worker.claim, 1, 4)[0] == [item]
    _begin(stores[0], [item])
    assert worker.store.run_sync(worker.renew, [item]) == []

    def remove() -> None:  # what DELETE /api/queue/{id} does, in an API process with its own connection
        row = stores[1].e.DownloadQueueItem[item]
        row.status, row.deleted_at = "cancelled", utcnow()

    stores[1].run_sync(remove)
    assert worker.store.run_sync(worker.renew, [item]) == [item]
    assert worker.store.run_sync(worker.holders) == {}


async def test_release_frees_the_slot_and_only_the_own_lease(stores) -> None:
    a_item, b_item = _seed(stores[0], 2)
    a = QueueClaims(stores[0], "a", lease=30)
    b = QueueClaims(stores[1], "b", lease=30)
    assert a.store.run_sync(a.claim, 1, 1)[0] == [a_item]
    assert b.store.run_sync(b.claim, 1, 1)[0] == []  # the cluster holds one at a time
    b.store.run_sync(b.release, [a_item])  # not b's: nothing happens
    assert b.store.run_sync(b.claim, 1, 1)[0] == []
    _begin(stores[0], [a_item])

    def finish() -> None:
        stores[0].e.DownloadQueueItem[a_item].status = "completed"

    stores[0].run_sync(finish)
    a.store.run_sync(a.release, [a_item])
    assert b.store.run_sync(b.claim, 1, 1)[0] == [b_item]


def test_processes_starting_together_on_a_new_database_all_start(pg_url: str, tmp_path: Path) -> None:
    """Every process of a cluster creates the missing tables at start; concurrent CREATE TABLEs of one
    name make all but one fail unless they take turns (Store's schema lock)."""
    import threading

    barrier = threading.Barrier(6)
    errors: list[BaseException] = []
    stores: list[Store] = []

    def start(n: int) -> None:
        barrier.wait()
        try:
            stores.append(Store(pg_url, tmp_path / f"p{n}"))
        except BaseException as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for store in stores:
        store.close()
    assert errors == []
    assert len(stores) == 6
