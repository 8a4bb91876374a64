"""Shared pieces of the download tests: the fake site with a Range log, a seeded store, tmpfs, hashes.

The fake site (tests/fakesite) plays aniworld.to and the hosters; yt-dlp downloads its ffmpeg-made media
for real. A middleware records every media request's Range header so tests can prove a resume asked
for the rest of the file instead of starting over.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

from aniworldd.config import load_text
from aniworldd.db import Store
from tests.fakesite.catalog import ANIWORLD, GER_DUB, GER_SUB, Catalog, Series, make_series
from tests.fakesite.hosters import add_routes
from tests.fakesite.media import make_media
from tests.fakesite.sites import add_site_routes
from tests.fakesite.state import FakeSiteState

KEY = "download-test"
NAME = "Download Test"
UA = "aniworldd-test"


def build_series(episodes: int = 4, hosters: tuple[str, ...] = ("Vidoza", "VOE")) -> Series:
    """An aniworld series with season 1 (`episodes` episodes) in ger-dub and ger-sub."""
    return make_series(
        ANIWORLD,
        KEY,
        NAME,
        {1: episodes},
        languages=[GER_DUB, GER_SUB],
        hosters=list(hosters),
        start_year=2020,
    )


def set_code(series: Series, season: int, episode: int, language: str, hoster: str, code: str) -> None:
    """Pin the hoster file code of one offer (a code ending `-<N>s` serves an N-second video)."""
    series.episode(season, episode).codes[(language, hoster)] = code


def code_of(series: Series, season: int, episode: int, language: str, hoster: str) -> str:
    return series.code(season, series.episode(season, episode), language, hoster)


class Site:
    """A running fake site; `ranges` lists (path, Range header or None) of every media request."""

    def __init__(self, state: FakeSiteState) -> None:
        self.state = state
        self.ranges: list[tuple[str, str | None]] = []
        self.runner: web.AppRunner | None = None
        self.origin = ""

    def media_requests(self, code: str) -> list[str | None]:
        return [rng for path, rng in self.ranges if code in path]

    async def start(self) -> Site:
        @web.middleware
        async def log_ranges(request: web.Request, handler):
            if request.path.startswith("/media/"):
                self.ranges.append((request.path, request.headers.get("Range")))
            return await handler(request)

        app = web.Application(middlewares=[log_ranges])
        add_site_routes(app, self.state)
        add_routes(app, self.state)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        self.origin = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def fake_state(*series: Series) -> FakeSiteState:
    return FakeSiteState(catalog=Catalog(list(series)))


def make_config(tmp_path: Path, origin: str, downloads: str = "", extra: str = "") -> dict:
    text = f"""
data_dir: {tmp_path / "data"}
library:
  roots: [{tmp_path / "library"}]
  watch: false
  scan_on_start: false
downloads:
  autostart: false
  min_free_gb: 0
  retry_backoff: 0.05
  language: [ger-dub, ger-sub]
  hosters: [Vidoza, VOE, Vidmoly, Doodstream, SpeedFiles, Luluvdo, Streamtape, Filemoon]
{downloads}
provider:
  aniworld_url: {origin}
  sto_url: {origin}
  user_agent: {UA}
  min_interval: 0
  retries: 0
  timeout: 20
{extra}
"""
    return load_text(text, "config.yaml", env={}, base_dir=tmp_path)


def seed(store: Store, series: Series) -> None:
    """The series and its episodes as the provider refresh would have stored them (blocking)."""

    def q() -> None:
        e = store.e
        s = e.AnimeSeries(
            key=series.key,
            name=series.title,
            site=series.site,
            year=series.start_year,
            link=f"/anime/stream/{series.key}",
        )
        for season, eps in series.seasons.items():
            for ep in eps:
                e.Episode(
                    series=s,
                    season=season,
                    number=ep.number,
                    title=ep.title_de,
                    languages=ep.languages(series.site),
                )

    store.run_sync(q)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def probe(path: Path) -> dict:
    """ffprobe's format section (container name, duration) of a media file."""
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)["format"]


def head(path: Path, n: int = 16) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def media_mp4(state: FakeSiteState, seconds: int = 3) -> Path:
    return make_media(state.media_dir, seconds).mp4


def clean_env(**extra: str) -> dict:
    """The environment without any ANIWORLDD_* overrides of the developer's shell, plus `extra`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")} | extra


def start_daemon(config: Path, log: Path, **env: str) -> subprocess.Popen:
    """`python -m aniworldd run -c CONFIG` as a real process, output appended to `log`."""
    import sys

    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aniworldd", "run", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(**env),
            start_new_session=True,
        )


def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    """A real small filesystem (root only) so ENOSPC happens for real."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def until_state(pid: int, wanted: str, seconds: float = 10.0) -> str | None:
    """Poll /proc until the process reaches `wanted` (signals are delivered asynchronously)."""
    import asyncio

    state = proc_state(pid)
    for _ in range(int(seconds / 0.02)):
        if state == wanted:
            break
        await asyncio.sleep(0.02)
        state = proc_state(pid)
    return state


def proc_state(pid: int) -> str | None:
    """Linux process state letter (R, S, T = stopped, Z), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[0]
