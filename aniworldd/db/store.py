"""Database binding and the one thread that talks to it.

Pony's sessions are synchronous and thread-bound. All database work runs on a single dedicated thread:
the event loop never blocks on SQLite, and SQLite never sees two writers from this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from pony.orm import Database, db_session

from aniworldd.db.models import define_entities

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseError(Exception):
    """The database cannot be opened or used; the message says why in user terms."""


class DatabaseDamaged(DatabaseError):
    """The database file is there but damaged or empty: a restart cannot fix it, a person must decide
    (restore a backup, or delete the file to start empty). `aniworldd run` exits with EXIT_DAMAGED so
    systemd does not restart it in a loop (RestartPreventExitStatus=)."""


#: pg_advisory_lock key held while the tables are created ("awdb" in ASCII).
SCHEMA_LOCK = 0x61776462

#: Exit status of `aniworldd run` for a damaged database (EX_DATAERR from sysexits.h).
EXIT_DAMAGED = 65


def check_sqlite_file(path: Path) -> None:
    """Refuse a database file that would otherwise be silently replaced or fail later with a traceback.

    A zero-length file is what a failed copy or a full disk leaves; SQLite would happily turn it into a
    new empty database and the queue would be gone. Corruption in the middle of the file is only noticed
    when a query touches that page, so `PRAGMA quick_check` reads every page once at start.
    """
    if not path.exists():
        return
    if not path.is_file():
        raise DatabaseDamaged(f"database {path} is not a regular file")
    wal = Path(f"{path}-wal")
    if path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size > 0):
        raise DatabaseDamaged(
            f"database file {path} is empty (0 bytes); refusing to start with an empty queue. "
            "Restore a backup (aniworldd restore) or delete the file to start with a new database"
        )
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute("PRAGMA quick_check(5)").fetchall()
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "unable to open" in str(exc):
            return  # busy or not readable read-only: the normal open below reports what is wrong
        rows = [(str(exc),)]
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        rows = [(str(exc),)]
    problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
    if problems:
        raise DatabaseDamaged(
            f"database {path} is corrupt ({'; '.join(problems)[:300]}). "
            "Restore a backup (aniworldd restore), or try `sqlite3 DB .recover`; the file was left as it is"
        )


def default_url(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir) / 'aniworldd.db'}"


def _bind(db: Database, url: str) -> str:
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        check_sqlite_file(path)

        @db.on_connect(provider="sqlite")
        def _pragmas(_db: Database, connection: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")

        db.bind(provider="sqlite", filename=str(path), create_db=True)
        return "sqlite"
    if urlparse(url).scheme in ("postgres", "postgresql"):
        db.bind(provider="postgres", **_pg_params(url))
        return "postgres"
    raise DatabaseError(f"unsupported database url: {url}")


def _pg_params(url: str) -> dict[str, Any]:
    """psycopg2's connection arguments from a postgresql:// URL (Pony hands them on unchanged)."""
    parsed = urlparse(url)
    return {
        "user": unquote(parsed.username or "") or None,
        "password": unquote(parsed.password or "") or None,
        "host": parsed.hostname or "localhost",
        "port": parsed.port or 5432,
        "database": parsed.path.lstrip("/") or None,
    }


class Store:
    """Owns the Pony Database, its entities (`store.e`) and the DB thread."""

    def __init__(self, url: str | None, data_dir: str | Path) -> None:
        self.url = url or default_url(data_dir)
        self.db = Database()
        self.e = define_entities(self.db)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aniworldd-db")
        self._thread_id: int | None = None
        #: /health writes at most this often (seconds); between probes it reports the last result.
        self.write_probe_interval = 5.0
        self._write_probe: tuple[float, bool] | None = None
        try:
            self.provider = _bind(self.db, self.url)
            with self._schema_lock():
                self.db.generate_mapping(create_tables=True)
        except DatabaseError:
            raise
        except Exception as exc:  # driver errors differ per backend; the user needs the reason, not the type
            raise DatabaseError(f"cannot open database {self.safe_url}: {exc}") from exc
        if self.provider == "sqlite":
            os.chmod(self.sqlite_path, 0o600)

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """PostgreSQL: one process at a time creates missing tables. Several processes of a cluster start
        together, and two concurrent CREATE TABLEs of the same name fail one of them (pg_type unique key)."""
        if self.provider != "postgres":
            yield
            return
        import psycopg2

        conn = psycopg2.connect(**_pg_params(self.url), connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            yield
        finally:
            conn.close()  # ends the session, and with it the lock

    @property
    def safe_url(self) -> str:
        """The URL without its password, for logs and status pages."""
        parsed = urlparse(self.url)
        if parsed.password:
            return self.url.replace(f":{parsed.password}@", ":***@")
        return self.url

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url[len("sqlite:///") :]) if self.provider == "sqlite" else None

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._thread_id = threading.get_ident()
        with db_session:
            return fn(*args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` inside a db_session on the DB thread; return plain data from it, never entities."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._call, fn, *args, **kwargs))

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """For CLI commands and start-up code that have no loop running yet."""
        return self._executor.submit(self._call, fn, *args, **kwargs).result()

    def ping(self) -> bool:
        """True when a trivial query succeeds (health check)."""
        try:
            self.run_sync(lambda: self.db.select("SELECT 1"))
            return True
        except Exception:
            log.exception("database ping failed")
            return False

    async def aping(self) -> bool:
        """True when the database answers a query and, checked every `write_probe_interval` seconds,
        takes a write. A read-only remount or a full disk leaves reads working; /health must say 503."""
        try:
            await self.run(lambda: self.db.select("SELECT 1"))
        except Exception:
            log.exception("database ping failed")
            return False
        now = time.monotonic()
        if self._write_probe is not None and now - self._write_probe[0] < self.write_probe_interval:
            return self._write_probe[1]
        try:
            await self.run(self._probe_write)
            ok = True
        except Exception as exc:
            log.error("database cannot be written: %s", exc)
            ok = False
        self._write_probe = (time.monotonic(), ok)
        return ok

    def _probe_write(self) -> None:
        """One tiny committed write (a row in its own table, replaced every time)."""
        self.db.execute("CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY, checked_at REAL)")
        self.db.execute("DELETE FROM health_probe")
        self.db.execute("INSERT INTO health_probe (id, checked_at) VALUES (1, $t)", {"t": time.time()})
        self.db.commit()

    def journal_mode(self) -> str:
        return str(self.run_sync(lambda: self.db.execute("PRAGMA journal_mode").fetchone()[0])).lower()

    def size_bytes(self) -> int | None:
        if self.provider == "sqlite":
            path = self.sqlite_path
            return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        try:
            return int(
                self.run_sync(lambda: self.db.select("SELECT pg_database_size(current_database())")[0])
            )
        except Exception:
            return None

    def close(self) -> None:
        try:
            self._executor.submit(self.db.disconnect).result(timeout=5)
        except Exception:
            log.debug("disconnect failed", exc_info=True)
        self._executor.shutdown(wait=True)
