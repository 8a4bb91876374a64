"""iCalendar (RFC 5545) text, written by hand.

The feed is small and its shape fixed, so a dependency is not worth it; the rules that matter are few and
all here: CRLF line ends, lines folded at 75 octets (never inside a UTF-8 sequence), TEXT values escaped
(backslash, semicolon, comma, newline) and UTC stamps as `YYYYMMDDTHHMMSSZ`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

CRLF = "\r\n"
MAX_OCTETS = 75


def escape_text(value: str) -> str:
    """Escape a TEXT value (RFC 5545 3.3.11); CR/LF pairs become one `\\n`."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """Fold a content line into chunks of at most 75 octets, continuation lines starting with a space."""
    data = line.encode("utf-8")
    if len(data) <= MAX_OCTETS:
        return line
    parts: list[str] = []
    start = 0
    limit = MAX_OCTETS
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # do not split a multi-byte character
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start = end
        limit = MAX_OCTETS - 1  # the leading space of a continuation line counts
    return (CRLF + " ").join(parts)


def utc_stamp(moment: datetime) -> str:
    """A DATE-TIME in UTC form; naive datetimes are taken as UTC (the database stores naive UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ")


@dataclass
class CalendarEvent:
    uid: str
    start: datetime
    summary: str
    description: str = ""
    duration: timedelta = timedelta(minutes=30)
    url: str | None = None
    categories: list[str] = field(default_factory=list)


def build_calendar(events: Iterable[CalendarEvent], name: str, now: datetime | None = None) -> str:
    """A VCALENDAR with one VEVENT per event; DTSTAMP is `now` (the feed's generation time)."""
    stamp = utc_stamp(now or datetime.now(UTC))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//aniworldd//calendar feed//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ]
    for ev in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{escape_text(ev.uid)}",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{utc_stamp(ev.start)}",
            f"DTEND:{utc_stamp(ev.start + ev.duration)}",
            f"SUMMARY:{escape_text(ev.summary)}",
        ]
        if ev.description:
            lines.append(f"DESCRIPTION:{escape_text(ev.description)}")
        if ev.categories:
            lines.append("CATEGORIES:" + ",".join(escape_text(c) for c in ev.categories))
        if ev.url:
            lines.append(f"URL:{ev.url}")
        lines += ["TRANSP:TRANSPARENT", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + CRLF for line in lines)
