"""`aniworldd login` / `logout` / `api-key` against a real daemon process, the labels `show` prints, and a
quiet exit when the reader of stdout goes away. HOME and XDG_CONFIG_HOME point into tmp_path, so no token a
developer stored is read or touched."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, DaemonProcess, FakeSiteThread
from tests.fakesite.catalog import STO, make_series
from tests.fakesite.state import FakeSiteState

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple 17"


def run_cli(*args: str, env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aniworldd", *args],
        input=stdin, capture_output=True, text=True, timeout=60, env=env, cwd=REPO,
    )  # fmt: skip


def user_env(tmp_path: Path, name: str, *, xdg: bool = True, **extra: str) -> dict:
    """A shell of a user whose home is in tmp_path; without `xdg` the token goes to ~/.config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANIWORLDD_")}
    env.pop("XDG_CONFIG_HOME", None)
    env["HOME"] = str(tmp_path / name / "home")
    if xdg:
        env["XDG_CONFIG_HOME"] = str(tmp_path / name / "xdg")
    return env | extra


@pytest.fixture(scope="module")
def site() -> Iterator[FakeSiteThread]:
    state = FakeSiteState()
    state.catalog.add(make_series(STO, "pipe-show", "Pipe Show", {1: 40}, movies=2, start_year=2020))
    thread = FakeSiteThread(state).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def daemon(site: FakeSiteThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(tmp_path_factory.mktemp("daemon"), site.origin).start()
    try:
        status, _ = proc.request("POST", "/api/auth/setup", {"password": PASSWORD})
        assert status == 201, proc.log_text()
        yield proc
    finally:
        proc.stop()


def test_login_stores_a_private_token_the_queue_commands_use(daemon: DaemonProcess, tmp_path: Path) -> None:
    env = user_env(tmp_path, "alice")
    url = ["--url", daemon.url]
    token_file = tmp_path / "alice" / "xdg" / "aniworldd" / "token"

    denied = run_cli("queue", "list", *url, env=env)
    assert denied.returncode == 1 and "HTTP 401" in denied.stderr and "aniworldd login" in denied.stderr

    wrong = run_cli("login", *url, "--stdin", env=env, stdin="not the password\n")
    assert wrong.returncode == 1 and "wrong password" in wrong.stderr and "HTTP 401" in wrong.stderr
    assert not token_file.exists()
    empty = run_cli("login", *url, "--stdin", env=env, stdin="\n")
    assert empty.returncode == 1 and "no password" in empty.stderr and not token_file.exists()

    # The address from the config file this time, as a user of the daemon's own config would.
    ok = run_cli("login", "--config", str(daemon.config_path), "--stdin", env=env, stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
    assert str(token_file) in ok.stdout and "valid until" in ok.stdout
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert os.listdir(token_file.parent) == ["token"]  # the temp file of the atomic write is gone
    token = json.loads(token_file.read_text())[daemon.url]["token"]
    assert token.count(".") == 2 and PASSWORD not in token_file.read_text()
    status, _ = daemon.request("GET", "/api/queue/status", token=token)
    assert status == 200

    listed = run_cli("queue", "list", *url, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "queue stopped" in listed.stdout or "queue running" in listed.stdout
    # The token goes back only to the address that issued it, not to another `--url` (even the same daemon
    # under another name: the CLI cannot know that, and a typo'd or hostile URL must not get the token).
    other = run_cli("queue", "list", "--url", daemon.url.replace("127.0.0.1", "localhost"), env=env)
    assert other.returncode == 1 and "HTTP 401" in other.stderr
    # An explicit credential wins over the stored login (a script's key is never silently replaced).
    explicit = run_cli("queue", "list", *url, env=env | {"ANIWORLDD_API_KEY": "not-a-key"})
    assert explicit.returncode == 1 and "HTTP 401" in explicit.stderr

    # Logging in again replaces the token in place; logout revokes it on the daemon and forgets it here.
    again = run_cli("login", *url, "--stdin", env=env, stdin=PASSWORD + "\n")
    assert again.returncode == 0, again.stderr
    second = json.loads(token_file.read_text())[daemon.url]["token"]
    assert second != token and os.listdir(token_file.parent) == ["token"]
    out = run_cli("logout", *url, env=env)
    assert out.returncode == 0 and "revoked" in out.stdout, out.stderr
    assert not token_file.exists()
    status, _ = daemon.request("GET", "/api/queue/status", token=second)
    assert status == 401
    assert run_cli("queue", "list", *url, env=env).returncode == 1
    assert "not logged in" in run_cli("logout", *url, env=env).stdout


def test_login_without_xdg_uses_home_config(daemon: DaemonProcess, tmp_path: Path) -> None:
    env = user_env(tmp_path, "bob", xdg=False)
    ok = run_cli("login", "--url", daemon.url, "--stdin", env=env, stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
    token_file = tmp_path / "bob" / "home" / ".config" / "aniworldd" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700


def _read_until(fd: int, marker: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_login_asks_on_the_terminal(daemon: DaemonProcess, tmp_path: Path) -> None:
    """Without --stdin the password is asked on the controlling terminal (a real pty), not echoed."""
    env = user_env(tmp_path, "erin")
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "aniworldd", "login", "--url", daemon.url], env)
    try:
        assert b"Master password:" in _read_until(fd, b"Master password:")
        os.write(fd, PASSWORD.encode() + b"\n")
        rest = _read_until(fd, b"logged in")
        rest += _read_until(fd, b"\n", timeout=5)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, rest
    assert b"logged in; token stored in" in rest and PASSWORD.encode() not in rest
    token_file = tmp_path / "erin" / "xdg" / "aniworldd" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_api_key_create_list_revoke(daemon: DaemonProcess, tmp_path: Path) -> None:
    env = user_env(tmp_path, "carol")
    url = ["--url", daemon.url]
    anonymous = run_cli("api-key", "list", *url, env=env)
    assert anonymous.returncode == 1 and "aniworldd login" in anonymous.stderr
    assert run_cli("login", *url, "--stdin", env=env, stdin=PASSWORD + "\n").returncode == 0

    bad_scope = run_cli("api-key", "create", "x", "--scope", "root", *url, env=env)
    assert bad_scope.returncode == 2 and "invalid choice" in bad_scope.stderr
    created = run_cli("api-key", "create", "home-assistant", "--scope", "control", *url, env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key and "\n" not in key and "scope control" in created.stderr and "only once" in created.stderr
    reader = run_cli("api-key", "create", "grafana", *url, env=env)
    assert reader.returncode == 0 and "scope read" in reader.stderr  # the server's default scope

    table = run_cli("api-key", "list", *url, env=env)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[1]: line.split() for line in table.stdout.splitlines()[1:]}
    assert rows["home-assistant"][2] == "control" and rows["grafana"][2] == "read"
    assert key not in table.stdout

    # The key works for the queue commands of someone who never logged in ...
    script = user_env(tmp_path, "script", ANIWORLDD_API_KEY=key)
    assert run_cli("queue", "list", *url, env=script).returncode == 0
    # ... but cannot manage keys itself (the API wants a login token there).
    assert "aniworldd login" in run_cli("api-key", "list", *url, env=script).stderr

    # By name (as the README shows it) ...
    revoked = run_cli("api-key", "revoke", "home-assistant", *url, env=env)
    assert revoked.returncode == 0 and f"API key {rows['home-assistant'][0]} revoked" in revoked.stdout
    after = run_cli("queue", "list", *url, env=script)
    assert after.returncode == 1 and "HTTP 401" in after.stderr
    assert "home-assistant" not in run_cli("api-key", "list", *url, env=env).stdout
    gone = run_cli("api-key", "revoke", "home-assistant", *url, env=env)
    assert gone.returncode == 1 and "no API key named 'home-assistant'" in gone.stderr
    # ... or by ID; a name two keys share is refused rather than guessed.
    assert run_cli("api-key", "create", "grafana", *url, env=env).returncode == 0
    twice = run_cli("api-key", "revoke", "grafana", *url, env=env)
    assert twice.returncode == 1 and "2 API keys are named 'grafana'" in twice.stderr
    by_id = run_cli("api-key", "revoke", rows["grafana"][0], *url, env=env)
    assert by_id.returncode == 0 and f"API key {rows['grafana'][0]} revoked" in by_id.stdout
    assert run_cli("api-key", "list", *url, env=env).stdout.count("grafana") == 1
    missing = run_cli("api-key", "revoke", "999999", *url, env=env)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr


def _standalone_config(tmp_path: Path, origin: str) -> Path:
    (tmp_path / "lib").mkdir(exist_ok=True)  # the daemon never creates a library root itself
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nlibrary:\n  roots: [{tmp_path / 'lib'}]\n"
        f"provider:\n  aniworld_url: {origin}\n  sto_url: {origin}\n  min_interval: 0\n"
    )
    return config


def test_show_labels_match_the_ui_and_a_closed_pipe_is_quiet(site: FakeSiteThread, tmp_path: Path) -> None:
    env = user_env(tmp_path, "dave")
    config = _standalone_config(tmp_path, site.origin)
    added = run_cli("add", f"{site.origin}/serie/pipe-show", "--config", str(config), env=env)
    assert added.returncode == 0, added.stderr

    shown = run_cli("show", "pipe-show", "--config", str(config), env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.strip().startswith("S01E01  missing") for line in lines)
    assert any(line.strip().startswith("S01E40  missing") for line in lines)
    movie = next(i for i, line in enumerate(lines) if line.strip().startswith("Movie 1  missing"))
    assert movie > max(i for i, line in enumerate(lines) if "S01E" in line)  # movies last, as in the UI
    assert "S01E001" not in shown.stdout and "Film" not in shown.stdout

    # The reader is gone before the command writes a byte: every write meets EPIPE.
    proc = subprocess.Popen(
        [sys.executable, "-m", "aniworldd", "show", "pipe-show", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""

    # The same in a shell pipeline as the README would show it: `head` gets the first line, nothing else.
    pipeline = 'set -o pipefail; "$0" -m aniworldd show pipe-show --config "$1" | head -1'
    piped = subprocess.run(
        ["bash", "-c", pipeline, sys.executable, str(config)],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO,
    )  # fmt: skip
    assert piped.stdout.startswith("Pipe Show (2020)") and piped.stdout.count("\n") == 1
    assert piped.stderr == "" and piped.returncode in (0, 141)
