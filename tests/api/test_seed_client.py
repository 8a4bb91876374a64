"""The acceptance path as a client written only from the seed's API section walks it, on the real daemon.

`aniworldd run` as a child process, the fake aniworld.to / s.to / hosters as the outside world: set the
password, log in, search, add, rescan, list what is missing, watch the WebSocket while one missing episode is
queued and downloaded with the real yt-dlp, see it on disk, log out.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

PASSWORD = "seed client password"


async def _wait_healthy(base: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}")
            try:
                async with session.get(f"{base}/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("daemon did not become healthy")


@pytest.fixture
async def daemon(tmp_path: Path, fakesite: str):
    port = free_port()
    config = tmp_path / "config.yaml"
    (tmp_path / "library").mkdir()  # the daemon never creates a library root itself
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"server:\n  port: {port}\n"
        f"library:\n  roots: [{tmp_path / 'library'}]\n  watch: false\n"
        "downloads:\n  autostart: false\n  retry_backoff: 1\n  min_free_gb: 0\n"
        f"provider:\n  aniworld_url: {fakesite}\n  sto_url: {fakesite}\n  min_interval: 0\n  retries: 1\n"
        "logging:\n  level: WARNING\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")}
    cmd = [sys.executable, "-m", "aniworldd", "run", "--config", str(config)]
    proc = subprocess.Popen(cmd, env=env)  # noqa: ASYNC220 - the daemon under test
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_healthy(base, proc)
        yield base, tmp_path / "library"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_seed_client_logs_in_searches_adds_queues_watches_and_logs_out(daemon) -> None:
    base, library = daemon
    async with aiohttp.ClientSession() as http:

        async def call(method: str, path: str, token: str | None = None, **kwargs) -> tuple[int, object]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.request(method, f"{base}{path}", headers=headers, **kwargs) as resp:
                return resp.status, await resp.json()

        status, auth = await call("GET", "/api/auth/status")
        assert status == 200 and auth["configured"] is False
        status, _ = await call("POST", "/api/auth/setup", json={"password": PASSWORD})
        assert status == 201
        status, login = await call("POST", "/api/auth/login", json={"password": PASSWORD})
        assert status == 200 and login["token_type"] == "bearer"
        token = login["access_token"]

        status, results = await call("POST", "/api/anime/search", token, json={"query": "kaguya"})
        assert status == 200
        hit = next(r for r in results if r["key"] == "kaguya-sama-love-is-war")
        status, added = await call("POST", "/api/anime/add", token, json={"link": hit["link"]})
        assert status == 200 and added["key"] == hit["key"]
        status, started = await call("POST", "/api/anime/rescan", token)
        assert status == 202 and started["status"] == "started"

        status, series = await call("GET", "/api/anime", token)
        assert status == 200
        (summary,) = [s for s in series if s["key"] == hit["key"]]
        season = min(summary["missing_episodes"], key=int)
        episode = summary["missing_episodes"][season][0]

        async with http.ws_connect(f"{base}/ws/connect", params={"token": token}) as ws:
            await ws.send_json({"action": "join", "room": "downloads"})
            await ws.send_json({"action": "join", "room": "download_progress"})
            request = {
                "serie_id": summary["key"],
                "serie_folder": summary["folder"],
                "serie_name": summary["name"],
                "episodes": [{"season": int(season), "episode": episode}],
            }
            status, queued = await call("POST", "/api/queue/add", token, json=request)
            assert status == 201, queued
            status, _ = await call("POST", "/api/queue/start", token)
            assert status == 200

            seen: list[str] = []
            while "download_complete" not in seen:
                msg = await asyncio.wait_for(ws.receive_json(), 120)
                assert set(msg) == {"type", "timestamp", "data"}
                seen.append(msg["type"])
                assert msg["type"] != "download_failed", msg
                if msg["type"] in ("download_progress", "download_complete"):
                    assert msg["data"]["key"] == summary["key"] and "folder" in msg["data"]
            assert "download_progress" in seen

        status, detail = await call("GET", f"/api/anime/{summary['key']}", token)
        (ep,) = [e for e in detail["episodes"] if e["season"] == int(season) and e["episode"] == episode]
        assert ep["status"] == "on_disk"
        assert any(p.suffix == ".mp4" for p in library.rglob("*"))

        status, _ = await call("POST", "/api/auth/logout", token)
        assert status == 200
        status, refused = await call("GET", "/api/queue/status", token)
        assert status == 401 and refused["error"]["code"] == "token_revoked"
