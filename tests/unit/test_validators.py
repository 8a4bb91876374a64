"""Validators: the seed's examples, plus every way a name could leave its library root."""

from __future__ import annotations

import os

import pytest

from aniworldd.core.validators import (
    parse_anime_url,
    safe_join,
    sanitize_filename,
    validate_anime_url,
    validate_backup_name,
    validate_config_data,
    validate_download_quality,
    validate_episode_range,
    validate_language,
    validate_series_key,
    validate_series_key_or_folder,
    validate_series_name,
)


@pytest.mark.parametrize("key", ["attack-on-titan", "one-piece", "86-eighty-six", "a", "x1-2y"])
def test_valid_series_keys(key: str) -> None:
    assert validate_series_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["Attack On Titan", "attack_on_titan", "attack on titan", "", "-leading", "trailing-", "double--hyphen",
     "ümlaut", "../etc", "a/b", None, 5, "x" * 201],
)  # fmt: skip
def test_invalid_series_keys(key: object) -> None:
    with pytest.raises(ValueError):
        validate_series_key(key)


def test_key_or_folder() -> None:
    assert validate_series_key_or_folder("attack-on-titan") == ("attack-on-titan", True)
    assert validate_series_key_or_folder("Attack on Titan (2013)") == ("Attack on Titan (2013)", False)
    with pytest.raises(ValueError):
        validate_series_key_or_folder("Attack on Titan (2013)", allow_folder=False)
    for bad in ("..", "a/b", "a\\b", "", "  ", "x\x00y"):
        with pytest.raises(ValueError):
            validate_series_key_or_folder(bad)


def test_series_name() -> None:
    assert validate_series_name("  Kaguya-sama: Love is War ") == "Kaguya-sama: Love is War"
    for bad in ("", "   ", "bell\x07", "x" * 301, None):
        with pytest.raises(ValueError):
            validate_series_name(bad)


def test_episode_range() -> None:
    assert validate_episode_range(1) == 1
    assert validate_episode_range(1000) == 1000
    assert validate_episode_range("12") == 12
    for bad in (0, -1, 1001, True, 1.5, "x", None):
        with pytest.raises(ValueError):
            validate_episode_range(bad)


def test_quality_and_language() -> None:
    for q in ("360p", "480p", "720p", "1080p", "best", "worst"):
        assert validate_download_quality(q) == q
    assert validate_download_quality("BEST") == "best"
    for bad in ("4k", "1440p", "", None):
        with pytest.raises(ValueError):
            validate_download_quality(bad)
    for lang in ("ger-sub", "ger-dub", "eng-sub", "eng-dub"):
        assert validate_language(lang) == lang
    for bad in ("fr-dub", "german", "", None):
        with pytest.raises(ValueError):
            validate_language(bad)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://aniworld.to/anime/stream/kaguya-sama-love-is-war", ("aniworld", "kaguya-sama-love-is-war")),
        ("https://aniworld.to/anime/stream/kaguya-sama-love-is-war/staffel-2/episode-3",
         ("aniworld", "kaguya-sama-love-is-war")),
        ("https://www.aniworld.to/anime/stream/one-piece/", ("aniworld", "one-piece")),
        ("https://s.to/serie/the-office-us", ("sto", "the-office-us")),  # 2026 s.to layout
        ("https://s.to/serie/stream/the-office-us/staffel-1", ("sto", "the-office-us")),  # older layout
        ("http://serienstream.to/serie/stream/the-office-us", ("sto", "the-office-us")),
    ],
)  # fmt: skip
def test_anime_urls(url: str, expected: tuple[str, str]) -> None:
    assert parse_anime_url(url) == expected
    assert validate_anime_url(f"  {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/anime/stream/one-piece",
        "https://aniworld.to/serie/one-piece",  # s.to path on aniworld
        "https://s.to/anime/stream/one-piece",
        "https://aniworld.to/anime/stream/One_Piece",
        "https://aniworld.to/",
        "ftp://aniworld.to/anime/stream/one-piece",
        "aniworld.to/anime/stream/one-piece",
        "",
        None,
    ],
)
def test_invalid_anime_urls(url: object) -> None:
    with pytest.raises(ValueError):
        validate_anime_url(url)


def test_configured_provider_bases_are_accepted() -> None:
    bases = {"aniworld": "http://127.0.0.1:8080", "sto": "http://127.0.0.1:8081/sto"}
    assert parse_anime_url("http://127.0.0.1:8080/anime/stream/one-piece", bases) == ("aniworld", "one-piece")
    assert parse_anime_url("http://127.0.0.1:8081/sto/serie/the-office-us", bases) == ("sto", "the-office-us")
    with pytest.raises(ValueError):
        parse_anime_url("http://127.0.0.1:9999/anime/stream/one-piece", bases)


def test_backup_names() -> None:
    assert validate_backup_name("config-20240101T120000Z.yaml") == "config-20240101T120000Z.yaml"
    for bad in ("../config.yaml", "a/b.yaml", ".hidden", "", "x..y", "a\\b", None):
        with pytest.raises(ValueError):
            validate_backup_name(bad)


def test_config_data() -> None:
    cfg = validate_config_data({"downloads": {"max_concurrent": 3}})
    assert cfg["downloads"]["max_concurrent"] == 3
    assert cfg["library"]["watch"] is True
    with pytest.raises(ValueError, match="downloads.max_concurrent"):
        validate_config_data({"downloads": {"max_concurrent": "many"}})
    with pytest.raises(ValueError):
        validate_config_data(["not", "a", "mapping"])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Attack on Titan", "Attack on Titan"),
        ("Re:Zero", "Re-Zero"),
        ("Kaguya-sama: Love is War", "Kaguya-sama - Love is War"),
        ("AC/DC", "AC-DC"),
        ('What? "Why" <Who> | *', "What Why Who"),
        ("trailing dots...", "trailing dots\u2026"),
        ("trailing dot. ", "trailing dot"),
        ("tab\there", "tab here"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("COM1", "_COM1"),
        ("LPT9", "_LPT9"),
        ("COM10", "COM10"),
        (".hidden", "hidden"),
        ("日本語のタイトル", "日本語のタイトル"),
    ],
)
def test_sanitize_filename(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(
    "evil",
    ["..", "../..", "../../etc/passwd", "/etc/passwd", "..\\..\\windows", "a/../../b", "\x00..\x00", "./."],
)
def test_sanitized_names_never_leave_the_root(tmp_path, evil: str) -> None:
    try:
        clean = sanitize_filename(evil)
    except ValueError:
        return  # nothing usable left is also safe
    assert "/" not in clean and "\\" not in clean and ".." not in clean
    assert clean not in (".", "..")
    assert safe_join(tmp_path, clean).parent == tmp_path.resolve()


def test_sanitize_length_limit_keeps_whole_characters() -> None:
    out = sanitize_filename("日" * 150)  # 450 bytes
    assert len(out.encode("utf-8")) <= 200
    assert out == "日" * 66
    assert len(sanitize_filename("x" * 500).encode()) == 200


def test_sanitize_rejects_what_cannot_be_a_name() -> None:
    for bad in ("", "   ", ". .", "\x01\x02", "<>|?*", None):
        with pytest.raises(ValueError):
            sanitize_filename(bad)
    assert sanitize_filename("...") == "\u2026"  # an ellipsis is a name, not a parent directory
    assert sanitize_filename("///") == "-"


def test_safe_join(tmp_path) -> None:
    assert safe_join(tmp_path, "Show", "Season 01") == tmp_path.resolve() / "Show" / "Season 01"
    for parts in (("..",), ("../x",), ("a", "..", "..", "b"), ("/etc",), ("a/../../..",)):
        with pytest.raises(ValueError, match="escapes"):
            safe_join(tmp_path, *parts)


def test_safe_join_refuses_symlinks_out_of_the_root(tmp_path) -> None:
    root = tmp_path / "library"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(ValueError):
        safe_join(root, "link", "file.mkv")


def test_parse_anime_url_sites_sharing_one_origin() -> None:
    """A mirror or the local look-alike may serve both sites at one origin: the path decides the site."""
    from aniworldd.core.validators import parse_anime_url

    bases = {"aniworld": "http://127.0.0.1:8090", "sto": "http://127.0.0.1:8090"}
    assert parse_anime_url("http://127.0.0.1:8090/serie/the-office-us/staffel-1", bases) == (
        "sto",
        "the-office-us",
    )
    assert parse_anime_url("http://127.0.0.1:8090/anime/stream/kaguya", bases) == ("aniworld", "kaguya")
