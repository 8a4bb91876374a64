"""tvshow.nfo in the Kodi format, which Jellyfin, Kodi and Plex (with the XBMCnfo agent) all read."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def build_tvshow_nfo(series: dict) -> str:
    """The NFO text for a series dict (db.services.series_to_dict shape)."""
    root = ET.Element("tvshow")

    def add(tag: str, value: object, **attrs: str) -> None:
        if value not in (None, ""):
            el = ET.SubElement(root, tag, attrs)
            el.text = str(value)

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
