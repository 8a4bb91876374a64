"""Download history: finished queue items (completed and failed, with the failure reason), newest first.

Read from the database only, so the history page works while the queue is stopped or not running at all.
It pages and filters in SQL (status, a text on the series name or key) because a NAS that ran for a year
has thousands of finished items; one page of rows is what is loaded. Items removed from the queue
("Clear completed", remove) are gone from the history too: it is the queue's memory, not an audit log.
"""

from __future__ import annotations

from pony.orm import count, desc, select

from aniworldd.db import Store
from aniworldd.db.models import COMPLETED, FAILED
from aniworldd.db.services import queue_item_to_dict

#: status filter values: every finished item, or one kind
HISTORY_STATUSES = ("all", COMPLETED, FAILED)
DEFAULT_LIMIT = 50


class HistoryService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def page(
        self, status: str = "all", text: str | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0
    ) -> dict:
        """{items, total, counts: {completed, failed}, status, q, limit, offset}.

        `total` counts the items matching the filters (for paging); `counts` counts each kind matching the
        text alone, so the filter buttons can show how many each would give.
        """
        if status not in HISTORY_STATUSES:
            raise ValueError(f"unknown history status {status!r}")
        needle = (text or "").strip().lower()
        return await self.store.run(self._page, status, needle, limit, offset)

    def _page(self, status: str, needle: str, limit: int, offset: int) -> dict:
        item = self.store.e.DownloadQueueItem
        rows = item.select(lambda i: i.deleted_at is None and i.status in (COMPLETED, FAILED))
        if needle:
            rows = rows.filter(lambda i: needle in i.series.name.lower() or needle in i.series.key.lower())
        counts = {COMPLETED: 0, FAILED: 0}
        for state, n in select((i.status, count(i)) for i in rows):
            counts[state] = n
        if status != "all":
            rows = rows.filter(lambda i: i.status == status)
        total = counts[status] if status != "all" else counts[COMPLETED] + counts[FAILED]
        ordered = rows.order_by(desc(item.updated_at), desc(item.id))
        items = []
        for row in ordered.limit(limit, offset=offset) if limit else []:
            data = queue_item_to_dict(row)
            done = row.status == COMPLETED and row.completed_at is not None
            data["finished_at"] = row.completed_at if done else row.updated_at
            items.append(data)
        return {
            "items": items,
            "total": total,
            "counts": counts,
            "status": status,
            "q": needle,
            "limit": limit,
            "offset": offset,
        }
