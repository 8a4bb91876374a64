"""`aniworldd backup`, `aniworldd restore FILE` and `aniworldd healthcheck`.

A backup is one .tar.gz a NAS user can copy anywhere:
  manifest.json   what is inside, which version wrote it
  config.yaml     the config file as written (comments kept)
  aniworldd.db    a consistent copy of the SQLite database (sqlite3 backup API, safe while the daemon runs)
  markers.json    every series folder marker under the library roots (key + site per folder)
  data/<file>     the small state files of the data dir (generated JWT key, password hash): without them a
                  restored daemon would lock its owner out
PostgreSQL is not copied: pg_dump/pg_restore do that job better than we could.

Restore is all-or-nothing: everything is extracted and checked (config valid, database passes
integrity_check) before anything live is replaced; the previous files are kept under
<data_dir>/pre-restore-<time>/. It refuses while a daemon answers on the configured /health.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aniworldd import __version__
from aniworldd.config import ConfigError, config_path, load_config, load_text
from aniworldd.core.markers import (
    LEGACY_KEY_NAME,
    MARKER_NAME,
    MarkerError,
    parse_legacy_key,
    parse_marker_json,
)
from aniworldd.fileio import fsync_dir

FORMAT = 1
DB_NAME = "aniworldd.db"
#: Marker files the scanner reads in a series folder (the daemon's JSON marker, the older plain `key` file).
MARKER_FILES = (MARKER_NAME, LEGACY_KEY_NAME)
#: State files larger than this are not "small state" and stay out of the archive.
MAX_STATE_FILE = 1024 * 1024
_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


class OpsError(Exception):
    """A user-facing reason why backup/restore cannot go on; nothing has been changed when it is raised."""


# -- shared helpers ---------------------------------------------------------------------------------------


def _config_path(arg: str | None) -> Path | None:
    path = config_path(arg)
    return Path(path) if path else None


def _load(path: Path | None) -> dict:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise OpsError("invalid config:\n" + "\n".join(str(i) for i in exc.issues)) from None


def _sqlite_path(cfg: dict) -> Path:
    url = cfg["database"]["url"]
    if not url.startswith("sqlite:///"):
        raise OpsError(
            "the database is PostgreSQL: backup/restore of PostgreSQL is not supported here; "
            "use pg_dump / pg_restore for the database (config and markers: copy config.yaml and the library)"
        )
    return Path(url[len("sqlite:///") :])


def _probe_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def health_url(cfg: dict) -> str:
    return f"http://{_probe_host(cfg['server']['host'])}:{cfg['server']['port']}/health"


def probe_health(url: str, timeout: float = 3.0) -> dict | None:
    """The /health body of a daemon answering at `url`, or None when nothing that looks like us answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http URL built from config
            body = resp.read(65536)
    except urllib.error.HTTPError as exc:  # 503 = running but degraded: still running
        body = exc.read(65536) if exc.fp else b""
    except (OSError, ValueError):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "status" in data and "version" in data else None


def _fsync_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, mode)


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent single-file copy of `source` (WAL content included), checked before it is trusted."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # one step: a read snapshot, so concurrent daemon writes cannot tear the copy
            dst.execute("PRAGMA journal_mode=DELETE")  # self-contained file; the daemon turns WAL back on
            _check_integrity(dst, target)
        finally:
            dst.close()
    finally:
        src.close()


def _check_integrity(conn: sqlite3.Connection, name: Path | str) -> None:
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise OpsError(f"{name}: not a usable SQLite database ({exc})") from None
    if not result or result[0] != "ok":
        raise OpsError(f"{name}: database integrity check failed: {result[0] if result else '?'}")


# -- markers ----------------------------------------------------------------------------------------------


def collect_markers(roots: list[str]) -> list[dict]:
    """Every series folder marker: one entry per marker file, with its raw content for an exact restore."""
    found = []
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for name in MARKER_FILES:
                marker = folder / name
                if not marker.is_file():
                    continue
                try:
                    content = marker.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                key, site = _marker_identity(name, content)
                found.append(
                    {
                        "root": str(base),
                        "folder": folder.name,
                        "marker": name,
                        "key": key,
                        "site": site,
                        "content": content,
                    }
                )
    return found


def _marker_identity(name: str, content: str) -> tuple[str | None, str | None]:
    """(key, site) as the scanner reads them; (None, None) for a marker the scanner would reject."""
    try:
        marker = parse_legacy_key(content) if name == LEGACY_KEY_NAME else parse_marker_json(content)
    except MarkerError:
        return None, None
    return marker.key, (marker.site if name == MARKER_NAME else None)


def restore_markers(markers: list[dict]) -> tuple[int, int]:
    """Write markers missing in folders that exist; never overwrite one. Returns (written, skipped)."""
    written = skipped = 0
    for entry in markers:
        try:
            folder = Path(entry["root"]) / entry["folder"]
            name = entry["marker"]
            content = entry["content"]
        except (KeyError, TypeError):
            skipped += 1
            continue
        if name not in MARKER_FILES or "/" in entry["folder"] or entry["folder"] in ("", ".", ".."):
            skipped += 1
            continue
        target = folder / name
        if not folder.is_dir() or target.exists():
            skipped += 1
            continue
        tmp = folder / f".{name}.restore-tmp"
        _fsync_write(tmp, str(content).encode(), 0o644)
        os.replace(tmp, target)
        written += 1
    return written, skipped


# -- backup -----------------------------------------------------------------------------------------------


def _state_files(data_dir: Path, db_path: Path) -> list[Path]:
    if not data_dir.is_dir():
        return []
    db_names = {db_path.name + s for s in _DB_SUFFIXES} if db_path.parent == data_dir else set()
    return sorted(
        p
        for p in data_dir.iterdir()
        if p.is_file()
        and not p.is_symlink()
        and p.name not in db_names
        and not p.name.endswith((".tar.gz", ".tmp", ".partial"))
        and p.stat().st_size <= MAX_STATE_FILE
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o600) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def create_backup(config_path: Path | None, output: Path | None) -> dict:
    """Write the archive; returns the manifest. Raises OpsError (nothing written) when it cannot."""
    cfg = _load(config_path)
    db_path = _sqlite_path(cfg)
    if not db_path.is_file():
        raise OpsError(f"no database at {db_path} (has the daemon ever run with this config?)")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    output = output or Path.cwd() / f"aniworldd-backup-{stamp}.tar.gz"
    if output.exists():
        raise OpsError(f"{output} already exists; choose another --output")
    if not output.parent.is_dir():
        raise OpsError(f"{output.parent}: no such directory")

    data_dir = Path(cfg["data_dir"])
    markers = collect_markers(cfg["library"]["roots"])
    state = _state_files(data_dir, db_path)
    config_bytes = config_path.read_bytes() if config_path and config_path.is_file() else None
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "aniworldd_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "config": "config.yaml" if config_bytes is not None else None,
        "config_source": str(config_path) if config_path else None,
        "database": DB_NAME,
        "data_dir": str(data_dir),
        "data_files": [p.name for p in state],
        "library_roots": list(cfg["library"]["roots"]),
        "markers": len(markers),
    }
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix="aniworldd-backup-") as tmp:
        db_copy = Path(tmp) / DB_NAME
        _sqlite_copy(db_path, db_copy)
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                    _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
                    if config_bytes is not None:
                        _add_bytes(tar, "config.yaml", config_bytes)
                    info = tarfile.TarInfo(DB_NAME)
                    info.size, info.mode, info.mtime = db_copy.stat().st_size, 0o600, int(time.time())
                    with db_copy.open("rb") as db_file:
                        tar.addfile(info, db_file)
                    _add_bytes(
                        tar, "markers.json", json.dumps(markers, indent=2, ensure_ascii=False).encode()
                    )
                    for path in state:
                        _add_bytes(tar, f"data/{path.name}", path.read_bytes(), 0o600)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, output)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    fsync_dir(output.parent)
    manifest["output"] = str(output)
    manifest["size_bytes"] = output.stat().st_size
    return manifest


# -- restore ----------------------------------------------------------------------------------------------


def _read_archive(path: Path) -> dict[str, bytes]:
    """Every member of a backup, checked against the names a backup can hold (no paths, links or devices)."""
    try:
        tar = tarfile.open(path, mode="r:gz")
    except FileNotFoundError:
        raise OpsError(f"{path}: no such file") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise OpsError(f"{path}: not an aniworldd backup (.tar.gz): {exc}") from None
    members: dict[str, bytes] = {}
    with tar:
        try:
            for info in tar:
                name = info.name
                allowed = name in ("manifest.json", "config.yaml", DB_NAME, "markers.json") or (
                    name.startswith("data/") and "/" not in name[5:] and name[5:] not in ("", ".", "..")
                )
                if not allowed or not info.isfile():
                    raise OpsError(f"{path}: unexpected member {name!r}; refusing this archive")
                fileobj = tar.extractfile(info)
                members[name] = fileobj.read() if fileobj else b""
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise OpsError(f"{path}: damaged archive: {exc}") from None
    if "manifest.json" not in members or DB_NAME not in members:
        raise OpsError(f"{path}: not an aniworldd backup (manifest.json or {DB_NAME} missing)")
    try:
        manifest = json.loads(members["manifest.json"])
    except ValueError:
        raise OpsError(f"{path}: manifest.json is not JSON") from None
    version = manifest.get("format") if isinstance(manifest, dict) else None
    if version != FORMAT:
        raise OpsError(f"{path}: unsupported backup format {version!r}")
    return members


def _check_database(data: bytes, name: str) -> None:
    """The archived database must open, pass integrity_check and hold our tables (checked in a temp dir)."""
    with tempfile.TemporaryDirectory(prefix="aniworldd-restore-") as tmp:
        path = Path(tmp) / DB_NAME
        path.write_bytes(data)
        conn = sqlite3.connect(path)
        try:
            _check_integrity(conn, name)
            conn.execute("SELECT COUNT(*) FROM anime_series").fetchone()
        except sqlite3.DatabaseError as exc:
            raise OpsError(f"{name} is not an aniworldd database ({exc})") from None
        finally:
            conn.close()


def _match_owner(path: Path, like: Path) -> None:
    """Run as root (sudo) for a daemon that runs as its own user: give restored files the owner it expects."""
    if os.geteuid() != 0:
        return
    try:
        st = like.stat()
        os.chown(path, st.st_uid, st.st_gid)
    except OSError:
        pass


@contextmanager
def _staged(path: Path, data: bytes, mode: int) -> Iterator[Path]:
    """A fully written, fsynced temp file next to `path` (same filesystem, so os.replace is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.restore-{os.getpid()}.tmp")
    _fsync_write(tmp, data, mode)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def restore_backup(archive: Path, config_path: Path | None, write_markers: bool = False) -> dict:
    members = _read_archive(archive)
    config_bytes = members.get("config.yaml")
    if config_bytes is not None and config_path is None:
        raise OpsError(
            "the backup holds a config file: say where it goes with --config FILE (or $ANIWORLDD_CONFIG)"
        )

    # The config that will be live after the restore decides where the database goes.
    try:
        if config_bytes is not None:
            assert config_path is not None
            new_cfg = load_text(
                config_bytes.decode("utf-8"),
                str(config_path),
                os.environ,
                Path(os.path.abspath(config_path)).parent,
            )
        else:
            new_cfg = load_config(config_path)
    except ConfigError as exc:
        raise OpsError(
            "the config in the backup is not valid here:\n" + "\n".join(map(str, exc.issues))
        ) from None
    except UnicodeDecodeError:
        raise OpsError("the config in the backup is not UTF-8 text") from None
    db_path = _sqlite_path(new_cfg)
    data_dir = Path(new_cfg["data_dir"])

    urls = {health_url(new_cfg)}
    if config_path is not None and config_path.is_file():
        try:
            urls.add(health_url(load_config(config_path)))
        except ConfigError:
            pass
    for url in sorted(urls):
        if probe_health(url) is not None:
            raise OpsError(
                f"the daemon is running (it answers on {url}); stop it first (systemctl stop aniworldd)"
            )

    try:
        markers = json.loads(members.get("markers.json", b"[]"))
    except ValueError:
        raise OpsError("markers.json in the backup is not JSON") from None
    if not isinstance(markers, list):
        raise OpsError("markers.json in the backup is not a list")

    _check_database(members[DB_NAME], f"{archive}:{DB_NAME}")

    # Everything is checked: nothing on disk has been touched so far. Keep what is live now, then swap.
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    keep = data_dir / f"pre-restore-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    keep.mkdir(mode=0o700)
    with _staged(db_path, members[DB_NAME], 0o600) as db_tmp:
        _match_owner(db_tmp, db_path if db_path.exists() else db_path.parent)
        if db_path.is_file():
            _sqlite_copy(db_path, keep / DB_NAME)
        old_config = keep / "config.yaml"
        had_config = config_path is not None and config_path.is_file()
        if had_config:
            shutil.copy2(config_path, old_config)  # type: ignore[arg-type]
        if config_bytes is not None:
            assert config_path is not None
            mode = config_path.stat().st_mode & 0o777 if had_config else 0o640
            with _staged(config_path, config_bytes, mode) as cfg_tmp:
                _match_owner(cfg_tmp, config_path if had_config else config_path.parent)
                os.replace(cfg_tmp, config_path)
        try:
            for suffix in _DB_SUFFIXES[1:]:  # a stale WAL would be replayed onto the restored file
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
            os.replace(db_tmp, db_path)
        except OSError:  # put the config back: both or neither
            if config_bytes is not None and config_path is not None:
                if had_config:
                    os.replace(old_config, config_path)
                else:
                    config_path.unlink(missing_ok=True)
            raise
    fsync_dir(db_path.parent)

    restored_files = []
    for name, data in members.items():
        if name.startswith("data/"):
            target = data_dir / name[5:]
            if target.exists():
                shutil.copy2(target, keep / target.name)
            with _staged(target, data, 0o600) as tmp:
                _match_owner(tmp, target if target.exists() else data_dir)
                os.replace(tmp, target)
            restored_files.append(target.name)
    if not any(keep.iterdir()):
        keep.rmdir()
    written, skipped = restore_markers(markers) if write_markers else (0, len(markers))
    return {
        "config": str(config_path) if config_bytes is not None else None,
        "database": str(db_path),
        "data_files": sorted(restored_files),
        "markers_in_backup": len(markers),
        "markers_written": written,
        "previous_files": str(keep) if keep.exists() else None,
    }


# -- commands ---------------------------------------------------------------------------------------------


def _backup(args: argparse.Namespace) -> int:
    try:
        result = create_backup(_config_path(args.config), Path(args.output) if args.output else None)
    except OpsError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"backup written: {result['output']} ({result['size_bytes']} bytes; config: "
        f"{'yes' if result['config'] else 'no'}, database, {result['markers']} marker(s), "
        f"{len(result['data_files'])} state file(s))"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    try:
        result = restore_backup(Path(args.file), _config_path(args.config), args.markers)
    except OpsError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"restored database {result['database']}"
        + (f" and config {result['config']}" if result["config"] else "")
    )
    if result["data_files"]:
        print(f"restored state files: {', '.join(result['data_files'])}")
    if args.markers:
        print(f"markers: {result['markers_written']} written, the rest already present or folder missing")
    if result["previous_files"]:
        print(f"previous files kept in {result['previous_files']}")
    return 0


def _healthcheck(args: argparse.Namespace) -> int:
    try:
        url = args.url or health_url(_load(_config_path(args.config)))
    except OpsError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    body = probe_health(url, timeout=args.timeout)
    if body is None:
        print(f"unhealthy: no answer from {url}", file=sys.stderr)
        return 1
    print(f"{body.get('status')} ({url}, version {body.get('version')})")
    return 0 if body.get("status") == "ok" else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="write config, database and folder markers into one .tar.gz")
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG)")
    p.add_argument("--output", "-o", help="archive to write (default: ./aniworldd-backup-<time>.tar.gz)")
    p.set_defaults(func=_backup)

    p = sub.add_parser("restore", help="restore a backup (the daemon must be stopped)")
    p.add_argument("file", help="archive written by `aniworldd backup`")
    p.add_argument("--config", "-c", help="where the config goes / is (default: $ANIWORLDD_CONFIG)")
    p.add_argument(
        "--markers",
        action="store_true",
        help="also write series folder markers that are missing (never overwrites one)",
    )
    p.set_defaults(func=_restore)

    p = sub.add_parser("healthcheck", help="exit 0 when the daemon's /health answers ok (Docker HEALTHCHECK)")
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG)")
    p.add_argument("--url", help="probe this URL instead of the configured host/port")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=_healthcheck)
