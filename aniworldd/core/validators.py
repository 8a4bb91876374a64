"""Input validation shared by the API, the CLI, the provider and the scanner.

Every function either returns the cleaned value or raises ValueError with a message a user can act on.
They are pure (no I/O except `safe_join`, which resolves paths), so the API can call them before anything
is changed: bad input gets a clear error and nothing is touched.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

KEY_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KEY_MAX_LEN = 200
NAME_MAX_LEN = 300
EPISODE_MIN = 1
EPISODE_MAX = 1000
QUALITIES = ("360p", "480p", "720p", "1080p", "best", "worst")
LANGUAGES = ("ger-dub", "ger-sub", "eng-sub", "eng-dub")
#: Display names used in file names (`(German Dub)`), keyed by language code.
LANGUAGE_NAMES = {
    "ger-dub": "German Dub",
    "ger-sub": "German Sub",
    "eng-sub": "English Sub",
    "eng-dub": "English Dub",
}
SITES = ("aniworld", "sto")
#: Hosts of the real sites; the configured provider base URLs are accepted as well (tests, mirrors).
SITE_HOSTS = {
    "aniworld.to": "aniworld",
    "www.aniworld.to": "aniworld",
    "s.to": "sto",
    "www.s.to": "sto",
    "serienstream.to": "sto",
    "www.serienstream.to": "sto",
}
FILENAME_MAX_BYTES = 200
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
)

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Invisible characters that change how a name looks, not what it says: bidi overrides/isolates (U+202E
#: turns `mkv.exe` into `exe.vkm`), zero-width spaces/joiners, word joiner, BOM, soft hyphen.
_INVISIBLE_RE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def strip_invisible(text: str) -> str:
    """`text` without invisible formatting characters (see _INVISIBLE_RE)."""
    return _INVISIBLE_RE.sub("", text)


_TEXT_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(text: str | None, multiline: bool = False) -> str:
    """A display text (title, plot) from a provider page without invisible or control characters: no
    NUL reaches an NFO file, no U+202E turns a title around in the UI. Tabs/newlines stay in `multiline`."""
    if not text:
        return ""
    text = strip_invisible(str(text))
    return (_TEXT_CONTROL_RE if multiline else _LINE_CONTROL_RE).sub("" if multiline else " ", text).strip()


_COLON_SPACE_RE = re.compile(r"\s*:\s+")
_SEPARATOR_RE = re.compile(r"[/\\]+")
_FORBIDDEN_RE = re.compile(r'[<>"|?*:]')
_DOTS_RE = re.compile(r"\.{2,}")
_SPACES_RE = re.compile(r"\s+")
_BACKUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
# /anime/stream/<key>[/...] on aniworld; /serie/stream/<key> (old s.to) and /serie/<key> (2026 s.to layout).
_URL_PATH_RE = re.compile(r"^/(?:anime/stream|serie/stream|serie)/([^/?#]+)(?:/.*)?$")


def validate_series_key(key: Any) -> str:
    """A provider URL slug: lowercase letters, digits, single hyphens (`attack-on-titan`, `86-eighty-six`)."""
    if not isinstance(key, str) or not key:
        raise ValueError("series key must be a non-empty string")
    if len(key) > KEY_MAX_LEN:
        raise ValueError(f"series key is longer than {KEY_MAX_LEN} characters")
    if not KEY_RE.match(key):
        raise ValueError(
            f"invalid series key {key!r}: use lowercase letters, digits and single hyphens"
            " (e.g. attack-on-titan)"
        )
    return key


def validate_series_key_or_folder(identifier: Any, allow_folder: bool = True) -> tuple[str, bool]:
    """(identifier, is_key). A key is preferred; a folder name is only accepted for backward compatibility."""
    if not isinstance(identifier, str) or not identifier.strip():
        raise ValueError("series identifier must be a non-empty string")
    identifier = identifier.strip()
    if KEY_RE.match(identifier) and len(identifier) <= KEY_MAX_LEN:
        return identifier, True
    if not allow_folder:
        raise ValueError(f"invalid series key {identifier!r}")
    if identifier in (".", "..") or "/" in identifier or "\\" in identifier or _CONTROL_RE.search(identifier):
        raise ValueError(f"invalid folder name {identifier!r}")
    if len(identifier.encode("utf-8")) > 255:
        raise ValueError("folder name is too long")
    return identifier, False


def validate_series_name(name: Any) -> str:
    """A display name: non-empty after trimming, printable, at most NAME_MAX_LEN characters."""
    if not isinstance(name, str):
        raise ValueError("series name must be a string")
    name = name.strip()
    if not name:
        raise ValueError("series name must not be empty")
    if len(name) > NAME_MAX_LEN:
        raise ValueError(f"series name is longer than {NAME_MAX_LEN} characters")
    if _CONTROL_RE.search(name):
        raise ValueError("series name contains control characters")
    return name


def validate_episode_range(episode: Any, minimum: int = EPISODE_MIN, maximum: int = EPISODE_MAX) -> int:
    """An episode number within [1, 1000] (season 0 movies use the same range)."""
    if isinstance(episode, bool):
        raise ValueError("episode must be an integer")
    if isinstance(episode, str) and episode.strip().isdigit():
        episode = int(episode.strip())
    if not isinstance(episode, int):
        raise ValueError("episode must be an integer")
    if not minimum <= episode <= maximum:
        raise ValueError(f"episode must be between {minimum} and {maximum}")
    return episode


def validate_download_quality(quality: Any) -> str:
    if not isinstance(quality, str) or quality.strip().lower() not in QUALITIES:
        raise ValueError(f"invalid quality {quality!r}: expected one of {', '.join(QUALITIES)}")
    return quality.strip().lower()


def validate_language(language: Any) -> str:
    if not isinstance(language, str) or language.strip().lower() not in LANGUAGES:
        raise ValueError(f"invalid language {language!r}: expected one of {', '.join(LANGUAGES)}")
    return language.strip().lower()


def parse_anime_url(url: Any, bases: dict[str, str] | None = None) -> tuple[str, str]:
    """(site, key) from a series link (any page below the series: season, episode).

    `bases` maps site -> configured base URL (`{"aniworld": "http://127.0.0.1:8080"}`) so a local fake
    site or a mirror is accepted like the real host.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("link must be a non-empty URL")
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"invalid link {url!r}: expected an http(s) URL")
    host = parsed.netloc.lower()
    site = SITE_HOSTS.get(host)
    path = parsed.path
    # Several configured sites may share one origin (a mirror, the local look-alike): the path decides.
    for name, base in (bases or {}).items():
        b = urlparse(base)
        prefix = b.path.rstrip("/")
        if b.netloc.lower() == host and parsed.path.startswith(prefix + "/"):
            local = parsed.path[len(prefix) :]
            wanted = "/anime/stream/" if name == "aniworld" else "/serie/"
            if site is None or local.startswith(wanted):
                site, path = name, local
    if site is None:
        raise ValueError(f"invalid link {url!r}: not an aniworld.to or s.to address")
    m = _URL_PATH_RE.match(path)
    wanted_prefix = "/anime/stream/" if site == "aniworld" else "/serie/"
    if not m or not path.startswith(wanted_prefix):
        raise ValueError(f"invalid link {url!r}: expected a series page such as {wanted_prefix}<key>")
    key = m.group(1)
    try:
        validate_series_key(key)
    except ValueError:
        raise ValueError(f"invalid link {url!r}: {key!r} is not a valid series key") from None
    return site, key


def validate_anime_url(url: Any, bases: dict[str, str] | None = None) -> str:
    """The link itself (trimmed) when it points at a series on aniworld.to or s.to."""
    parse_anime_url(url, bases)
    return url.strip()


def validate_backup_name(name: Any) -> str:
    """A backup file name as listed by the config service: one plain file name, never a path."""
    if not isinstance(name, str) or not _BACKUP_RE.match(name) or ".." in name:
        raise ValueError(f"invalid backup name {name!r}")
    return name


def validate_config_data(data: Any) -> dict:
    """A whole config document, validated against the config schema; ValueError lists every issue."""
    from aniworldd.config import validate_document  # late: keeps core importable without the schema

    if not isinstance(data, dict):
        raise ValueError("config must be a mapping")
    cfg, issues = validate_document(data, "<request>")
    if issues:
        raise ValueError("; ".join(f"{i.path}: {i.message}" if i.path else i.message for i in issues))
    return cfg


def _truncate_utf8(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def sanitize_filename(name: Any, max_bytes: int = FILENAME_MAX_BYTES) -> str:
    """Turn a title into one safe path component (a folder or file name) or raise ValueError.

    No separators, no `..`, no control characters, none of `<>:"|?*` (Windows/SMB shares), no leading dot
    (the scanner ignores hidden entries), no trailing dots/spaces, not a reserved Windows device name,
    at most `max_bytes` of UTF-8. `Re:Zero` becomes `Re-Zero`, `Title: Sub` becomes `Title - Sub`.
    """
    if not isinstance(name, str):
        raise ValueError("file name must be a string")
    text = strip_invisible(unicodedata.normalize("NFC", name))
    text = _CONTROL_RE.sub(" ", text)
    text = text.replace("...", "\u2026")
    text = _COLON_SPACE_RE.sub(" - ", text)
    text = _SEPARATOR_RE.sub("-", text)
    text = _FORBIDDEN_RE.sub(lambda m: "-" if m.group(0) == ":" else "", text)
    text = _DOTS_RE.sub(".", text)
    text = _SPACES_RE.sub(" ", text).strip()
    text = text.lstrip(". ")
    text = _truncate_utf8(text, max_bytes)
    text = text.rstrip(". ")
    if not text:
        raise ValueError(f"file name {name!r} is empty after removing unsafe characters")
    if text.split(".")[0].strip().upper() in WINDOWS_RESERVED:
        text = _truncate_utf8("_" + text, max_bytes).rstrip(". ")
    return text


def safe_join(root: str | Path, *parts: str | Path) -> Path:
    """root / parts, resolved; ValueError when the result leaves root (`..`, absolute parts, symlinks)."""
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if not target.is_relative_to(base):
        raise ValueError(f"path {'/'.join(str(p) for p in parts)!r} escapes the library root {str(base)!r}")
    return target
