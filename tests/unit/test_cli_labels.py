"""The CLI's episode labels are the web UI's (episodeLabel in aniworldd/web/js/core/format.js), and the token
store keeps the login private and whole."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from aniworldd.commands.queue import format_items
from aniworldd.commands.token_store import delete_token, read_token, token_path, write_token
from aniworldd.core.labels import episode_label

FORMAT_JS = Path(__file__).resolve().parents[2] / "aniworldd" / "web" / "js" / "core" / "format.js"


@pytest.mark.parametrize(
    ("season", "episode", "label"),
    [
        (1, 1, "S01E01"),
        (1, 40, "S01E40"),
        (2, 100, "S02E100"),  # a long-running show keeps every digit
        (12, 3, "S12E03"),
        (0, 1, "Movie 1"),
        (0, 12, "Movie 12"),
        ("1", "7", "S01E07"),  # the API's JSON may carry numbers as text
    ],
)
def test_episode_label(season, episode, label):
    assert episode_label(season, episode) == label


def test_the_ui_uses_the_same_rule():
    """If the UI's rule changes, this says the CLI must follow (the two must read alike)."""
    body = re.search(r"function episodeLabel\(season, episode\) \{(.*?)\n\}", FORMAT_JS.read_text(), re.S)
    assert body, "episodeLabel not found in format.js"
    assert '"Movie " + episode' in body.group(1)
    assert '"S" + pad(season, 2) + "E" + pad(episode, 2)' in body.group(1)


def test_queue_list_labels():
    item = {"id": 1, "status": "pending", "key": "kaguya", "progress": 0}
    status = {
        "pending_queue": [item | {"season": 1, "episode": 3}, item | {"id": 2, "season": 0, "episode": 2}],
        "statistics": {"pending": 2},
    }
    lines = format_items(status).splitlines()
    assert "kaguya S01E03 " in lines[1] and "kaguya Movie 2 " in lines[2]
    assert "E003" not in lines[1] and "Film" not in "\n".join(lines)


def test_token_store_is_private_atomic_and_per_daemon(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert token_path() == tmp_path / "xdg" / "aniworldd" / "token"
    home, nas = "http://127.0.0.1:8080", "http://nas.lan:8080"
    assert read_token(home) is None
    (tmp_path / "xdg" / "aniworldd").mkdir(parents=True)
    os.chmod(tmp_path / "xdg" / "aniworldd", 0o755)  # made earlier with a loose mode
    path = write_token(home + "/", "a.b.c", "2030-01-01T00:00:00Z")
    assert read_token(home) == "a.b.c" and read_token(nas) is None  # never offered to another daemon
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    write_token(nas, "x.y.z")
    write_token(home, "d.e.f\n")
    assert read_token(home) == "d.e.f" and read_token(nas) == "x.y.z"
    assert os.listdir(path.parent) == ["token"]  # no temp file left behind
    assert delete_token(home) and not delete_token(home) and read_token(nas) == "x.y.z"
    assert delete_token(nas) and not path.exists()


def test_a_damaged_token_file_reads_as_logged_out(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    token_path().parent.mkdir(parents=True)
    for junk in ("not json", "[1, 2]", '{"http://h": "bare string"}', "\udcff"):
        token_path().write_text(junk, errors="surrogateescape")
        assert read_token("http://h") is None
    assert write_token("http://h", "t.o.k") and read_token("http://h") == "t.o.k"


def test_token_path_ignores_a_relative_xdg(tmp_path, monkeypatch):
    # The XDG spec: a relative XDG_CONFIG_HOME is invalid and must be ignored.
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert token_path() == tmp_path / ".config" / "aniworldd" / "token"
