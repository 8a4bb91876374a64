"""Saving the config keeps the user's file theirs: comments, key order, secrets; the tracked examples stay
untouched under `make run` (which runs with a copy made by the Makefile's own copy step)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from aniworldd.api.config import SECRET_PLACEHOLDER
from aniworldd.config import load_config
from tests.api.conftest import Api, build_context

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"


def _comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "#" in line and line.strip()]


def _comments(text: str) -> list[str]:
    """Every comment of a file (the part from `#`), whole-line and end-of-line alike."""
    return [line[line.index("#") :].strip() for line in text.splitlines() if line.strip() and "#" in line]


def _top_keys(text: str) -> list[str]:
    return list(yaml.safe_load(text))


async def test_save_keeps_every_comment_and_the_key_order(logged_in: Api) -> None:
    path = logged_in.ctx.config_path
    plain = yaml.safe_load(path.read_text())
    # The same settings as the fixture wrote, the way a person writes them: comments everywhere.
    commented = (
        "# my aniworldd setup\n"
        f"data_dir: {plain['data_dir']}   # keep on the SSD\n\n"
        "# where the series live\n"
        "library:\n"
        "  # one folder for now\n"
        f"  roots: [{plain['library']['roots'][0]}]\n"
        "  watch: false          # the NAS does not do inotify\n"
        "  scan_on_start: false\n"
        "provider:\n"
        + "".join(f"  {k}: {v}\n" for k, v in plain["provider"].items())
        + "  # end of provider\n"
        "downloads:\n"
        "  autostart: false      # I start them myself\n"
        "# trailing remark\n"
    )
    path.write_text(commented)
    status, data = await logged_in.call("GET", "/api/config")
    assert status == 200
    doc = data["config"]
    doc["downloads"]["max_concurrent"] = 3
    doc["library"]["watch"] = True
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200, data

    saved = path.read_text()
    for comment in _comments(commented):
        assert comment in saved, f"comment lost: {comment!r}\n{saved}"
    assert yaml.safe_load(saved) == doc  # exactly what was validated, nothing else
    assert _top_keys(saved) == ["data_dir", "library", "provider", "downloads"]
    assert list(yaml.safe_load(saved)["library"]) == ["roots", "watch", "scan_on_start"]
    # the value changed in place, its comment kept in its column
    assert re.search(r"^  watch: true +# the NAS does not do inotify$", saved, re.MULTILINE), saved
    assert saved.rstrip().endswith("# trailing remark")  # a new key goes before the file's closing remark
    assert data["effective"]["downloads"]["max_concurrent"] == 3
    # untouched lines are byte for byte what the user wrote
    assert f"data_dir: {plain['data_dir']}   # keep on the SSD" in saved.splitlines()


async def test_save_with_secret_placeholder_keeps_secret_and_comments(api_factory) -> None:
    api = await api_factory(
        "mqtt:\n  host: broker.lan   # the Pi\n  password: s3cret   # from the ACL file\n"
    )
    await api.setup_and_login()
    status, data = await api.call("GET", "/api/config")
    assert data["config"]["mqtt"]["password"] == SECRET_PLACEHOLDER
    doc = data["config"]
    doc["mqtt"]["client_id"] = "aniworldd-nas"
    status, data = await api.call("PUT", "/api/config", json=doc)
    assert status == 200, data
    saved = api.ctx.config_path.read_text()
    assert "password: s3cret   # from the ACL file" in saved
    assert "host: broker.lan   # the Pi" in saved
    assert yaml.safe_load(saved)["mqtt"] == {
        "host": "broker.lan",
        "password": "s3cret",
        "client_id": "aniworldd-nas",
    }


async def test_restore_writes_the_backup_with_its_comments(logged_in: Api) -> None:
    path = logged_in.ctx.config_path
    path.write_text(path.read_text() + "# version one\n")
    original = path.read_text()
    doc = yaml.safe_load(original)
    doc["downloads"]["max_concurrent"] = 5
    status, _ = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 200
    _, backups = await logged_in.call("GET", "/api/config/backups")
    status, _ = await logged_in.call("POST", f"/api/config/backups/{backups[0]['name']}/restore")
    assert status == 200
    assert path.read_text() == original


def _make(target: str, cwd: Path, *variables: str) -> subprocess.CompletedProcess:
    """Run one target of the project's Makefile in `cwd`, with the project's venv, never reinstalling it."""
    return subprocess.run(
        [
            "make",
            "-f",
            str(REPO / "Makefile"),
            f"VENV={VENV}",
            "-o",
            f"{VENV}/.installed",
            *variables,
            target,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_make_run_copy_step_then_ui_save_leaves_the_example_untouched(aiohttp_client, tmp_path) -> None:
    """A checkout in tmp_path: the Makefile's data/config.yaml step copies the example, the API saves into
    the copy, and the example is byte-identical afterwards (the repository's own one too)."""
    from aniworldd.api.app import create_app

    shutil.copy(REPO / "config.example.yaml", tmp_path / "config.example.yaml")
    shutil.copytree(REPO / "contrib", tmp_path / "contrib", ignore=shutil.ignore_patterns("demo-*"))
    example_bytes = (tmp_path / "config.example.yaml").read_bytes()
    repo_hash = hashlib.sha256((REPO / "config.example.yaml").read_bytes()).hexdigest()

    made = _make("data/config.yaml", tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    copy = tmp_path / "data" / "config.yaml"
    assert copy.is_file()
    # The copy points where the example pointed: data_dir ./data (from the repo root) is `.` from data/.
    assert (
        load_config(copy, env={})["data_dir"]
        == load_config(tmp_path / "config.example.yaml", env={})["data_dir"]
    )
    copy.write_text(copy.read_text() + "# my own note\n")
    mine = copy.read_bytes()
    again = _make("data/config.yaml", tmp_path)  # second start: the user's copy is left alone
    assert again.returncode == 0 and copy.read_bytes() == mine
    copy.unlink()  # gone: the next start makes a fresh copy
    made = _make("data/config.yaml", tmp_path)
    assert made.returncode == 0 and copy.is_file()

    assert (tmp_path / "data" / "library").is_dir()  # the first start made the library folder too
    ctx = await build_context(copy)
    try:
        api = Api(await aiohttp_client(create_app(ctx)), ctx)
        await api.setup_and_login()
        status, data = await api.call("GET", "/api/config")
        doc = data["config"]
        doc["downloads"]["max_concurrent"] = 4
        status, data = await api.call("PUT", "/api/config", json=doc)
        assert status == 200, data
    finally:
        await ctx.queue.close()
        await ctx.scan.close()
        await ctx.auth.close()
        ctx.store.close()

    assert (tmp_path / "config.example.yaml").read_bytes() == example_bytes
    assert hashlib.sha256((REPO / "config.example.yaml").read_bytes()).hexdigest() == repo_hash
    saved = copy.read_text()
    assert yaml.safe_load(saved)["downloads"]["max_concurrent"] == 4
    assert "max_concurrent: 4          # downloads running at once (1-16)" in saved
    for comment in _comment_lines(example_bytes.decode()):
        if "max_concurrent: 2" not in comment and "data_dir" not in comment:
            assert comment in saved, comment
