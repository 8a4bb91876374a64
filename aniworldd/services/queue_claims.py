"""Which worker downloads which queue item, when several processes share one PostgreSQL database.

A worker claims items in one transaction that first takes a transaction-scoped advisory lock, so claims
from all workers happen one after another: `downloads.max_concurrent` holds for the whole cluster and no
item is claimed twice. The claimed rows are also read `FOR UPDATE SKIP LOCKED`, so a row another
transaction is changing (an API removing it) is passed over instead of waited for.

Every live worker gets its share of the slots (max_concurrent divided by the workers seen within one lease,
rounded up): without it the first worker to look took every slot, and one crash cost all the downloads.
A worker already past its share (another one just joined) keeps what it runs and takes nothing new.

A claim is a lease (`QueueLease`): the worker renews it every third of `cluster.lease`. A worker that dies
(kill -9, power cut) stops renewing; once the lease has run out, the next claim puts the item back to
pending and hands it to a live worker, which resumes from the partial file in the shared temp dir. A worker
whose renewal finds its lease gone (it was stalled longer than the lease) stops its download at once, so
two workers never write the same file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pony.orm import select

from aniworldd.db import Store
from aniworldd.db.models import DOWNLOADING, PENDING, utcnow

#: pg_advisory_xact_lock key of the claim transaction ("aniw" in ASCII).
CLAIM_LOCK = 0x616E6977


def pick_due(
    rows: Iterable[Any], skip: set[int], limit: int, now: datetime
) -> tuple[list[int], float | None]:
    """(DB thread) Ids of the first `limit` due items of `rows` (pending, in queue order) not in `skip`, and
    the seconds until the first one backing off is due (None: none met before the limit)."""
    ready: list[int] = []
    soonest: float | None = None
    if limit <= 0:
        return ready, soonest
    for row in rows:
        if row.id in skip or row.series.deleted_at is not None:
            continue
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            wait = (row.next_attempt_at - now).total_seconds()
            soonest = wait if soonest is None else min(soonest, wait)
            continue
        ready.append(row.id)
        if len(ready) >= limit:
            break
    return ready, (max(0.05, soonest) if soonest is not None else None)


class QueueClaims:
    """Claims, renewals and releases of one worker (`node`). Every method runs on the DB thread."""

    def __init__(self, store: Store, node: str, lease: float) -> None:
        self.store = store
        self.node = node
        self.lease = lease

    def _serialize(self) -> None:
        if self.store.provider == "postgres":
            self.store.db.execute(f"SELECT pg_advisory_xact_lock({CLAIM_LOCK})")

    def claim(self, limit: int, cluster_max: int) -> tuple[list[int], float | None]:
        """Claim up to `limit` due pending items while fewer than `cluster_max` are leased in the whole
        cluster; the ids, and the seconds until a backing-off item is due (None: none waiting)."""
        e = self.store.e
        self._serialize()
        now = utcnow()
        leased = self._live(now)  # item id -> node, read once for everything below
        self._reclaim_expired(now, set(leased))
        self._seen(now)
        live = len(leased)
        mine = sum(node == self.node for node in leased.values())
        since = now - timedelta(seconds=self.lease)
        workers = max(1, e.ClusterWorker.select(lambda w: w.seen_at > since).count())
        share = -(-cluster_max // workers)
        free = min(limit, cluster_max - live, share - mine)
        rows = (
            e.DownloadQueueItem.select(lambda i: i.status == PENDING and i.deleted_at is None)
            .order_by(lambda i: (i.priority_rank, i.id))
            .for_update(skip_locked=True)
        )
        ready, soonest = pick_due(rows, set(leased), free, now)
        for item_id in ready:
            self._lease(item_id, now)
        return ready, soonest

    def _seen(self, now: Any) -> None:
        me = self.store.e.ClusterWorker.get(node=self.node)
        if me is None:
            self.store.e.ClusterWorker(node=self.node, seen_at=now)
        else:
            me.seen_at = now

    def join(self) -> None:
        """A worker that starts counts at once: the first claims already leave it its share."""
        self._seen(utcnow())

    def leave(self) -> None:
        """A worker that stops: its share goes to the others at once instead of after a lease."""
        me = self.store.e.ClusterWorker.get(node=self.node)
        if me is not None:
            me.delete()

    def _live(self, now: Any) -> dict[int, str]:
        """item id -> node of every lease that has not run out."""
        return dict(select((c.item_id, c.node) for c in self.store.e.QueueLease if c.expires_at > now)[:])

    def _lease(self, item_id: int, now: Any) -> None:
        e = self.store.e
        expires = now + timedelta(seconds=self.lease)
        old = e.QueueLease.get(item_id=item_id)
        if old is None:
            e.QueueLease(item_id=item_id, node=self.node, expires_at=expires)
        else:
            old.node, old.expires_at = self.node, expires

    def _reclaim_expired(self, now: Any, live: set[int]) -> None:
        """Items a dead worker was downloading (no live lease): back to pending (attempts kept), their
        leases dropped."""
        e = self.store.e
        expired = {c.item_id: c for c in e.QueueLease.select(lambda c: c.expires_at <= now)}
        for row in e.DownloadQueueItem.select(lambda i: i.status == DOWNLOADING):
            if row.id in live:
                continue
            row.status = PENDING
            row.speed = row.eta = None
        for lease in expired.values():
            lease.delete()

    def renew(self, item_ids: list[int]) -> list[int]:
        """Extend this worker's leases; the ids this worker must stop: the lease is no longer its own, or
        the item was removed meanwhile (DELETE in an API process)."""
        e = self.store.e
        now = utcnow()
        self._seen(now)
        expires = now + timedelta(seconds=self.lease)
        lost = []
        for item_id in item_ids:
            lease = e.QueueLease.get(item_id=item_id)
            row = e.DownloadQueueItem.get(id=item_id)
            if lease is None or lease.node != self.node or row is None or row.deleted_at is not None:
                lost.append(item_id)
                if lease is not None and lease.node == self.node:
                    lease.delete()
                continue
            lease.expires_at = expires
        return lost

    def release(self, item_ids: list[int]) -> None:
        """Give up this worker's leases (the item finished, failed, or went back to pending)."""
        e = self.store.e
        for item_id in item_ids:
            lease = e.QueueLease.get(item_id=item_id)
            if lease is not None and lease.node == self.node:
                lease.delete()

    def holders(self) -> dict[int, str]:
        """item id -> node of every live lease."""
        return self._live(utcnow())
