"""Episode names: every pattern the scanner must read, and the paths downloads are written to."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from aniworldd.config import DEFAULT_MOVIE_NAMING, DEFAULT_NAMING
from aniworldd.core.naming import (
    EpisodeRef,
    build_episode_path,
    is_candidate_file,
    is_partial_name,
    language_from_name,
    parse_episode_filename,
    season_from_dirname,
)

LIB = {"naming": DEFAULT_NAMING, "movie_naming": DEFAULT_MOVIE_NAMING}


@pytest.mark.parametrize(
    ("name", "hint", "season", "episodes"),
    [
        ("Show - S01E05 - Title.mkv", None, 1, (5,)),
        ("Show S1E5.mp4", None, 1, (5,)),
        ("Show - S01E005 - (German Dub).mp4", None, 1, (5,)),
        ("show.s01e05.720p.webm", None, 1, (5,)),
        ("Show S01E01-E02.mkv", None, 1, (1, 2)),
        ("Show S01E01E02.mkv", None, 1, (1, 2)),
        ("Show S01E01-E03.mkv", None, 1, (1, 2, 3)),
        ("Show S01E01-02.mkv", None, 1, (1, 2)),
        ("Show S02E10 - 1080p.m4v", None, 2, (10,)),
        ("Show S10E100.ts", None, 10, (100,)),
        ("Show - S00E01 - Special.avi", None, 0, (1,)),
        ("Show - Movie 1.mkv", None, 0, (1,)),
        ("Show - Movie 02 - (German Dub).mp4", None, 0, (2,)),
        ("Show Film 3.mkv", None, 0, (3,)),
        ("Episode 7.mkv", 2, 2, (7,)),
        ("Folge 7.mkv", 3, 3, (7,)),
        ("E07 - Title.mkv", 1, 1, (7,)),
        ("07 - Title.mkv", 4, 4, (7,)),
        ("S03E07.mkv", 1, 3, (7,)),  # the name wins over the folder
        ("Show Episode 12.mkv", None, 1, (12,)),  # no season folder: season 1
    ],
)
def test_episode_patterns(name: str, hint: int | None, season: int, episodes: tuple[int, ...]) -> None:
    ref = parse_episode_filename(name, hint)
    assert ref is not None, name
    assert (ref.season, ref.episodes) == (season, episodes)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("07 - Title.mkv", None),  # a bare number only counts inside a season folder
        ("Show 1920x1080.mkv", None),
        ("Trailer.mkv", None),
        ("Show S01E00.mkv", None),
        ("Show S01E1001.mkv", None),
    ],
)
def test_names_without_an_episode(name: str, hint: int | None) -> None:
    assert parse_episode_filename(name, hint) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Show - S01E01 - (German Dub).mp4", "ger-dub"),
        ("Show - S01E01 - (German Sub).mp4", "ger-sub"),
        ("Show S01E01 [ger-sub].mkv", "ger-sub"),
        ("Show S01E01 [GerDub].mkv", "ger-dub"),
        ("Show S01E01 (English Sub).mkv", "eng-sub"),
        ("Show S01E01 eng-dub.mkv", "eng-dub"),
        ("Show S01E01 Deutsch Dub.mkv", "ger-dub"),
        ("Show S01E01.mkv", None),
        ("Submarine Dubai S01E01.mkv", None),
    ],
)
def test_language_tags(text: str, code: str | None) -> None:
    assert language_from_name(text) == code
    ref = parse_episode_filename(text)
    assert ref is not None and ref.language == code


@pytest.mark.parametrize(
    ("name", "season"),
    [("Season 1", 1), ("Season 01", 1), ("Staffel 2", 2), ("staffel_03", 3), ("S4", 4), ("Movies", 0),
     ("Filme", 0), ("Specials", 0), ("Extras", 0), ("Seasoning", None), ("Bonus", None)],
)  # fmt: skip
def test_season_folders(name: str, season: int | None) -> None:
    assert season_from_dirname(name) == season


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("Show S01E01.mkv", True), ("Show S01E01.MP4", True), ("a.avi", True), ("a.webm", True),
        ("a.m4v", True), ("a.ts", True), ("a.mp4.part", False), ("a.mp4.ytdl", False), ("a.tmp", False),
        (".hidden S01E01.mkv", False), ("Show S01E01 sample.mkv", False), ("Sample.mkv", False),
        ("Show S01E01.nfo", False), ("Show S01E01.srt", False), ("mkv", False),
    ],
)  # fmt: skip
def test_candidate_files(name: str, ok: bool) -> None:
    assert is_candidate_file(name) is ok


def test_partial_names() -> None:
    for name in ("x.mp4.part", "x.ytdl", "x.TMP", "x.mkv.crdownload"):
        assert is_partial_name(name)
    assert not is_partial_name("x.mkv")


def test_default_episode_path_round_trips() -> None:
    path = build_episode_path(LIB, "Kaguya-sama (2019)", "Kaguya-sama: Love is War", 1, 5, "ger-dub", "mp4")
    assert path == PurePosixPath(
        "Kaguya-sama (2019)/Season 01/Kaguya-sama - Love is War - S01E005 - (German Dub).mp4"
    )
    ref = parse_episode_filename(path.name, season_from_dirname(path.parent.name))
    assert ref == EpisodeRef(1, (5,), "ger-dub")


def test_movie_path_round_trips() -> None:
    path = build_episode_path(LIB, "Show", "Show", 0, 2, "eng-sub", ".MKV")
    assert path == PurePosixPath("Show/Movies/Show - Movie 02 - (English Sub).mkv")
    assert parse_episode_filename(path.name, season_from_dirname(path.parent.name)) == EpisodeRef(
        0, (2,), "eng-sub"
    )


def test_existing_folder_is_kept_as_it_is_on_disk() -> None:
    path = build_episode_path(LIB, "Re:Zero", "Re:Zero", 2, 1, "ger-sub", "mp4")
    assert path.parts[0] == "Re:Zero"  # the folder with the marker, not a new sanitized one
    assert path.name == "Re-Zero - S02E001 - (German Sub).mp4"


def test_long_titles_never_lose_the_episode_number() -> None:
    path = build_episode_path(LIB, "F", "Very Long Name " * 30, 3, 12, "ger-dub", "mp4")
    assert len(path.name.encode()) <= 200
    assert parse_episode_filename(path.name) == EpisodeRef(3, (12,), "ger-dub")


def test_custom_template_with_title_and_key() -> None:
    lib = {**LIB, "naming": "{folder}/{key}/S{season}E{episode} {title}.{ext}"}
    path = build_episode_path(lib, "F", "N", 1, 2, "ger-dub", "mkv", title="Pilot: Part 1", key="the-show")
    assert path == PurePosixPath("F/the-show/S1E2 Pilot - Part 1.mkv")


@pytest.mark.parametrize(
    ("folder", "name"),
    [("../../etc", "x"), ("..", "x"), ("a/b", "x"), ("F", "../../../etc/passwd"), ("F", "a/../../b")],
)
def test_unsafe_parts_stay_inside_the_root(folder: str, name: str) -> None:
    try:
        path = build_episode_path(LIB, folder, name, 1, 1, "ger-dub", "mp4")
    except ValueError:
        return
    assert not path.is_absolute()
    assert ".." not in path.parts
    assert len(path.parts) == 3


def test_bad_extension_and_numbers() -> None:
    for ext in ("", "mp4/../x", "a b", "toolongext"):
        with pytest.raises(ValueError):
            build_episode_path(LIB, "F", "N", 1, 1, "ger-dub", ext)
    with pytest.raises(ValueError):
        build_episode_path(LIB, "F", "N", -1, 1, "ger-dub", "mp4")
    with pytest.raises(ValueError):  # an empty title would leave an empty folder name
        build_episode_path(
            {**LIB, "naming": "{folder}/{title}/{name}.{ext}"}, "F", "N", 1, 1, "ger-dub", "mp4"
        )
