"""The daemon left alone keeps the library complete (issue 10), end to end in one process.

A real Daemon (SQLite, API, WebSocket hub, MQTT bridge against a real mosquitto, download queue with real
yt-dlp children) runs against the fake aniworld.to, whose catalog the test edits while everything runs.
Nobody asks for anything after the first download: the scheduled refresh finds a newly listed episode and
downloads it, and upgrades an episode on disk in German Sub once German Dub is offered. The upgrade is
watched from a thread polling the library: at no moment is the episode absent. WebSocket, MQTT and a
webhook receiver all hear about both downloads; the NFO written on add survives a user edit; the iCal feed
parses with the `icalendar` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import aiohttp
import icalendar
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aniworldd.config import load_text
from aniworldd.daemon import Daemon
from tests.conftest import free_port
from tests.fakesite.app import start_fakesite
from tests.fakesite.catalog import ANIWORLD, GER_DUB, GER_SUB, Catalog, Episode, make_series
from tests.fakesite.media import ffmpeg_available
from tests.fakesite.state import FakeSiteState
from tests.integration.mqtt_fixtures import recorder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg binary not installed (Debian ffmpeg)"),
]

KEY = "upkeep-test"
NAME = "Upkeep Test"
PASSWORD = "correct horse battery"
WAIT = 90.0  # upper bound for one step; a hang fails with a message instead of the suite timeout


def _is_file(path: str | Path) -> bool:
    return Path(path).is_file()


class GapWatch:
    """Polls two paths in a tight loop from a thread; counts moments where neither exists.

    The old path is checked first: once the old file is gone the new one must already be there, so a
    "neither" observation can only come from a real gap, never from the order of the two checks.
    """

    def __init__(self, old: Path, new: Path) -> None:
        self.old, self.new = old, new
        self.gaps = 0
        self.polls = 0
        self.saw_both = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            old = self.old.exists()
            new = self.new.exists()
            self.polls += 1
            if not old and not new:
                self.gaps += 1
            self.saw_both = self.saw_both or (old and new)

    def __enter__(self) -> GapWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Hooks:
    """A local webhook receiver."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.server = TestServer(app)

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(status=204)

    def of(self, type_: str) -> list[dict]:
        return [b["data"] for b in self.received if b["type"] == type_]


async def _until(predicate, what: str, within: float = WAIT):  # noqa: ANN202 - returns the predicate's value
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while loop.time() < end:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {within:.0f}s: {what}")


def _config(tmp_path: Path, origin: str, broker, base_topic: str, hook_url: str) -> dict:
    (tmp_path / "library").mkdir(exist_ok=True)  # the daemon never creates a library root itself
    text = f"""
data_dir: {tmp_path / "data"}
server:
  port: {free_port()}
library:
  roots: [{tmp_path / "library"}]
  watch: false
  scan_on_start: false
downloads:
  autostart: true
  auto_queue: true
  upgrade_language: true
  min_free_gb: 0
  retry_backoff: 0.2
  language: [ger-dub, ger-sub]
  hosters: [Vidoza, VOE]
provider:
  aniworld_url: {origin}
  sto_url: {origin}
  user_agent: aniworldd-tests
  min_interval: 0
  retries: 1
  timeout: 10
  refresh_interval: 1s
  refresh_jitter: 0
mqtt:
  host: {broker.host}
  port: {broker.port}
  base_topic: {base_topic}
  client_id: upkeep-{free_port()}
  discovery: false
notifications:
  webhooks:
    - url: {hook_url}
      events: [download_complete, new_episodes]
      timeout: 5
"""
    return load_text(text, "config.yaml", env={}, base_dir=tmp_path)


async def test_left_alone_the_daemon_downloads_new_episodes_and_upgrades(tmp_path: Path, mosquitto) -> None:
    series = make_series(
        ANIWORLD, KEY, NAME, {1: 1}, languages=[GER_SUB], hosters=["Vidoza"], start_year=2021
    )
    state = FakeSiteState(catalog=Catalog([series]))
    site_runner, origin = await start_fakesite(state)
    hooks = Hooks()
    await hooks.server.start_server()
    base_topic = f"upkeep{free_port()}"
    daemon = Daemon(_config(tmp_path, origin, mosquitto, base_topic, str(hooks.server.make_url("/hook"))))
    ws_messages: list[dict] = []
    try:
        await daemon.start()
        api = f"http://127.0.0.1:{daemon.port}"
        async with aiohttp.ClientSession() as http, recorder(mosquitto, f"{base_topic}/event") as mqtt:
            resp = await http.post(f"{api}/api/auth/setup", json={"password": PASSWORD})
            assert resp.status == 201, await resp.text()
            token = (await resp.json())["access_token"]
            auth = {"Authorization": f"Bearer {token}"}

            resp = await http.post(
                f"{api}/api/anime/add", json={"link": f"{origin}/anime/stream/{KEY}"}, headers=auth
            )
            assert resp.status == 200, await resp.text()
            folder = tmp_path / "library" / (await resp.json())["folder"]
            nfo = folder / "tvshow.nfo"
            await _until(
                lambda: nfo.exists() and (folder / "poster.jpg").exists(), "tvshow.nfo and poster.jpg"
            )
            assert f"<title>{NAME}</title>" in nfo.read_text()

            ws = await http.ws_connect(f"{api}/ws/connect?token={token}&rooms=downloads")

            async def read_ws() -> None:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        ws_messages.append(msg.json())

            reader = asyncio.create_task(read_ws())

            def completes(season: int, episode: int, language: str) -> list[dict]:
                return [
                    m["data"]
                    for m in ws_messages
                    if m["type"] == "download_complete"
                    and (m["data"]["season"], m["data"]["episode"], m["data"]["language"])
                    == (season, episode, language)
                ]

            # The one thing a user does: download episode 1 (only offered in German Sub).
            resp = await http.post(
                f"{api}/api/queue/add",
                headers=auth,
                json={"serie_id": KEY, "episodes": [{"season": 1, "episode": 1}]},
            )
            assert resp.status in (200, 201), await resp.text()
            [first] = await _until(lambda: completes(1, 1, GER_SUB), "episode 1 in German Sub")
            old = Path(first["path"])
            assert _is_file(old) and "(German Sub)" in old.name

            user_nfo = "<tvshow><title>My own title</title></tvshow>\n"
            nfo.write_text(user_nfo)

            # The provider lists a new episode and a better language for episode 1. Nobody asks for anything.
            refreshes_before = len(state.site_requests())
            new = old.with_name(old.name.replace("(German Sub)", "(German Dub)"))
            with GapWatch(old, new) as watch:
                series.episode(1, 1).links[GER_DUB] = ["Vidoza"]
                series.seasons[1].append(
                    Episode(
                        number=2, title_de="Die neue Folge", links={GER_DUB: ["Vidoza"], GER_SUB: ["Vidoza"]}
                    )
                )
                [second] = await _until(lambda: completes(1, 2, GER_DUB), "new episode 2 downloaded")
                [upgraded] = await _until(
                    lambda: completes(1, 1, GER_DUB), "episode 1 upgraded to German Dub"
                )
                await _until(lambda: not old.exists(), "old German Sub file removed")
            assert watch.polls > 100 and watch.gaps == 0, (watch.polls, watch.gaps)
            assert Path(upgraded["path"]) == new and _is_file(new) and not _is_file(old)
            assert upgraded["replaced"] == str(old) and second["replaced"] is None
            assert _is_file(second["path"]) and "S01E002 - (German Dub)" in second["path"]
            assert len(state.site_requests()) > refreshes_before  # found by the scheduled refresh

            # MQTT heard about both downloads on <base>/event (the seed's envelope).
            def mqtt_completes() -> set:
                return {
                    (b["data"]["season"], b["data"]["episode"], b["data"]["language"])
                    for b in (m.json() for m in mqtt.on(f"{base_topic}/event"))
                    if b["type"] == "download_complete"
                }

            await mqtt.wait(lambda _r: {(1, 2, GER_DUB), (1, 1, GER_DUB)} <= mqtt_completes(), within=WAIT)
            mqtt_new = [
                (e["season"], e["episode"])
                for b in (m.json() for m in mqtt.on(f"{base_topic}/event"))
                if b["type"] == "new_episodes"
                for e in b["data"]["episodes"]
            ]
            assert mqtt_new == [(1, 2)]

            # The webhook got the new episode and every download, in the WebSocket envelope.
            await _until(lambda: len(hooks.of("download_complete")) >= 3, "webhook download_complete x3")
            assert [
                (e["season"], e["episode"]) for ev in hooks.of("new_episodes") for e in ev["episodes"]
            ] == [(1, 2)]
            assert {(d["season"], d["episode"], d["language"]) for d in hooks.of("download_complete")} == {
                (1, 1, GER_SUB),
                (1, 2, GER_DUB),
                (1, 1, GER_DUB),
            }

            # The refreshes published series_updated; the user's NFO was kept each time.
            metadata = daemon.ctx.extras["metadata"]
            await _until(lambda: metadata.last_result.get(KEY, {}).get("nfo") == "kept_user_edit", "NFO kept")
            assert nfo.read_text() == user_nfo

            # The calendar feed, as a phone would fetch it.
            resp = await http.get(f"{api}/feed/calendar.ics", params={"token": token})
            assert resp.status == 200
            cal = icalendar.Calendar.from_ical(await resp.read())
            summaries = {str(ev["SUMMARY"]) for ev in cal.walk("VEVENT")}
            assert {
                f"{NAME} S01E02 new",
                f"{NAME} S01E02 downloaded (ger-dub)",
                f"{NAME} S01E01 downloaded (ger-dub)",
                f"{NAME} S01E01 downloaded (ger-sub)",
            } <= summaries

            await ws.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    finally:
        await daemon.stop()
        await hooks.server.close()
        await site_runner.cleanup()
