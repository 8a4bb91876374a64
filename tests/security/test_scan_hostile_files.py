"""Issue 16 item 10: library content that used to stop scanning.

A file name that is not UTF-8 made the watcher crash (and restart) without ever scanning what changed; a
FIFO named `.aniworld.json` blocked the scan thread in open() forever, and SIGTERM no longer stopped the
daemon. Both now leave the library scannable and the daemon stoppable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aniworldd.core.markers import write_marker
from aniworldd.db import Store
from aniworldd.events import SCAN_COMPLETE, EventBus
from aniworldd.services.scan_service import ScanService
from tests.conftest import free_port
from tests.integration.test_watcher import on_disk, touch, wait_for

BAD_NAME = b"Show S01E09 \xff\xfe.mkv"


def _write_bad(folder: Path) -> None:
    """Create (or append to) a file whose name is not UTF-8 in `folder`."""
    with open(os.fsencode(folder) + b"/" + BAD_NAME, "ab") as fh:
        fh.write(b"x")


async def test_a_non_utf8_file_name_does_not_stop_new_episodes_being_seen(
    tmp_path: Path, config_factory, store: Store, bus: EventBus
) -> None:
    root = tmp_path / "library"
    touch(root / "Show" / "Season 01" / "Show S01E01.mkv")
    write_marker(root / "Show", "show")
    cfg = config_factory(f"library:\n  roots: [{root}]\n  watch: true\n  watch_debounce: 0.05\n")
    svc = ScanService(cfg, store, bus)
    try:
        await svc.scan_all()
        await svc.start()
        sub = bus.subscribe({SCAN_COMPLETE})
        for round_ in range(3):  # the bad name keeps changing (a client writing to it), episodes keep coming
            _write_bad(root / "Show" / "Season 01")
            touch(root / "Show" / "Season 01" / f"Show S01E0{round_ + 2}.mkv")
            await wait_for(sub, lambda d, n=round_ + 2: (1, n) in on_disk(store, "show"))
        assert (1, 4) in on_disk(store, "show")
    finally:
        await svc.close()


async def test_a_full_scan_with_a_non_utf8_name_completes(
    tmp_path: Path, config_factory, store: Store, bus: EventBus
) -> None:
    root = tmp_path / "library"
    touch(root / "Show" / "Season 01" / "Show S01E01.mkv")
    write_marker(root / "Show", "show")
    _write_bad(root / "Show" / "Season 01")
    os.mkdir(os.fsencode(root) + b"/Bad \xe9 Folder")
    cfg = config_factory(f"library:\n  roots: [{root}]\n  watch: false\n")
    svc = ScanService(cfg, store, bus)
    try:
        await asyncio.wait_for(svc.scan_all(), 20)
        assert (1, 1) in on_disk(store, "show")
    finally:
        await svc.close()


async def test_a_fifo_marker_does_not_block_the_scan(
    tmp_path: Path, config_factory, store: Store, bus: EventBus
) -> None:
    root = tmp_path / "library"
    touch(root / "Trap" / "Season 01" / "Trap S01E01.mkv")
    os.mkfifo(root / "Trap" / ".aniworld.json")
    touch(root / "Show" / "Season 01" / "Show S01E01.mkv")
    write_marker(root / "Show", "show")
    cfg = config_factory(f"library:\n  roots: [{root}]\n  watch: false\n")
    svc = ScanService(cfg, store, bus)
    try:
        await asyncio.wait_for(svc.scan_all(), 20)  # bounded: a blocked scan fails here, not hangs
        assert (1, 1) in on_disk(store, "show")
    finally:
        await asyncio.wait_for(svc.close(), 20)


def test_sigterm_stops_a_daemon_whose_library_holds_a_fifo_marker(tmp_path: Path) -> None:
    root = tmp_path / "library"
    touch(root / "Trap" / "Season 01" / "Trap S01E01.mkv")
    os.mkfifo(root / "Trap" / ".aniworld.json")
    os.mkfifo(root / "Trap" / "key")
    port = free_port()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        f"library: {{roots: [{root}], watch: true, scan_on_start: true}}\ndownloads: {{autostart: false}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "aniworldd", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(1.0)  # the start-up scan reaches the FIFO
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
