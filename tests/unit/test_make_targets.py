"""The Makefile's helpers: the first-start config copy, the quiet package install, `make demo`'s stop.

All of them run for real: the copy helper on the project's example files, the install helper against a
folder used as / with an installer command that enables services the way postinst scripts do, and
`make demo` itself (look-alike site + daemon on free ports) stopped with SIGTERM and SIGINT.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

from aniworldd.config import load_config
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"


def _script_module(path: Path) -> ModuleType:
    """contrib/ holds scripts the Makefile runs, not a package: load one by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


first_config = _script_module(REPO / "contrib" / "first_config.py")


# ---- first start: the user's own copy -------------------------------------------------------------------


def test_demo_copy_points_where_the_example_pointed(tmp_path: Path) -> None:
    example = REPO / "contrib" / "demo" / "config.demo.yaml"
    before = example.read_bytes()
    demo_dir = REPO / "contrib" / "demo" / "demo-data"
    target = demo_dir / f"config-test-{os.getpid()}.yaml"  # the default DEMO_DIR, a name nobody uses
    try:
        assert first_config.copy_config(example, target)
        text = target.read_text()
        assert "data_dir: .\n" in text and "roots: [../demo-library]" in text
        mine, theirs = load_config(target, env={}), load_config(example, env={})
        for key in (("data_dir",), ("library", "roots"), ("downloads", "temp_dir"), ("database", "url")):
            a, b = mine, theirs
            for part in key:
                a, b = a[part], b[part]
            assert a == b, key
        for line in example.read_text().splitlines():  # everything else (comments too) copied as it was
            if not line.startswith(("data_dir:", "  roots:")):
                assert line in text.splitlines(), line
    finally:
        target.unlink(missing_ok=True)
    assert example.read_bytes() == before


def test_first_copy_creates_the_library_folders_it_names(tmp_path: Path) -> None:
    """A fresh checkout has no library folder, and the daemon rightly refuses to add into a root that is
    missing (an unmounted share must not look empty). The first-start copy is where the user's library is
    born: it makes the folders its config names, once; an existing config is left alone."""
    example = tmp_path / "example" / "config.yaml"
    example.parent.mkdir()
    example.write_text("data_dir: ./d\nlibrary:\n  roots: [./lib1, ./lib2]\n")
    assert first_config.copy_config(example, tmp_path / "one" / "config.yaml")
    assert (tmp_path / "example" / "lib1").is_dir() and (tmp_path / "example" / "lib2").is_dir()

    example.write_text("data_dir: ./d2\n")  # roots null: <data_dir>/library
    assert first_config.copy_config(example, tmp_path / "two" / "config.yaml")
    assert (tmp_path / "example" / "d2" / "library").is_dir()

    (tmp_path / "example" / "lib1").rmdir()
    example.write_text("data_dir: ./d\nlibrary:\n  roots: [./lib1]\n")
    assert not first_config.copy_config(example, tmp_path / "one" / "config.yaml")  # not a first start
    assert not (tmp_path / "example" / "lib1").exists()


def test_copy_elsewhere_uses_absolute_paths_and_never_overwrites(tmp_path: Path) -> None:
    example = REPO / "config.example.yaml"
    target = tmp_path / "data" / "config.yaml"
    assert first_config.copy_config(example, target)
    assert load_config(target, env={})["data_dir"] == load_config(example, env={})["data_dir"]
    # With nothing in common but `/` the path is written absolute; a clone under /tmp shares /tmp with
    # tmp_path, and then a relative path that resolves the same is right too (checked just above).
    if os.path.commonpath([REPO, tmp_path]) == "/":
        assert f"data_dir: {REPO / 'data'}\n" in target.read_text()
    else:
        assert f"data_dir: {os.path.relpath(REPO / 'data', target.parent)}\n" in target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    target.write_text("server:\n  port: 9999\n")
    assert not first_config.copy_config(example, target)
    assert target.read_text() == "server:\n  port: 9999\n"


# ---- make debs: no service left enabled -----------------------------------------------------------------


def _fake_root(tmp_path: Path, apt_body: str, exit_code: int = 0) -> tuple[Path, Path]:
    root = tmp_path / "root"
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (root / "etc/rc2.d").mkdir(parents=True)
    (root / "lib/systemd/system").mkdir(parents=True)
    # already enabled before the install: must stay
    (wants / "ssh.service").symlink_to("/lib/systemd/system/ssh.service")
    (root / "etc/rc2.d/S01ssh").symlink_to("../init.d/ssh")
    apt = tmp_path / "fake-apt"
    apt.write_text(
        "#!/bin/sh\n"
        '"$ROOT/usr/sbin/policy-rc.d" nginx start; echo "policy=$?" > "$ROOT/seen"\n'
        'echo "args=$*" >> "$ROOT/seen"\n' + apt_body + f"exit {exit_code}\n"
    )
    apt.chmod(0o755)
    return root, apt


ENABLE = (
    'W="$ROOT/etc/systemd/system/multi-user.target.wants"\n'
    'ln -s /lib/systemd/system/nginx.service "$W/nginx.service"\n'
    'ln -s /lib/systemd/system/caddy.service "$W/caddy.service"\n'
    'ln -s ../init.d/nginx "$ROOT/etc/rc2.d/S01nginx"\n'
    'mkdir -p "$ROOT/etc/systemd/system/sockets.target.wants"\n'
    'ln -s /lib/systemd/system/x.socket "$ROOT/etc/systemd/system/sockets.target.wants/x.socket"\n'
    # a unit file that is not an enabling link is the package's business
    'touch "$ROOT/lib/systemd/system/nginx.service"\n'
)


def _run_install(root: Path, apt: Path, *packages: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROOT": str(root), "APT_GET": str(apt)}
    return subprocess.run(
        ["sh", str(REPO / "contrib" / "apt-install-quiet.sh"), *packages],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _links(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.joinpath("etc").rglob("*") if p.is_symlink()}


def test_install_starts_nothing_and_leaves_only_what_was_enabled(tmp_path: Path) -> None:
    root, apt = _fake_root(tmp_path, ENABLE)
    before = _links(root)
    done = _run_install(root, apt, "nginx-light", "caddy")
    assert done.returncode == 0, done.stderr
    seen = (root / "seen").read_text()
    assert "policy=101" in seen  # invoke-rc.d / deb-systemd-invoke would start nothing
    assert "install -y -qq --no-install-recommends nginx-light caddy" in seen
    assert _links(root) == before  # ssh kept, the new ones gone
    assert "not left enabled: nginx.service" in done.stdout and "not left enabled: S01nginx" in done.stdout
    assert (root / "lib/systemd/system/nginx.service").exists()
    assert not (root / "usr/sbin/policy-rc.d").exists()  # ours, removed again


def test_install_keeps_an_existing_policy_and_reports_failure(tmp_path: Path) -> None:
    root, apt = _fake_root(tmp_path, ENABLE, exit_code=100)
    policy = root / "usr/sbin/policy-rc.d"
    policy.parent.mkdir(parents=True)
    policy.write_text("#!/bin/sh\nexit 101\n# the image's own\n")
    policy.chmod(0o755)
    done = _run_install(root, apt, "mosquitto")
    assert done.returncode == 100  # apt's failure is make's failure
    assert _links(root) == {"etc/systemd/system/multi-user.target.wants/ssh.service", "etc/rc2.d/S01ssh"}
    assert policy.read_text().endswith("# the image's own\n")


# ---- make demo: both processes stop ---------------------------------------------------------------------


def _pids_with(marker: str) -> list[int]:
    """Processes whose command line contains `marker` (reads /proc: no ps needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline + " " and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:  # an answer all the same (404, 401 ...)
        return exc.code < 500
    except OSError:
        return False


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["SIGTERM to make", "SIGINT to the process group"])
def test_make_demo_stops_site_and_daemon(tmp_path: Path, how: str) -> None:
    demo_dir, library = tmp_path / "demo", tmp_path / "library"
    library.mkdir()
    port, fake_port = free_port(), free_port()
    env = {
        **os.environ,
        # this test's own data and library (the copied demo config points into contrib/demo/)
        "ANIWORLDD_DATA_DIR": str(tmp_path / "data"),
        "ANIWORLDD_LIBRARY__ROOTS": f"[{library}]",
        "ANIWORLDD_LIBRARY__WATCH": "false",
    }
    make = subprocess.Popen(
        [
            "make",
            "-o",
            f"{VENV}/.installed-test",
            "-o",
            f"{VENV}/.installed",
            f"DEMO_DIR={demo_dir}",
            f"DEMO_PORT={port}",
            f"FAKESITE_PORT={fake_port}",
            "demo",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal would give it
    )
    # the daemon and the site themselves (not the supervisor, whose arguments name the same things)
    daemon_marker = f"aniworldd run --config {demo_dir}/config.yaml "
    fake_marker = f"tests.fakesite --port {fake_port} "
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and make.poll() is None:
            if _answers(f"http://127.0.0.1:{port}/health") and _answers(f"http://127.0.0.1:{fake_port}/"):
                break
            time.sleep(0.3)
        assert make.poll() is None, make.stdout.read().decode()
        assert _pids_with(daemon_marker) and _pids_with(fake_marker), "both should run before the stop"
        assert (demo_dir / "config.yaml").is_file()

        if how == "SIGTERM to make":
            make.send_signal(signal.SIGTERM)
        else:
            os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=60)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (_pids_with(daemon_marker) or _pids_with(fake_marker)):
            time.sleep(0.2)
        assert _pids_with(daemon_marker) == [] and _pids_with(fake_marker) == []
        assert not _answers(f"http://127.0.0.1:{port}/health")
        assert not _answers(f"http://127.0.0.1:{fake_port}/")
    finally:
        for pid in _pids_with(daemon_marker) + _pids_with(fake_marker):
            os.kill(pid, signal.SIGKILL)
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
