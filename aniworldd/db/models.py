"""Pony entities.

Defined inside a function so each Store (a daemon, a test, a CLI run) gets its own Database object:
Pony binds entity classes to one database for life, which would otherwise make tests share state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from pony.orm import (
    Database,
    Json,
    LongStr,
    Optional,
    PrimaryKey,
    Required,
    Set,
    composite_index,
    composite_key,
)

#: Queue item statuses (the seed's names).
PENDING = "pending"
DOWNLOADING = "downloading"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
ACTIVE_STATUSES = (PENDING, DOWNLOADING)

PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}


def utcnow() -> datetime:
    """Naive UTC: Pony stores naive datetimes; every stamp in the DB is UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def define_entities(db: Database) -> SimpleNamespace:
    class AnimeSeries(db.Entity):
        _table_ = "anime_series"
        id = PrimaryKey(int, auto=True)
        key = Required(str, unique=True, index=True)
        name = Required(str)
        site = Required(str, default="aniworld")
        folder = Optional(str, nullable=True)
        root = Optional(str, nullable=True)
        link = Optional(str, nullable=True)
        description = Optional(LongStr, nullable=True)
        year = Optional(int)
        end_year = Optional(int)
        cover = Optional(str, nullable=True)
        alt_titles = Optional(Json)
        genres = Optional(Json)
        fsk = Optional(int)
        imdb_id = Optional(str, nullable=True)
        monitored = Required(bool, default=True)
        matched = Required(bool, default=True)
        last_refreshed = Optional(datetime)
        last_scanned = Optional(datetime)
        nfo_hash = Optional(str, nullable=True)
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)
        deleted_at = Optional(datetime)
        episodes = Set("Episode", cascade_delete=True)
        queue_items = Set("DownloadQueueItem", cascade_delete=True)

        def before_update(self) -> None:
            self.updated_at = utcnow()

    class Episode(db.Entity):
        _table_ = "episode"
        id = PrimaryKey(int, auto=True)
        series = Required(AnimeSeries, index=True)
        season = Required(int)
        number = Required(int)
        title = Optional(str, nullable=True)
        title_en = Optional(str, nullable=True)
        #: Languages the provider offers for this episode (codes such as ger-dub).
        languages = Optional(Json)
        #: True when the provider lists it; False for files on disk the provider does not (or no longer) list.
        listed = Required(bool, default=True)
        on_disk_path = Optional(str, nullable=True)
        on_disk_language = Optional(str, nullable=True)
        first_seen = Required(datetime, default=utcnow)
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)
        composite_key(series, season, number)

        def before_update(self) -> None:
            self.updated_at = utcnow()

    class DownloadQueueItem(db.Entity):
        _table_ = "download_queue_item"
        id = PrimaryKey(int, auto=True)
        series = Required(AnimeSeries, index=True)
        season = Required(int)
        episode = Required(int)
        language = Optional(str, nullable=True)
        status = Required(str, default=PENDING, index=True)
        priority = Required(str, default="normal")
        priority_rank = Required(int, default=1)
        progress = Required(float, default=0.0)
        downloaded_bytes = Required(int, size=64, default=0)
        total_bytes = Optional(int, size=64)
        speed = Optional(float)
        eta = Optional(float)
        error = Optional(str, nullable=True)
        attempts = Required(int, default=0)
        hoster = Optional(str, nullable=True)
        source_url = Optional(str, nullable=True)
        temp_path = Optional(str, nullable=True)
        final_path = Optional(str, nullable=True)
        replaces_path = Optional(str, nullable=True)
        next_attempt_at = Optional(datetime)
        started_at = Optional(datetime)
        completed_at = Optional(datetime)
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)
        deleted_at = Optional(datetime)
        composite_index(status, priority_rank, id)

        def before_update(self) -> None:
            self.updated_at = utcnow()

    class UserSession(db.Entity):
        _table_ = "user_session"
        id = PrimaryKey(int, auto=True)
        jti = Required(str, unique=True, index=True)
        kind = Required(str, default="login")  # login | api_key
        client = Optional(str, nullable=True)
        expires_at = Optional(datetime)
        revoked = Required(bool, default=False)
        revoked_at = Optional(datetime)
        last_used_at = Optional(datetime)
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)

        def before_update(self) -> None:
            self.updated_at = utcnow()

    class QueueLease(db.Entity):
        """A worker's claim on a queue item (several processes only): renewed while it downloads; once
        `expires_at` has passed, the item belongs to whichever worker claims it next. A table of its own
        (not columns on the queue) so existing databases gain it without a migration."""

        _table_ = "queue_lease"
        item_id = PrimaryKey(int)
        node = Required(str)
        expires_at = Required(datetime, index=True)

    class ClusterWorker(db.Entity):
        """A worker of a cluster and when it last claimed or renewed: the live ones share the slots."""

        _table_ = "cluster_worker"
        node = PrimaryKey(str)
        seen_at = Required(datetime)

    return SimpleNamespace(
        AnimeSeries=AnimeSeries,
        Episode=Episode,
        DownloadQueueItem=DownloadQueueItem,
        UserSession=UserSession,
        QueueLease=QueueLease,
        ClusterWorker=ClusterWorker,
    )
