"""What happened to the library lately: episodes downloaded and episodes newly listed by the provider.

The calendar is read from the database only (no provider requests), so phones polling the iCal feed every
hour cost nothing. "Newly listed" needs care: when a series is added, all its episodes get `first_seen` at
once, and a calendar flooded with 300 "new" episodes of an old show is useless. So an episode counts as newly
listed only when it was first seen after the series' first listing (the earliest `first_seen` of its listed
episodes), i.e. a refresh found it later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pony import orm

from aniworldd.core.ical import CalendarEvent, build_calendar
from aniworldd.db import Store
from aniworldd.db.models import COMPLETED, utcnow
from aniworldd.events import iso_timestamp
from aniworldd.services.errors import BadRequest

DEFAULT_DAYS = 7
MAX_DAYS = 366
#: Episodes first seen this close after the series' first listing belong to that listing (one listing is
#: stored with a single timestamp, so no slack is needed).
INITIAL_LISTING_GRACE = timedelta(0)

DOWNLOADED = "downloaded"
LISTED = "listed"


def parse_days(value: Any, default: int = DEFAULT_DAYS) -> int:
    """`days` from a query string: an integer in 1..366, else a 400 that says so."""
    if value in (None, ""):
        return default
    try:
        days = int(str(value).strip())
    except ValueError:
        raise BadRequest("days must be an integer", {"field": "days", "value": str(value)[:50]}) from None
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"days must be between 1 and {MAX_DAYS}", {"field": "days", "value": days})
    return days


def _iso(moment: datetime) -> str:
    return iso_timestamp(moment.replace(tzinfo=UTC))


class CalendarService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def entries(self, days: int = DEFAULT_DAYS, now: datetime | None = None) -> dict:
        """{days, since, until, entries: [...]} newest first; each entry has `type` downloaded | listed."""
        until = now or utcnow()
        since = until - timedelta(days=days)
        rows = await self.store.run(self._query, since, until)
        rows.sort(key=lambda r: (r["at"], r["key"], r["season"], r["episode"]), reverse=True)
        return {"days": days, "since": _iso(since), "until": _iso(until), "entries": rows}

    def _query(self, since: datetime, until: datetime) -> list[dict]:
        e = self.store.e
        out: list[dict] = []
        done = e.DownloadQueueItem.select(
            lambda q: (
                q.status == COMPLETED
                and q.series.deleted_at is None
                and q.completed_at is not None
                and q.completed_at >= since
                and q.completed_at <= until
            )
        )
        for q in done:
            s = q.series
            ep = e.Episode.get(series=s, season=q.season, number=q.episode)
            out.append(
                {
                    "type": DOWNLOADED,
                    "at": _iso(q.completed_at),
                    "key": s.key,
                    "name": s.name,
                    "site": s.site,
                    "folder": s.folder,
                    "link": s.link,
                    "season": q.season,
                    "episode": q.episode,
                    "title": (ep.title or ep.title_en or "") if ep else "",
                    "language": q.language,
                    "path": q.final_path,
                    "download_id": q.id,
                }
            )
        fresh = list(
            e.Episode.select(
                lambda x: (
                    x.listed
                    and x.first_seen >= since
                    and x.first_seen <= until
                    and x.series.deleted_at is None
                )
            )
        )
        sids = list({ep.series.id for ep in fresh})
        baselines: dict[int, datetime] = (
            dict(
                orm.select(
                    (x.series.id, orm.min(x.first_seen))
                    for x in e.Episode
                    if x.listed and x.series.id in sids
                )
            )
            if sids
            else {}
        )
        for ep in fresh:
            s = ep.series
            if ep.first_seen <= baselines[s.id] + INITIAL_LISTING_GRACE:
                continue
            out.append(
                {
                    "type": LISTED,
                    "at": _iso(ep.first_seen),
                    "key": s.key,
                    "name": s.name,
                    "site": s.site,
                    "folder": s.folder,
                    "link": s.link,
                    "season": ep.season,
                    "episode": ep.number,
                    "title": ep.title or ep.title_en or "",
                    "languages": list(ep.languages or []),
                    "on_disk": bool(ep.on_disk_path),
                }
            )
        return out

    async def ical(self, days: int, name: str = "aniworldd", now: datetime | None = None) -> str:
        data = await self.entries(days, now=now)
        return build_calendar((to_event(r) for r in data["entries"]), name, now=now)


def episode_code(season: int, episode: int) -> str:
    return f"Movie {episode:02d}" if season == 0 else f"S{season:02d}E{episode:02d}"


def to_event(row: dict) -> CalendarEvent:
    """One calendar entry as an iCal event with a stable UID (a re-fetch updates instead of duplicating)."""
    code = episode_code(row["season"], row["episode"])
    title = row.get("title") or ""
    start = datetime.fromisoformat(row["at"].replace("Z", "+00:00"))
    if row["type"] == DOWNLOADED:
        summary = f"{row['name']} {code} downloaded"
        if row.get("language"):
            summary += f" ({row['language']})"
        details = [title, f"File: {row['path']}" if row.get("path") else ""]
        uid = f"downloaded-{row['download_id']}-{row['key']}-{row['season']}-{row['episode']}@aniworldd"
        category = "Downloaded"
    else:
        summary = f"{row['name']} {code} new"
        langs = ", ".join(row.get("languages") or [])
        details = [title, f"Languages: {langs}" if langs else ""]
        uid = f"listed-{row['key']}-{row['season']}-{row['episode']}@aniworldd"
        category = "New episode"
    return CalendarEvent(
        uid=uid,
        start=start,
        summary=summary,
        description="\n".join(d for d in details if d),
        url=row.get("link") or None,
        categories=[category],
    )
