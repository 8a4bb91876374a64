"""ConfigService: atomic save with backups, restore round trip, invalid restore refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aniworldd.config import ConfigError
from aniworldd.events import CONFIG_CHANGED, EventBus
from aniworldd.services.config_service import BACKUPS_KEPT, ConfigService
from aniworldd.services.errors import BadRequest, NotFound


@pytest.fixture
def svc(tmp_path: Path) -> ConfigService:
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  port: 8080\n")
    os.chmod(path, 0o640)
    return ConfigService(path, tmp_path / "data", EventBus())


async def test_save_writes_atomically_and_keeps_backup(svc: ConfigService) -> None:
    sub = svc.bus.subscribe({CONFIG_CHANGED})
    result = await svc.save({"server": {"port": 9001}})
    assert result["effective"]["server"]["port"] == 9001
    assert "port: 9001" in svc.path.read_text()
    assert stat.S_IMODE(svc.path.stat().st_mode) == 0o640  # the user's permissions are kept
    backups = svc.list_backups()
    assert len(backups) == 1 and "port: 8080" in (svc.backup_dir / backups[0]["name"]).read_text()
    assert not [p for p in svc.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert (await sub.get()).type == CONFIG_CHANGED


async def test_save_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    """A config path that is a symlink (/etc/aniworldd/config.yaml -> the user's file) stays a link: the
    save lands in the file it points to."""
    real = tmp_path / "elsewhere" / "mine.yaml"
    real.parent.mkdir()
    real.write_text("# my notes\nserver:\n  port: 8080\n")
    link = tmp_path / "config.yaml"
    link.symlink_to(real)
    svc = ConfigService(link, tmp_path / "data", EventBus())
    await svc.save({"server": {"port": 9002}})
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_text().startswith("# my notes\n") and "port: 9002" in real.read_text()


def test_relative_paths_follow_the_named_file_not_the_link_target(tmp_path: Path) -> None:
    from aniworldd.config import load_config

    real = tmp_path / "pkg" / "example.yaml"
    real.parent.mkdir()
    real.write_text("data_dir: ./data\n")
    link = tmp_path / "example.yaml"
    link.symlink_to(real)
    assert load_config(link, env={})["data_dir"] == str(tmp_path / "data")


async def test_invalid_save_changes_nothing(svc: ConfigService) -> None:
    before = svc.path.read_text()
    with pytest.raises(ConfigError) as exc:
        await svc.save({"server": {"port": "http"}, "downloads": {"max_concurrent": -1}})
    paths = sorted(i.path for i in exc.value.issues)
    assert paths == ["downloads.max_concurrent", "server.port"]
    assert all(i.line for i in exc.value.issues)
    assert svc.path.read_text() == before
    assert svc.list_backups() == []


async def test_backup_restore_round_trip(svc: ConfigService) -> None:
    await svc.save({"server": {"port": 9001}})
    await svc.save({"server": {"port": 9002}})
    oldest = svc.list_backups()[-1]["name"]
    result = await svc.restore(oldest)
    assert result["effective"]["server"]["port"] == 8080
    assert len(svc.list_backups()) == 3  # restoring also backs up what it replaced


async def test_invalid_backup_restore_refused_without_touching_live_file(svc: ConfigService) -> None:
    await svc.save({"server": {"port": 9001}})
    name = svc.list_backups()[0]["name"]
    (svc.backup_dir / name).write_text("server:\n  port: nope\n")
    before = svc.path.read_text()
    with pytest.raises(ConfigError):
        await svc.restore(name)
    assert svc.path.read_text() == before


async def test_restore_rejects_bad_names(svc: ConfigService) -> None:
    with pytest.raises(BadRequest):
        await svc.restore("../../etc/passwd")
    with pytest.raises(NotFound):
        await svc.restore("config-20260101T000000000000Z.yaml")


async def test_backups_are_pruned(svc: ConfigService) -> None:
    for port in range(9000, 9000 + BACKUPS_KEPT + 3):
        await svc.save({"server": {"port": port}})
    assert len(svc.list_backups()) == BACKUPS_KEPT


def test_validate_reports_lines(svc: ConfigService) -> None:
    issues = svc.validate({"server": {"host": "x", "port": "y"}})
    # the line in the file a save writes: the user's `port` stays on line 2, `host` goes after it
    assert [(i.path, i.line, i.message) for i in issues] == [("server.port", 2, "expected int")]
    assert svc.validate(["not", "a", "mapping"])[0].message == "expected a mapping at the top level"
