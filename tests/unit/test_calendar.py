"""Calendar entries from the database and the hand-written iCal text (checked with the `icalendar` parser)."""

from __future__ import annotations

from datetime import timedelta

import icalendar
import pytest

from aniworldd.core.ical import CalendarEvent, build_calendar, escape_text, fold
from aniworldd.db import Store
from aniworldd.db.models import COMPLETED, PENDING, utcnow
from aniworldd.services.calendar_service import CalendarService, parse_days
from aniworldd.services.errors import BadRequest


def test_fold_keeps_octet_limit_and_utf8_characters() -> None:
    line = "SUMMARY:" + "かぐや様は告らせたい, " * 10
    folded = fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join(p[1:] if i else p for i, p in enumerate(parts)) == line  # unfolding restores it


def test_escape_text() -> None:
    assert escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_calendar_parses_with_icalendar() -> None:
    now = utcnow()
    text = build_calendar(
        [
            CalendarEvent(
                uid="x-1@aniworldd",
                start=now,
                summary="Kaguya-sama: Love is War; S01E02, new",
                description="Line one\nLine two, with ; and \\",
                categories=["New episode"],
                url="https://aniworld.to/anime/stream/kaguya-sama-love-is-war",
            ),
            CalendarEvent(uid="x-2@aniworldd", start=now, summary="ä" * 200),
        ],
        "My library",
    )
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    cal = icalendar.Calendar.from_ical(text)
    events = list(cal.walk("VEVENT"))
    assert [str(e["UID"]) for e in events] == ["x-1@aniworldd", "x-2@aniworldd"]
    assert str(events[0]["SUMMARY"]) == "Kaguya-sama: Love is War; S01E02, new"
    assert str(events[0]["DESCRIPTION"]) == "Line one\nLine two, with ; and \\"
    assert str(events[1]["SUMMARY"]) == "ä" * 200
    assert events[0]["DTSTART"].dt.replace(tzinfo=None) == now.replace(microsecond=0)
    assert str(cal["X-WR-CALNAME"]) == "My library"


@pytest.mark.parametrize("value", ["0", "-1", "400", "abc", "1.5"])
def test_parse_days_rejects_bad_values(value: str) -> None:
    with pytest.raises(BadRequest):
        parse_days(value)


def test_parse_days_default_and_value() -> None:
    assert parse_days(None) == 7
    assert parse_days("30") == 30


async def test_entries_downloaded_and_newly_listed_only(store: Store) -> None:
    now = utcnow()
    added = now - timedelta(days=30)

    def seed() -> None:
        e = store.e
        s = e.AnimeSeries(key="one-piece", name="One Piece", folder="One Piece", link="https://x/one-piece")
        for n in (1, 2, 3):  # the first listing, when the series was added: not "new"
            e.Episode(series=s, season=1, number=n, first_seen=added)
        e.Episode(
            series=s,
            season=1,
            number=4,
            title="Neu",
            languages=["ger-sub"],
            first_seen=now - timedelta(days=1),
        )  # found by a later refresh
        e.Episode(series=s, season=1, number=5, first_seen=now - timedelta(days=20))  # outside the window
        e.DownloadQueueItem(
            series=s,
            season=1,
            episode=2,
            language="ger-dub",
            status=COMPLETED,
            completed_at=now - timedelta(hours=5),
            final_path="/lib/One Piece/e2.mp4",
        )
        e.DownloadQueueItem(series=s, season=1, episode=3, status=PENDING)
        old = e.AnimeSeries(key="old-show", name="Old Show", folder="Old Show")
        e.Episode(series=old, season=1, number=1, first_seen=now - timedelta(hours=1))  # its first listing

    await store.run(seed)
    svc = CalendarService(store)
    data = await svc.entries(7, now=now)
    got = [(r["type"], r["key"], r["season"], r["episode"]) for r in data["entries"]]
    assert got == [("downloaded", "one-piece", 1, 2), ("listed", "one-piece", 1, 4)]
    assert data["entries"][0]["path"] == "/lib/One Piece/e2.mp4"
    assert data["entries"][1]["title"] == "Neu" and data["entries"][1]["languages"] == ["ger-sub"]
    longer = await svc.entries(30, now=now)
    assert ("listed", "one-piece", 1, 5) in [
        (r["type"], r["key"], r["season"], r["episode"]) for r in longer["entries"]
    ]

    cal = icalendar.Calendar.from_ical(await svc.ical(7, now=now))
    summaries = sorted(str(e["SUMMARY"]) for e in cal.walk("VEVENT"))
    assert summaries == ["One Piece S01E02 downloaded (ger-dub)", "One Piece S01E04 new"]
