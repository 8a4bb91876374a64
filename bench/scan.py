"""Library scan benchmark: prints ONE JSON line.

    .venv/bin/python bench/scan.py --series 2000 --episodes 50

Builds a synthetic library (realistic names, season folders, movies, legacy `key` markers, unmatched
folders) in a temp dir and measures, against a real SQLite file:
  first_scan_s     full scan into an empty database
  rescan_s         full scan of the unchanged library (same service: its directory cache is warm), median of 3
  rescan_cold_s    the same with a fresh ScanService (no directory cache, e.g. after a daemon restart)
  find_s           `find ROOT -type f` on the same tree (the floor), best of 3
  incremental_ms   p50 over 20 single-file creations: file written -> scan_complete naming that series
  peak_rss_mb      peak resident memory of this process
Targets (issue 3): rescan_s <= 3 x find_s, first_scan_s <= 15, incremental_ms p50 <= 500 on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aniworldd.config import load_text  # noqa: E402
from aniworldd.core.markers import read_marker, write_marker  # noqa: E402
from aniworldd.db import Store  # noqa: E402
from aniworldd.events import SCAN_COMPLETE, EventBus  # noqa: E402
from aniworldd.services.scan_service import ScanService  # noqa: E402

WORDS = (
    "attack titan love war kaguya sama demon slayer one piece naruto bleach hunter spy family steins gate "
    "fullmetal alchemist brotherhood code geass death note cowboy bebop violet evergarden mob psycho vinland "
    "saga jujutsu kaisen chainsaw man frieren beyond journey end dungeon meshi oshi no ko eighty six"
).split()
LANG_LABELS = ("German Dub", "German Sub", "English Sub")


def build_library(root: Path, series: int, episodes: int, seed: int = 7) -> tuple[int, list[str]]:
    """Returns (number of episode files, keys of matched series)."""
    rng = random.Random(seed)
    files = 0
    keys: list[str] = []
    for i in range(series):
        words = rng.sample(WORDS, 3)
        name = " ".join(w.capitalize() for w in words) + f" {i}"
        key = "-".join(words) + f"-{i}"
        folder = root / f"{name} ({2000 + i % 25})"
        folder.mkdir(parents=True)
        kind = i % 50
        if kind == 0:
            pass  # unmatched: no marker at all
        elif kind == 1:
            (folder / "key").write_text(key + "\n")
            keys.append(key)
        else:
            write_marker(folder, key, "aniworld", name, f"https://aniworld.to/anime/stream/{key}")
            keys.append(key)
        staffel = i % 7 == 3
        movies = 2 if i % 10 == 5 else 0
        regular = episodes - movies
        for n in range(regular):
            season, ep = 1 + n // 24, 1 + n % 24
            lang = LANG_LABELS[(i + n) % 3]
            if staffel:
                path = folder / f"Staffel {season}" / f"{name} S{season:02d}E{ep:02d} [{lang}].mkv"
            else:
                path = folder / f"Season {season:02d}" / f"{name} - S{season:02d}E{ep:03d} - ({lang}).mp4"
            path.parent.mkdir(exist_ok=True)
            path.touch()
            files += 1
        for m in range(1, movies + 1):
            path = folder / "Movies" / f"{name} - Movie {m:02d} - (German Dub).mp4"
            path.parent.mkdir(exist_ok=True)
            path.touch()
            files += 1
        if i % 100 == 7 and not staffel:
            (folder / "Season 01" / "cover.jpg").touch()
            (folder / "Season 01" / f"{name} - S01E099 - (German Dub).mp4.part").touch()
    # Pretend the directories are older than the scanner's racy window (a real library is).
    old = time.time() - 3600
    for dirpath, _dirs, _files in os.walk(root):
        os.utime(dirpath, (old, old))
    return files, keys


def time_find(root: Path) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(["find", str(root), "-type", "f"], stdout=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - t)
    return best


async def measure(root: Path, data: Path, keys: list[str], args: argparse.Namespace) -> dict:
    cfg = load_text(
        f"data_dir: {data}\nlibrary:\n  roots: [{root}]\n  watch: true\n  watch_debounce: 0.05\n",
        env={},
    )
    store = Store(cfg["database"]["url"], data)
    bus = EventBus()
    scan = ScanService(cfg, store, bus)
    out: dict = {}
    try:
        t = time.perf_counter()
        first = await scan.scan_all()
        out["first_scan_s"] = round(time.perf_counter() - t, 3)
        out["series"] = first["series"]
        out["episodes"] = first["episodes"]
        out["unmatched"] = len(first["unmatched"])

        runs, changes = [], []
        for _ in range(3):
            t = time.perf_counter()
            again = await scan.scan_all()
            runs.append(time.perf_counter() - t)
            changes.append(again["changes"])
        out["rescan_s"] = round(statistics.median(runs), 3)
        out["rescan_writes"] = max(changes)

        cold = ScanService(cfg, store, bus)
        t = time.perf_counter()
        await cold.scan_all()
        out["rescan_cold_s"] = round(time.perf_counter() - t, 3)
        await cold.close()

        await scan.start()
        sub = bus.subscribe({SCAN_COMPLETE})
        rng = random.Random(11)
        latencies = []
        folder_of = await asyncio.to_thread(_folders_by_key, root)
        for i in range(args.incremental):
            key = rng.choice(keys)
            folder = folder_of[key]
            target = folder / "Season 01" / f"Bench - S01E{500 + i:03d} - (German Dub).mp4"
            target.parent.mkdir(exist_ok=True)
            t = time.perf_counter()
            target.write_bytes(b"x")
            while True:
                ev = await asyncio.wait_for(sub.get(), 30)
                if key in ev.data.get("keys", []):
                    break
            latencies.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)
        sub.close()
        out["incremental_ms"] = round(statistics.median(latencies), 1)
        out["incremental_max_ms"] = round(max(latencies), 1)
    finally:
        await scan.close()
        store.close()
    return out


def _folders_by_key(root: Path) -> dict[str, Path]:
    out = {}
    for folder in root.iterdir():
        marker = read_marker(folder)
        if marker is not None:
            out[marker.key] = folder
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--incremental", type=int, default=20)
    ap.add_argument("--dir", help="work directory (default: a new temp dir, removed afterwards)")
    args = ap.parse_args()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="aniworldd-bench-"))
    try:
        root = base / "library"
        data = base / "data"
        files, keys = build_library(root, args.series, args.episodes)
        find_s = time_find(root)
        result = {"files": files, "find_s": round(find_s, 3)}
        result.update(asyncio.run(measure(root, data, keys, args)))
        result["rescan_vs_find"] = round(result["rescan_s"] / find_s, 2) if find_s else None
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        result["cpus"] = os.cpu_count()
        print(json.dumps(result))
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
