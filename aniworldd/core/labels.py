"""Episode labels for people: the same as the web UI's `episodeLabel` (aniworldd/web/js/core/format.js),
used by the CLI, notifications, API messages and doctor, so a user reads "S01E01" / "Movie 1" everywhere and
can copy a label from one into a search of the other.
File names follow `library.naming`, the user's choice."""

from __future__ import annotations

from typing import Any


def episode_label(season: Any, episode: Any) -> str:
    """`S01E01` for a regular episode (wider numbers keep their digits: S01E100), `Movie 1` for season 0."""
    try:
        season_no, episode_no = int(season or 0), int(episode or 0)
    except (TypeError, ValueError):
        return f"S{season}E{episode}"
    if season_no == 0:
        return f"Movie {episode_no}"
    return f"S{season_no:02d}E{episode_no:02d}"
