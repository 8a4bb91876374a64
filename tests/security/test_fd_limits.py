"""Issue 16 item 6: file descriptors. 1,010 slow-header connections used to exhaust the 1024 soft limit:
a download burned all its retries on "Too many open files", /health timed out and the log filled with
identical tracebacks. Now: the soft limit is raised to the hard one at start, connections are capped and
must send their headers within server.header_timeout, EMFILE never counts as a download attempt, and a
repeated log line is written a few times per minute, then counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from aniworldd.db import Store
from aniworldd.db.models import PENDING
from aniworldd.events import DOWNLOAD_COMPLETE, EventBus
from aniworldd.services.download_service import DownloadService
from tests.conftest import free_port
from tests.fakesite.catalog import GER_DUB
from tests.fakesite.media import ffmpeg_available, make_media
from tests.integration.download_helpers import (
    KEY,
    NAME,
    UA,
    Site,
    build_series,
    fake_state,
    make_config,
    seed,
    set_code,
)

SLOW = 1010
PARTIAL_HEADER = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@contextlib.contextmanager
def nofile_soft_limit(value: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(value, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_slow(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each sent half a request header and then nothing more."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(PARTIAL_HEADER)
        socks.append(s)
    return socks


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def health(port: int, timeout: float) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as resp:
        return resp.status


# ---- the done-when: 1,010 slow-header connections -------------------------------------------------------


def _spawn(config_path: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aniworldd", "run", "-c", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_lower_soft_limit,
            start_new_session=True,
        )


def _lower_soft_limit() -> None:  # runs in the daemon child before exec: the usual distro default
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


@pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)")
@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 4096, reason="hard limit below 4096")
async def test_1010_slow_header_connections_leave_health_and_downloads_working(tmp_path: Path) -> None:
    series = build_series(episodes=1, hosters=("Vidoza",))
    set_code(series, 1, 1, GER_DUB, "Vidoza", "slow-6s")
    state = fake_state(series)
    source = make_media(state.media_dir, 6).mp4
    state.media_rate_bps = 150_000  # a few seconds of downloading while the connections are open
    site = await Site(state).start()
    port = free_port()
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        f"data_dir: {tmp_path / 'data'}\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        f"library: {{roots: [{tmp_path / 'library'}], watch: false, scan_on_start: false}}\n"
        "downloads: {autostart: true, max_concurrent: 1, min_free_gb: 0, language: [ger-dub], "
        "hosters: [Vidoza]}\n"
        f"provider: {{aniworld_url: {site.origin}, sto_url: {site.origin}, user_agent: {UA}, "
        "min_interval: 0, retries: 0}\n"
    )
    (tmp_path / "library").mkdir()
    cfg = make_config(tmp_path, site.origin)
    store = Store(cfg["database"]["url"], cfg["data_dir"])
    seed(store, series)
    [item] = await DownloadService(cfg, store, EventBus()).add(KEY, [(1, 1)])
    store.close()
    log = tmp_path / "daemon.log"
    target = tmp_path / "library" / f"{NAME} (2020)" / "Season 01" / f"{NAME} - S01E001 - (German Dub).mp4"
    socks: list[socket.socket] = []
    daemon = None
    with nofile_soft_limit(SLOW + 512):
        try:
            daemon = _spawn(config_path, log)
            for _ in range(300):
                with contextlib.suppress(OSError):
                    if health(port, 1) == 200:
                        break
                await asyncio.sleep(0.1)
            socks = await asyncio.to_thread(open_slow, port, SLOW)
            assert await asyncio.to_thread(health, port, 5) == 200  # the bound, not a benchmark
            for _ in range(600):  # the download goes on and lands while the connections are open
                if target.exists():
                    break
                assert daemon.poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            assert target.exists(), log.read_text()[-3000:]
            assert target.stat().st_size == source.stat().st_size
            assert await asyncio.to_thread(health, port, 5) == 200
            text = log.read_text(errors="replace")
            assert "Too many open files" not in text
        finally:
            for s in socks:
                s.close()
            if daemon is not None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
            await site.stop()


# ---- the pieces ------------------------------------------------------------------------------------------


async def _daemon(tmp_path: Path, server: str):
    from aniworldd.config import load_config
    from aniworldd.daemon import Daemon
    from aniworldd.systemd import Notifier

    config = tmp_path / "config.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nserver: {{host: 127.0.0.1, port: {free_port()}, {server}}}\n"
        f"library: {{roots: [{tmp_path / 'library'}], watch: false, scan_on_start: false}}\n"
        "downloads: {autostart: false}\n"
    )
    daemon = Daemon(load_config(config, env={}), config, notifier=Notifier({}))
    await daemon.start()
    return daemon


async def test_a_connection_that_never_finishes_its_headers_is_closed(tmp_path: Path) -> None:
    daemon = await _daemon(tmp_path, "header_timeout: 1")
    try:
        [sock] = await asyncio.to_thread(open_slow, daemon.port, 1)
        with sock:
            assert await asyncio.to_thread(closed_by_server, sock, 15)
    finally:
        await daemon.stop()


async def test_connections_over_the_cap_are_closed_and_health_still_answers(tmp_path: Path) -> None:
    daemon = await _daemon(tmp_path, "max_connections: 20, header_timeout: 60")
    socks = await asyncio.to_thread(open_slow, daemon.port, 30)
    try:
        closed = await asyncio.to_thread(lambda: sum(closed_by_server(s, 2) for s in socks[20:]))
        assert closed == 10  # every connection past the cap, at once (not after the header timeout)
        assert not any(await asyncio.to_thread(lambda: [closed_by_server(s, 0.2) for s in socks[:5]]))
        for s in socks[:10]:
            s.close()
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(health, daemon.port, 5) == 200
    finally:
        for s in socks:
            s.close()
        await daemon.stop()


def test_the_soft_open_files_limit_is_raised_to_the_hard_limit() -> None:
    from aniworldd.limits import raise_nofile_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        old, new = raise_nofile_limit()
        assert old == 256
        assert new == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert new == (hard if hard != resource.RLIM_INFINITY else new) and new > 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)")
async def test_too_many_open_files_is_not_a_download_attempt(make_env) -> None:
    env = await make_env()
    [item] = await env.queue.add(KEY, [(1, 1)])
    # The fake site runs in this process too: every descriptor is taken before the item starts, so the
    # queue's first new socket or file fails with EMFILE and the site never sees a half-served request.
    with nofile_soft_limit(len(os.listdir("/proc/self/fd")) + 64), exhausted_descriptors():
        await env.queue.start()
        for _ in range(100):
            row = env.row(item["id"])
            if row["error"]:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        row = env.row(item["id"])
    assert row["status"] == PENDING and row["attempts"] == 0, row
    assert "too many open files" in row["error"].lower()
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])  # and it goes on once descriptors are back
    assert env.row(item["id"])["attempts"] == 0


@contextlib.contextmanager
def exhausted_descriptors():
    """Open /dev/null until the soft limit refuses one more, and give them all back on exit."""
    held: list[int] = []
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE, exc
                break
        yield
    finally:
        for fd in held:
            os.close(fd)


# ---- the log -----------------------------------------------------------------------------------------------


def test_a_repeated_log_line_is_written_a_few_times_a_minute_then_counted() -> None:
    from aniworldd.logthrottle import RepeatFilter

    now = [1000.0]
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    handler.addFilter(RepeatFilter(limit=5, window=60.0, clock=lambda: now[0]))
    logger = logging.getLogger("tests.security.flood")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for _ in range(10_000):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                logger.exception("socket.accept() out of system resource")
        logger.error("something else")
        assert len(records) == 6  # five of the flood, and the other message
        now[0] += 61
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logger.exception("socket.accept() out of system resource")
        assert len(records) == 7
        assert "9995" in records[-1] and "suppressed" in records[-1]
    finally:
        logger.removeHandler(handler)
