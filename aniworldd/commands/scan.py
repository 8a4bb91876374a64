"""`aniworldd scan --config FILE [--json]`: one full library scan, then a summary.

Works next to a running daemon (same database; SQLite WAL lets both write). On a terminal a progress bar
goes to stderr, so `--json` output on stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from typing import TextIO

from aniworldd.commands import load_or_report
from aniworldd.db import DatabaseError, Store
from aniworldd.events import SCAN_PROGRESS, EventBus


class ProgressBar:
    """A one-line bar redrawn in place (`\\r`); only used when the stream is a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.drawn = False

    def update(self, current: int, total: int, folder: str | None) -> None:
        width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 50))
        frac = current / total if total else 1.0
        filled = int(width * frac)
        name = (folder or "")[:30]
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}% {current}/{total} {name:<30}"
        )
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


async def run_scan(config: dict, progress: ProgressBar | None) -> dict:
    from aniworldd.services.scan_service import ScanService

    store = Store(config["database"]["url"], config["data_dir"])
    bus = EventBus()
    scan = ScanService({**config, "library": {**config["library"], "watch": False}}, store, bus)
    sub = bus.subscribe({SCAN_PROGRESS}, maxsize=10000)

    async def draw() -> None:
        async for ev in sub:
            if progress is not None:
                progress.update(ev.data["current"], ev.data["total"], ev.data.get("folder"))

    drawer = asyncio.create_task(draw())
    try:
        summary = await scan.scan_all()
    finally:
        sub.close()
        await drawer
        if progress is not None:
            progress.finish()
        await scan.close()
        await asyncio.to_thread(store.close)
    return summary


def _main(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    progress = ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.quiet else None
    try:
        summary = asyncio.run(run_scan(config, progress))
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = {
        "series": summary["series"],
        "episodes": summary["episodes"],
        "missing_episodes": summary["missing_episodes"],
        "unmatched": summary["unmatched"],
        "duration_s": summary["duration_s"],
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{result['series']} series, {result['episodes']} episodes on disk, "
        f"{result['missing_episodes']} missing, {len(result['unmatched'])} unmatched folders "
        f"({result['duration_s']:.2f} s)"
    )
    for folder in result["unmatched"]:
        print(f"  unmatched: {folder}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="scan the library once and print a summary")
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG or built-in defaults)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_main)
