"""Episode file names: reading them (what is on disk) and writing them (where a download goes).

Parsing is on the hot path of a library scan (100,000 names), so every pattern is compiled once and the
common case (`S01E005` in the name) costs one regex search. Building paths goes through
`sanitize_filename`, so a title can never produce a separator, `..` or a reserved name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import NamedTuple

from aniworldd.core.validators import EPISODE_MAX, LANGUAGE_NAMES, sanitize_filename

VIDEO_EXTENSIONS = frozenset({"mkv", "mp4", "avi", "webm", "m4v", "ts"})
#: Suffixes of files that are still being written (yt-dlp, our downloader, editors).
PARTIAL_SUFFIXES = (".part", ".ytdl", ".tmp", ".temp", ".crdownload", ".partial")
MAX_SEASON = 100
MAX_MULTI = 50
NAME_BYTES = 100
TITLE_BYTES = 60  # a range S01E01-E99 is a mistake, not 99 episodes in one file

_SXE_RE = re.compile(
    r"(?<![a-z0-9])s(\d{1,3})[ ._-]?e(\d{1,4})((?:[ ._]?-?[ ._]?e\d{1,4})*)(?:-(\d{2,4})(?![\dp]))?", re.I
)
_TAIL_RE = re.compile(r"(-?)[ ._]*e(\d{1,4})", re.I)
_MOVIE_RE = re.compile(r"(?<![a-z0-9])(?:movie|film)[ ._-]?(\d{1,3})(?!\d)", re.I)
_EPISODE_RE = re.compile(r"(?<![a-z0-9])(?:episode|folge|ep|e)[ ._-]?(\d{1,4})(?!\d)", re.I)
_LEADING_NUMBER_RE = re.compile(r"^(\d{1,4})(?=$|[ ._-])")
SAMPLE_RE = re.compile(r"(?<![a-z0-9])sample(?![a-z])", re.I)
_LANGUAGE_RE = re.compile(r"(?<![a-z])(ger(?:man)?|deutsch|eng(?:lish)?)[ ._-]?(dub|sub)(?![a-z])", re.I)
_SEASON_DIR_RE = re.compile(r"^(?:season|staffel|series|s)[ ._-]?(\d{1,3})(?:$|[ ._-])", re.I)
_MOVIE_DIRS = frozenset({"movies", "movie", "filme", "film", "films", "specials", "special", "extras"})
_EXT_RE = re.compile(r"^[a-z0-9]{1,8}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class EpisodeRef(NamedTuple):
    """What a file name says: season (0 = movies/specials), episode numbers, language code if tagged."""

    season: int
    episodes: tuple[int, ...]
    language: str | None = None


def language_from_name(text: str) -> str | None:
    """`(German Dub)`, `[ger-sub]`, `GerSub`, `English Sub` -> language code; None when untagged."""
    m = _LANGUAGE_RE.search(text)
    if not m:
        return None
    lang = "ger" if m.group(1)[0] in "gGdD" else "eng"
    return f"{lang}-{m.group(2).lower()}"


def season_from_dirname(name: str) -> int | None:
    """`Season 1`, `Staffel 01`, `S2` -> season number; `Movies`, `Filme`, `Specials` -> 0."""
    if name.lower() in _MOVIE_DIRS:
        return 0
    m = _SEASON_DIR_RE.match(name)
    if m:
        season = int(m.group(1))
        return season if season <= MAX_SEASON else None
    return None


def is_candidate_file(name: str) -> bool:
    """A video file that is complete and not a sample or hidden file."""
    if not name or name[0] == ".":
        return False
    dot = name.rfind(".")
    if dot <= 0 or name[dot + 1 :].lower() not in VIDEO_EXTENSIONS:
        return False
    return SAMPLE_RE.search(name) is None


def is_partial_name(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(PARTIAL_SUFFIXES)


def _episodes_from_sxe(first: int, tail: str | None, dash_end: str | None) -> tuple[int, ...]:
    """`E01` + tail (`-E03`, `E02`) + `-03`: a `-` means a range, otherwise a list."""
    numbers = [first]
    if tail:
        for dash, num in _TAIL_RE.findall(tail):
            n = int(num)
            if dash and n > numbers[-1]:
                numbers.extend(range(numbers[-1] + 1, min(n, numbers[-1] + MAX_MULTI) + 1))
            else:
                numbers.append(n)
    if dash_end:
        n = int(dash_end)
        if n > numbers[-1]:
            numbers.extend(range(numbers[-1] + 1, min(n, numbers[-1] + MAX_MULTI) + 1))
    return tuple(sorted({n for n in numbers if 1 <= n <= EPISODE_MAX}))


def parse_episode_filename(name: str, season_hint: int | None = None) -> EpisodeRef | None:
    """Season and episode(s) of a video file name, or None when it names no episode.

    `season_hint` is the season of the enclosing `Season N/` / `Staffel N/` folder (0 for `Movies/`);
    it lets names without a season (`Episode 5.mkv`, `05 - Title.mkv`) count, and the name wins over it.
    Names: `S01E05`, `S1E5`, `S01E005`, `s01e05`, `S01E01-E02`, `S01E01E02`, `S00E01`, `Movie 1`,
    `Film 1`, `Episode 5`, `Folge 5`.
    """
    stem = name[: name.rfind(".")] if "." in name else name
    language = language_from_name(stem) if ("ub" in stem or "UB" in stem) else None
    m = _SXE_RE.search(stem)
    if m:
        season_s, first_s, tail, dash_end = m.groups()
        season, first = int(season_s), int(first_s)
        if tail or dash_end:
            episodes = _episodes_from_sxe(first, tail, dash_end)
        else:  # the common case: one episode
            episodes = (first,) if 1 <= first <= EPISODE_MAX else ()
        if season > MAX_SEASON or not episodes:
            return None
        return EpisodeRef(season, episodes, language)
    m = _MOVIE_RE.search(stem)
    if m:
        n = int(m.group(1))
        return EpisodeRef(0, (n,), language) if 1 <= n <= EPISODE_MAX else None
    m = _EPISODE_RE.search(stem)
    if m is None and season_hint is not None:
        m = _LEADING_NUMBER_RE.match(stem)
    if m:
        n = int(m.group(1))
        if 1 <= n <= EPISODE_MAX:
            return EpisodeRef(season_hint if season_hint is not None else 1, (n,), language)
    return None


def _safe_folder(folder: str) -> str:
    """An existing series folder is used as it is (`Re:Zero` on a Linux disk stays `Re:Zero`, so the
    download lands next to its marker); only a name that is not one safe component gets sanitized."""
    if (
        isinstance(folder, str)
        and folder.strip(" .")
        and "/" not in folder
        and "\\" not in folder
        and not _CONTROL_RE.search(folder)
        and len(folder.encode("utf-8")) <= 255
    ):
        return folder
    return sanitize_filename(folder)


def language_display(code: str) -> str:
    """The label used in file names (`ger-dub` -> `German Dub`); unknown codes are kept as they are."""
    return LANGUAGE_NAMES.get(code, code)


def build_episode_path(
    cfg_library: Mapping,
    folder: str,
    name: str,
    season: int,
    episode: int,
    language_code: str,
    ext: str,
    title: str = "",
    key: str = "",
) -> PurePosixPath:
    """The final path of an episode file, relative to the library root, from library.naming (season 0:
    library.movie_naming). Every component is sanitized; ValueError when the result would be unsafe.

    The caller joins it with `safe_join(root, path)`; the result always starts inside the root.
    """
    ext = ext.lstrip(".").lower()
    if not _EXT_RE.match(ext):
        raise ValueError(f"invalid file extension {ext!r}")
    if not isinstance(season, int) or not isinstance(episode, int) or season < 0 or episode < 0:
        raise ValueError("season and episode must be non-negative integers")
    template = cfg_library["movie_naming"] if season == 0 else cfg_library["naming"]
    values = {
        "folder": _safe_folder(folder),
        # Bounded so a long title can never push `S01E005` out of a 200-byte file name.
        "name": sanitize_filename(name, NAME_BYTES),
        "season": season,
        "episode": episode,
        "language": language_display(language_code),
        "ext": ext,
        "title": sanitize_filename(title, TITLE_BYTES) if title and title.strip(" .") else "",
        "key": key,
    }
    pieces = template.replace("\\", "/").split("/")
    parts: list[str] = []
    for i, piece in enumerate(pieces):
        try:
            rendered = piece.format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"invalid naming template {template!r}: {exc}") from None
        if not rendered.strip(" ."):
            raise ValueError(f"naming template {template!r} produced an empty path component")
        if piece == "{folder}":
            parts.append(rendered)  # the existing folder, exactly as it is on disk
        elif i < len(pieces) - 1:
            parts.append(sanitize_filename(rendered))
        else:
            suffix = f".{ext}"
            stem = rendered[: -len(suffix)] if rendered.lower().endswith(suffix) else rendered
            # Sanitize the stem alone so the extension always survives.
            parts.append(sanitize_filename(stem, 200 - len(suffix)) + suffix)
    return PurePosixPath(*parts)
