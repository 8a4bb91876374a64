"""tvshow.nfo in the Kodi format, which Jellyfin, Kodi and Plex (with the XBMCnfo agent) all read."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from aniworldd.core.validators import strip_invisible

#: Characters XML 1.0 does not allow at all (a NUL makes the whole file unreadable for Kodi/Jellyfin),
#: plus the other C0/C1 controls, which no title means.
_XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _clean(value: object) -> str:
    return strip_invisible(_XML_INVALID_RE.sub("", str(value)))


def build_tvshow_nfo(series: dict) -> str:
    """The NFO text for a series dict (db.services.series_to_dict shape)."""
    root = ET.Element("tvshow")

    def add(tag: str, value: object, **attrs: str) -> None:
        if value not in (None, ""):
            el = ET.SubElement(root, tag, {k: _clean(v) for k, v in attrs.items()})
            el.text = _clean(value)

    add("title", series.get("name"))
    alt = [t for t in series.get("alt_titles") or [] if t and t != series.get("name")]
    add("originaltitle", alt[0] if alt else series.get("name"))
    add("plot", series.get("description"))
    for genre in series.get("genres") or []:
        add("genre", genre)
    add("year", series.get("year"))
    if series.get("year"):
        add("premiered", f"{series['year']}-01-01")
    if series.get("end_year"):
        add("status", "Ended")
    if series.get("fsk") is not None:
        add("mpaa", f"FSK {series['fsk']}")
    if series.get("imdb_id"):
        add("uniqueid", series["imdb_id"], type="imdb", default="true")
        add("imdbid", series["imdb_id"])
    add("uniqueid", series.get("key"), type=series.get("site") or "aniworld")
    add("thumb", "poster.jpg", aspect="poster")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>\n' + body + "\n"
