"""Issue 16 item 7: a library root that is not there (an unmounted share) is never created by the daemon.

Downloads wait with "library root missing: <path> (not mounted?)" without using an attempt and go on by
themselves once the root is back; `add` refuses with the same reason; the daemon's start leaves it alone.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aniworldd.events import DOWNLOAD_COMPLETE
from aniworldd.services.download_service import PENDING
from tests.api.conftest import Api
from tests.conftest import free_port
from tests.integration.download_helpers import KEY

WAIT = 30


def _exists(path: str | Path) -> bool:
    return os.path.exists(path)


def _is_file(path: str | Path) -> bool:
    return os.path.isfile(path)


KAGUYA = "kaguya-sama-love-is-war"


async def test_a_download_waits_for_a_missing_root_and_goes_on_when_it_is_back(make_env) -> None:
    env = await make_env()
    os.rmdir(env.library)  # the share is not mounted
    env.queue.root_wait = 2.0  # (30 s in the daemon) long enough to look at the waiting item
    [item] = await env.queue.add(KEY, [(1, 1)])
    await env.queue.start()
    expected = f"library root missing: {env.library} (not mounted?)"
    for _ in range(WAIT * 50):
        if env.row(item["id"])["error"] == expected:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    row = env.row(item["id"])
    assert (row["status"], row["attempts"], row["error"]) == (PENDING, 0, expected)
    assert not _exists(env.library)  # neither the root nor the temp dir inside it was created
    assert env.site.media_requests("") == []

    os.mkdir(env.library)  # mounted again
    [done] = await env.until(DOWNLOAD_COMPLETE, item["id"])
    assert _is_file(done["path"]) and Path(done["path"]).is_relative_to(env.library)
    assert env.row(item["id"])["attempts"] == 0


async def test_add_refuses_a_missing_root_and_does_not_create_it(api: Api) -> None:
    await api.setup_and_login()
    root = Path(api.ctx.config["library"]["roots"][0])
    os.rmdir(root)  # the share is not mounted
    origin = api.ctx.config["provider"]["aniworld_url"][0]
    status, data = await api.call("POST", "/api/anime/add", json={"link": f"{origin}/anime/stream/{KAGUYA}"})
    assert status == 503, data
    assert data["error"]["code"] == "library_root_missing"
    assert data["error"]["message"] == f"library root missing: {root} (not mounted?)"
    assert not _exists(root)


async def test_the_daemon_start_does_not_create_a_configured_root(tmp_path: Path) -> None:
    from aniworldd.config import load_config
    from aniworldd.daemon import Daemon
    from aniworldd.systemd import Notifier

    root = tmp_path / "nas" / "anime"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nserver: {{host: 127.0.0.1, port: {free_port()}}}\n"
        f"library: {{roots: [{root}], watch: false, scan_on_start: false}}\n"
        "downloads: {autostart: false}\n"
    )
    daemon = Daemon(load_config(config, env={}), config, notifier=Notifier({}))
    await daemon.start()
    try:
        assert not _exists(root) and not _exists(root.parent)
    finally:
        await daemon.stop()
