"""The marker file that ties a series folder to its provider key.

`.aniworld.json` ({key, site, name, link}) is written by the daemon; a plain-text `key` file (one line, the
key) is read for libraries made by older tools. Because the key lives inside the folder, renaming or moving
the folder keeps its identity. Writes are atomic (temp file + fsync + rename): a crash never leaves a
half-written marker that would turn a matched folder into an unmatched one.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from aniworldd.core.validators import SITES, validate_series_key
from aniworldd.fileio import atomic_write

MARKER_NAME = ".aniworld.json"
LEGACY_KEY_NAME = "key"
MARKER_MAX_BYTES = 64 * 1024


class MarkerError(ValueError):
    """A marker exists but cannot be used (bad JSON, bad key); the folder is reported as unmatched."""


@dataclass(frozen=True, slots=True)
class Marker:
    key: str
    site: str = "aniworld"
    name: str | None = None
    link: str | None = None
    #: Which file it came from: "json" (.aniworld.json) or "key" (legacy plain-text file).
    source: str = "json"

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("source")
        return data


def _read_small(path: Path) -> str:
    """The text of a small regular file, read without ever blocking or leaving the folder.

    O_NOFOLLOW: a marker that is a symlink (`key -> /etc/passwd`) is refused, so its target's first line
    never shows up in an "invalid key" message. O_NONBLOCK + the S_ISREG check: a FIFO or device named
    like a marker is refused instead of blocking the scan thread forever in open() or read().
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MarkerError(f"{path.name} is a symlink, not a regular file") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise MarkerError(f"{path.name} is not a regular file")
        raw = fh.read(MARKER_MAX_BYTES + 1)
    if len(raw) > MARKER_MAX_BYTES:
        raise MarkerError(f"{path.name} is larger than {MARKER_MAX_BYTES} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MarkerError(f"{path.name} is not UTF-8 text") from None


def parse_marker_json(text: str) -> Marker:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MarkerError(f"{MARKER_NAME} is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise MarkerError(f"{MARKER_NAME} must hold a JSON object")
    try:
        key = validate_series_key(data.get("key"))
    except ValueError as exc:
        raise MarkerError(f"{MARKER_NAME}: {exc}") from None
    site = data.get("site") or "aniworld"
    if site not in SITES:
        raise MarkerError(f"{MARKER_NAME}: unknown site {site!r} (expected {', '.join(SITES)})")
    name = data.get("name")
    link = data.get("link")
    return Marker(
        key=key,
        site=site,
        name=name.strip() or None if isinstance(name, str) else None,
        link=link.strip() or None if isinstance(link, str) else None,
        source="json",
    )


def parse_legacy_key(text: str) -> Marker:
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    try:
        key = validate_series_key(line)
    except ValueError as exc:
        raise MarkerError(f"{LEGACY_KEY_NAME} file: {exc}") from None
    return Marker(key=key, source="key")


def read_marker(folder: str | Path) -> Marker | None:
    """The folder's marker, None when it has none; MarkerError when one exists but is unusable.

    `.aniworld.json` wins over a legacy `key` file.
    """
    folder = Path(folder)
    try:
        return parse_marker_json(_read_small(folder / MARKER_NAME))
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise MarkerError(f"{MARKER_NAME} is a directory") from None
    try:
        return parse_legacy_key(_read_small(folder / LEGACY_KEY_NAME))
    except (FileNotFoundError, IsADirectoryError):
        return None


def write_marker(
    folder: str | Path, key: str, site: str = "aniworld", name: str | None = None, link: str | None = None
) -> Marker:
    """Write `.aniworld.json` atomically (temp file in the same folder, fsync, rename)."""
    folder = Path(folder)
    validate_series_key(key)
    if site not in SITES:
        raise ValueError(f"unknown site {site!r} (expected {', '.join(SITES)})")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    marker = Marker(key=key, site=site, name=name, link=link)
    data = json.dumps(marker.to_json(), ensure_ascii=False, indent=2) + "\n"
    atomic_write(folder / MARKER_NAME, data, 0o644)
    return marker
