"""The multi-process packaging: packaging/docker-compose.cluster.yml, its nginx front and `make services`.

`docker compose config` checks the compose file where the compose plugin is installed; everywhere the file
is parsed and its shape asserted (no Docker daemon on CI). The nginx config runs for real in front of two
stand-in api processes, and the environment the compose file gives each process goes through the real
config loader, so a renamed config key fails here rather than in a container.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from aniworldd.config import ENV_PREFIX, ENV_RESERVED, SECTIONS, load_text
from tests.conftest import free_port, postgres_answers
from tests.nginx_main import write_nginx_main

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "packaging" / "docker-compose.cluster.yml"
NGINX_CONF = ROOT / "packaging" / "nginx-cluster.conf"
DOCKERFILE = ROOT / "Dockerfile"
SERVICES_SCRIPT = ROOT / "contrib" / "test-services.sh"
#: what the user puts in .env (the compose file refuses to start without the two passwords)
DOTENV = {"POSTGRES_PASSWORD": "s3cretpw", "ANIWORLDD_MQTT__PASSWORD": "mqttpw"}


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (enough for our file)."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose would refuse to start: {name} unset ({arg})")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _mounts(service: dict) -> dict[str, str]:
    """target -> source of short-syntax mounts (`:ro` kept on the source so it can be asserted)."""
    out = {}
    for volume in service.get("volumes", []):
        ro = volume.endswith(":ro")
        source, _, target = re.sub(r":(ro|rw)$", "", volume).rpartition(":")
        out[target] = source + (":ro" if ro else "")
    return out


def _role(service: dict) -> str:
    command = service["command"]
    assert command[0] == "run"
    return command[command.index("--role") + 1]


def _process_env(service: dict) -> dict[str, str]:
    return {k: _interpolate(str(v), DOTENV) for k, v in service["environment"].items()}


# -- docker compose itself --------------------------------------------------------------------------------


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker not installed (the compose file's shape is checked below)")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
    if version.returncode != 0:
        pytest.skip("the docker compose plugin is not installed (the compose file's shape is checked below)")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **DOTENV},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


# -- the compose file's shape -----------------------------------------------------------------------------


def test_two_api_and_two_worker_processes_from_the_project_image(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"api", "worker", "nginx", "postgres", "redis", "mosquitto"}
    for name, role in (("api", "api"), ("worker", "worker")):
        service = services[name]
        assert service["deploy"]["replicas"] == 2, name
        assert _role(service) == role
        assert service["command"][-2:] == ["-c", "/config/config.yaml"]
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert (context / service["build"]["dockerfile"]).resolve() == DOCKERFILE
        assert "ports" not in service, f"{name}: only nginx is published"
        assert "container_name" not in service  # would forbid a second replica
    assert "healthcheck" not in services["worker"]  # the image's /health check applies to workers too


def test_processes_wait_for_healthy_servers(compose: dict) -> None:
    services = compose["services"]
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        for server in ("postgres", "redis"):
            assert depends[server]["condition"] == "service_healthy", (name, server)
            assert services[server]["healthcheck"]["test"], server
    assert services["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["image"].startswith("redis:")


def test_every_process_shares_data_library_and_one_read_only_config(compose: dict) -> None:
    services = compose["services"]
    api, worker = _mounts(services["api"]), _mounts(services["worker"])
    assert api == worker
    assert api["/data"] == "data" and "data" in compose["volumes"]  # JWT secret, password file
    assert api["/library"].startswith("${LIBRARY_PATH")
    assert api["/config/config.yaml"].endswith(":ro")
    default_config = _interpolate(api["/config/config.yaml"].removesuffix(":ro"), {})
    assert (COMPOSE.parent / default_config).resolve() == ROOT / "packaging" / "docker" / "config.yaml"
    # the temp dir on the shared library volume: another worker resumes a dead one's partial file
    for name in ("api", "worker"):
        assert services[name]["environment"]["ANIWORLDD_DOWNLOADS__TEMP_DIR"].startswith("/library/")
    named = {s for svc in services.values() for s in _mounts(svc).values() if not s.startswith(("$", "."))}
    assert named <= set(compose["volumes"])
    for svc in services.values():
        for source in _mounts(svc).values():
            source = source.removesuffix(":ro")
            if source.startswith(".") and not source.endswith("passwd"):  # passwd: made by the user
                assert (COMPOSE.parent / source).exists(), source


def test_nginx_serves_the_cluster_conf_with_websocket_upgrade(compose: dict) -> None:
    nginx = compose["services"]["nginx"]
    assert _mounts(nginx)["/etc/nginx/conf.d/default.conf"] == "./nginx-cluster.conf:ro"
    assert any(p.endswith(":80") for p in nginx["ports"])
    text = NGINX_CONF.read_text()
    assert re.search(r"upstream aniworldd_api \{\s*server api:8080;", text)
    ws = re.search(r"location /ws/ \{(.*?)\}", text, re.S).group(1)
    assert "proxy_pass http://aniworldd_api;" in ws
    assert re.search(r"proxy_set_header Upgrade\s+\$http_upgrade;", ws)
    assert re.search(r"proxy_set_header Connection\s+\$aniworldd_connection;", ws)
    assert re.search(r"proxy_set_header Host\s+\$http_host;", ws)
    assert re.search(r"proxy_read_timeout (\d+h|\d{4,}s?);", ws), "a WebSocket idles for long"
    assert "proxy_http_version 1.1;" in text


# -- the environment is real config ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["api", "worker"])
def test_process_environment_is_valid_config(compose: dict, name: str) -> None:
    """The env names are config keys (the loader ignores an ANIWORLDD_ name outside every section, so
    that is asserted too), and the image's config plus this env is a valid cluster process."""
    service = compose["services"][name]
    env = _process_env(service)
    for key in env:
        if key.startswith(ENV_PREFIX):
            rest = key[len(ENV_PREFIX) :]
            first = rest.split("__")[0].lower()
            assert rest in ENV_RESERVED or first in SECTIONS or first == "data_dir", key
    env["ANIWORLDD_CLUSTER__ROLE"] = _role(service)  # what `run --role` sets
    docker_config = ROOT / "packaging" / "docker" / "config.yaml"
    cfg = load_text(docker_config.read_text(), str(docker_config), env, base_dir=Path("/config"))
    assert cfg["cluster"]["role"] == name
    assert cfg["cluster"]["redis_url"] == "redis://redis:6379/0"
    assert (
        cfg["database"]["url"]
        == f"postgresql://aniworldd:{DOTENV['POSTGRES_PASSWORD']}@postgres:5432/aniworldd"
    )
    assert cfg["server"]["host"] == "0.0.0.0"
    assert cfg["data_dir"] == "/data"
    assert cfg["library"]["roots"] == ["/library"]
    assert cfg["downloads"]["temp_dir"] == "/library/.aniworldd-tmp"
    if name == "api":
        assert cfg["mqtt"]["host"] == "mosquitto"
        assert cfg["server"]["trusted_proxies"]


def test_database_credentials_match_the_postgres_service(compose: dict) -> None:
    pg = {k: _interpolate(str(v), DOTENV) for k, v in compose["services"]["postgres"]["environment"].items()}
    url = _process_env(compose["services"]["worker"])["ANIWORLDD_DATABASE__URL"]
    assert (
        url
        == f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    )


# -- nginx for real -------------------------------------------------------------------------------------


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.skip("nginx not installed (Debian package nginx-light: see Makefile TEST_DEBS)")
    return found


def _nginx_main(tmp_path: Path, upstreams: list[int], port: int) -> Path:
    """The shipped conf with only its addresses changed, inside a main config as the official image has."""
    site = NGINX_CONF.read_text()
    assert site.count("    server api:8080;\n") == 1 and site.count("    listen 80;\n") == 1
    site = site.replace("    server api:8080;\n", "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams))
    site = site.replace("    listen 80;\n", f"    listen 127.0.0.1:{port};\n")
    (tmp_path / "default.conf").write_text(site)
    return write_nginx_main(tmp_path, tmp_path / "default.conf")


def test_nginx_accepts_the_conf(tmp_path: Path) -> None:
    nginx = _nginx()
    main = _nginx_main(tmp_path, [8080], free_port())
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def _running(args: list[str], log: Path, port: int) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"nginx exited {proc.returncode}: {log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx not listening: {log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def _api_process(aiohttp_server, name: str) -> int:
    """Stands in for one api replica: names itself on /health and in WebSocket echoes."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            await sock.send_str(f"{name}:{msg.data}:{request.host}")
        return sock

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": name})

    app = web.Application()
    app.router.add_get("/ws/connect", ws)
    app.router.add_get("/health", health)
    return (await aiohttp_server(app)).port


@pytest.mark.slow
async def test_nginx_spreads_requests_and_websockets_over_both_api_processes(
    tmp_path: Path, aiohttp_server
) -> None:
    nginx = _nginx()
    upstreams = [await _api_process(aiohttp_server, "api-1"), await _api_process(aiohttp_server, "api-2")]
    port = free_port()
    main = _nginx_main(tmp_path, upstreams, port)
    base = f"http://127.0.0.1:{port}"
    with _running([nginx, "-p", str(tmp_path), "-c", str(main)], tmp_path / "nginx.log", port):
        nodes, echoes = set(), set()
        async with aiohttp.ClientSession() as session:
            for _ in range(6):
                async with session.get(f"{base}/health") as resp:
                    assert resp.status == 200
                    nodes.add((await resp.json())["node"])
            for _ in range(6):
                async with session.ws_connect(f"{base}/ws/connect") as sock:
                    await sock.send_str("hi")
                    echoes.add((await sock.receive(timeout=10)).data)
    assert nodes == {"api-1", "api-2"}  # round robin over the replicas
    assert echoes == {f"api-1:hi:127.0.0.1:{port}", f"api-2:hi:127.0.0.1:{port}"}  # Upgrade + Host pass


# -- make services ----------------------------------------------------------------------------------------


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def _redis_answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


def test_services_script_is_posix_sh() -> None:
    result = subprocess.run(["sh", "-n", str(SERVICES_SCRIPT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_services_leaves_running_servers_alone() -> None:
    """On a prepared machine (both servers answering) `make services` does nothing and says nothing."""
    if not (postgres_answers() and _redis_answers(6379)):
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 and redis-server on 127.0.0.1:6379 running")
    if os.geteuid() == 0 and shutil.which("psql"):
        trusted = subprocess.run(
            ["psql", "-w", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atc", "select 1"],
            capture_output=True,
            timeout=30,
        )
        if trusted.returncode != 0:
            pytest.skip("PostgreSQL asks user postgres for a password: `make services` would change pg_hba")
    result = subprocess.run(["sh", str(SERVICES_SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_services_without_root_only_reports(tmp_path: Path) -> None:
    """Not root: no server is started, the missing ones are named and make test goes on (exit 0)."""
    args = ["sh", str(SERVICES_SCRIPT)]
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("root without runuser: cannot run the script as another user")
        args = [runuser, "-u", "nobody", "--", *args]
    pg_port, redis_port = free_port(), free_port()
    env = {"PATH": os.environ["PATH"], "PG_PORT": str(pg_port), "REDIS_PORT": str(redis_port)}
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"no PostgreSQL on 127.0.0.1:{pg_port}" in result.stdout
    assert f"no redis-server on 127.0.0.1:{redis_port}" in result.stdout
    assert not _port_open(pg_port) and not _port_open(redis_port)  # nothing was started


def test_make_test_installs_and_starts_the_servers() -> None:
    makefile = (ROOT / "Makefile").read_text()
    debs = " ".join(re.findall(r"^TEST_DEBS \+?:?= (.*)$", makefile, re.M)).split()
    assert {"postgresql", "redis-server"} <= set(debs)
    assert re.search(r"^test: services\b", makefile, re.M)
    assert re.search(r"^services: debs\n\t@sh contrib/test-services.sh$", makefile, re.M)


# -- README -----------------------------------------------------------------------------------------------


def test_readme_cluster_example_is_valid_config() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## More than one process\n", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    cfg = load_text(example, "README.md", env={})
    assert cfg["cluster"]["redis_url"] and cfg["database"]["url"].startswith("postgresql://")
    for key in ("redis_url", "role", "node", "prefix", "lease"):
        assert f"cluster.{key}" in section or f"  {key}:" in example, key
