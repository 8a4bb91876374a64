"""Master password, token life cycle, revocation, rate limit and API keys through the real API."""

from __future__ import annotations

import io
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from aiohttp.test_utils import TestClient

from aniworldd.api.app import create_app
from aniworldd.cli import main as cli_main
from aniworldd.services import auth_service
from aniworldd.services.auth_service import AuthService, LoginRateLimiter, PasswordFile, RateLimited
from tests.api.conftest import PASSWORD, Api


async def test_first_start_status_and_setup_once(api: Api) -> None:
    status, data = await api.call("GET", "/api/auth/status")
    assert status == 200
    assert data["configured"] is False and data["authenticated"] is False

    # nothing but setup works before a password exists
    status, data = await api.call("POST", "/api/auth/login", json={"password": PASSWORD})
    assert status == 409 and data["error"]["code"] == "setup_required"
    status, data = await api.call("GET", "/api/queue/status")
    assert status == 401

    status, data = await api.call("POST", "/api/auth/setup", json={"password": "short"})
    assert status == 400 and data["error"]["code"] == "validation_error"
    assert data["error"]["details"]["errors"][0]["path"] == "password"
    assert not api.ctx.auth.is_configured()

    status, data = await api.call("POST", "/api/auth/setup", json={"password": PASSWORD})
    assert status == 201
    assert data["token_type"] == "bearer" and data["access_token"]
    status, data = await api.call("POST", "/api/auth/setup", json={"password": "another password"})
    assert status == 409 and data["error"]["code"] == "already_configured"
    # the first password is still the one that works
    status, _ = await api.call("POST", "/api/auth/login", json={"password": "another password"})
    assert status == 401
    status, _ = await api.call("POST", "/api/auth/login", json={"password": PASSWORD})
    assert status == 200


async def test_login_token_shape_and_use(api: Api) -> None:
    await api.setup_and_login()
    resp = await api.client.post("/api/auth/login", json={"password": PASSWORD})
    data = await resp.json()
    assert set(data) == {"access_token", "token_type", "expires_at"}
    expires = datetime.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    ttl = api.ctx.config["auth"]["token_ttl"]
    assert abs((expires - datetime.now(UTC)).total_seconds() - ttl) < 60
    claims = jwt.decode(data["access_token"], options={"verify_signature": False})
    assert claims["jti"] and claims["exp"] == int(expires.timestamp())

    status, body = await api.call("GET", "/api/auth/status")
    assert body == {
        "configured": True,
        "authenticated": True,
        "method": "bearer",
        "expires_at": body["expires_at"],
        "api_keys_enabled": True,
        "setup_allowed": False,
    }
    status, _ = await api.call("GET", "/api/queue/status")
    assert status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-Api-Key": "awd_nonsense"},
    ],
)
async def test_protected_routes_refuse_missing_or_bad_credentials(api: Api, headers: dict) -> None:
    await api.setup_and_login()
    resp = await api.client.get("/api/queue/status", headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    data = await resp.json()
    assert data["error"]["code"] in ("unauthorized", "invalid_token", "invalid_api_key")


async def test_token_signed_with_another_secret_or_algorithm_is_refused(api: Api) -> None:
    await api.setup_and_login()
    claims = jwt.decode(api.token, options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-of-sufficient-length-0123456789", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (forged, unsigned):
        resp = await api.client.get("/api/queue/status", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 401


async def test_expired_token_is_refused(api_factory) -> None:
    api = await api_factory("auth:\n  token_ttl: 0\n")
    await api.setup_and_login()
    status, data = await api.call("GET", "/api/queue/status")
    assert status == 401 and data["error"]["code"] == "token_expired"


async def test_logout_revokes_only_that_token_and_survives_restart(api: Api, aiohttp_client) -> None:
    first = await api.setup_and_login()
    second = await api.setup_and_login()
    api.token = first
    status, data = await api.call("POST", "/api/auth/logout")
    assert status == 200 and data["status"] == "success"
    status, data = await api.call("GET", "/api/queue/status")
    assert status == 401 and data["error"]["code"] == "token_revoked"
    status, data = await api.call("POST", "/api/auth/logout")
    assert status == 401
    api.token = second
    status, _ = await api.call("GET", "/api/queue/status")
    assert status == 200

    # a restarted daemon (new AuthService, same data dir and database) still knows both sessions
    ctx = api.ctx
    ctx.auth = AuthService.from_config(ctx.store, ctx.config, bcrypt_rounds=4)
    client = await aiohttp_client(create_app(ctx))
    resp = await client.get("/api/queue/status", headers={"Authorization": f"Bearer {first}"})
    assert resp.status == 401
    resp = await client.get("/api/queue/status", headers={"Authorization": f"Bearer {second}"})
    assert resp.status == 200


async def test_status_with_revoked_token_says_not_authenticated(api: Api) -> None:
    await api.setup_and_login()
    await api.call("POST", "/api/auth/logout")
    status, data = await api.call("GET", "/api/auth/status")
    assert status == 200 and data["authenticated"] is False and data["configured"] is True


async def test_set_password_command_changes_password_and_signs_out(api: Api, monkeypatch) -> None:
    old_token = await api.setup_and_login()
    config_path = api.ctx.config_path
    monkeypatch.setattr("sys.stdin", io.StringIO("a brand new password\n"))
    assert cli_main(["set-password", "--config", str(config_path), "--stdin"]) == 0
    api.ctx.auth.reload_interval = 0  # the daemon polls auth.json once a second; no waiting in tests
    api.token = old_token
    status, data = await api.call("GET", "/api/queue/status")
    assert status == 401 and data["error"]["code"] == "token_revoked"
    api.token = None
    status, _ = await api.call("POST", "/api/auth/login", json={"password": PASSWORD})
    assert status == 401
    await api.setup_and_login("a brand new password")
    status, _ = await api.call("GET", "/api/queue/status")
    assert status == 200


def test_set_password_command_rejects_mismatch_and_short(tmp_path: Path, monkeypatch, capsys) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    answers = iter(["first password", "second password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert cli_main(["set-password", "--config", str(cfg)]) == 1
    assert "do not match" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli_main(["set-password", "--config", str(cfg), "--stdin"]) == 1
    assert "at least 8" in capsys.readouterr().err
    assert not (tmp_path / "data" / "auth.json").exists()
    answers = iter(["same password", "same password"])
    assert cli_main(["set-password", "--config", str(cfg)]) == 0
    first = PasswordFile(tmp_path / "data").read()["version"]
    # no earlier version to count from: the clock (a lost auth.json must not restart the count at 1)
    assert isinstance(first, int) and first >= 1_700_000_000
    answers = iter(["next password", "next password"])
    assert cli_main(["set-password", "--config", str(cfg)]) == 0
    assert PasswordFile(tmp_path / "data").read()["version"] == first + 1


async def test_secrets_are_private_files_and_no_plain_password(api: Api) -> None:
    await api.setup_and_login()
    data_dir = Path(api.ctx.config["data_dir"])
    for name in ("auth.json", "jwt.secret"):
        mode = stat.S_IMODE((data_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert PASSWORD not in (data_dir / "auth.json").read_text()
    assert PasswordFile(data_dir).read()["password_hash"].startswith("$2")


async def test_env_password_only_on_first_start(store, config) -> None:
    auth = AuthService.from_config(store, config, bcrypt_rounds=4)
    assert await auth.bootstrap("from the environment") is True
    assert await auth.bootstrap("changed later in env") is False
    token = await auth.login("from the environment", "127.0.0.1")
    assert (await auth.verify_token(token["access_token"])).kind == "login"
    with pytest.raises(auth_service.Unauthorized):
        await auth.login("changed later in env", "127.0.0.1")


async def test_long_passwords_are_not_truncated(store, config) -> None:
    auth = AuthService.from_config(store, config, bcrypt_rounds=4)
    long = "x" * 80 + "tail-one"
    await auth.setup(long)
    await auth.login(long, "a")
    with pytest.raises(auth_service.Unauthorized):
        await auth.login("x" * 80 + "tail-two", "a")


async def test_password_check_runs_off_the_event_loop(store, config, monkeypatch) -> None:
    auth = AuthService.from_config(store, config, bcrypt_rounds=4)
    await auth.setup(PASSWORD)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = auth_service.check_password

    def spy(password: str, hashed: str) -> bool:
        seen.append(threading.get_ident())
        return real(password, hashed)

    monkeypatch.setattr(auth_service, "check_password", spy)
    await auth.login(PASSWORD, "a")
    assert seen and all(t != loop_thread for t in seen)


async def test_failed_logins_are_rate_limited_per_address(api_factory) -> None:
    api = await api_factory("auth:\n  login_rate_limit: {attempts: 3, window: 300}\n")
    await api.setup_and_login()
    for _ in range(3):
        status, data = await api.call("POST", "/api/auth/login", json={"password": "wrong password"})
        assert status == 401 and data["error"]["code"] == "invalid_credentials"
    resp = await api.client.post("/api/auth/login", json={"password": PASSWORD})
    assert resp.status == 429
    retry_after = int(resp.headers["Retry-After"])
    assert 0 < retry_after <= 300
    data = await resp.json()
    assert data["error"]["code"] == "rate_limited" and data["error"]["details"]["retry_after"] == retry_after
    # another address is not affected
    token = await api.ctx.auth.login(PASSWORD, "192.0.2.7")
    assert token["access_token"]


def test_rate_limiter_window_and_success() -> None:
    now = [1000.0]
    limiter = LoginRateLimiter(2, 60, clock=lambda: now[0])
    limiter.begin("a")
    stamp = limiter.begin("a")
    with pytest.raises(RateLimited) as exc:
        limiter.begin("a")
    assert exc.value.retry_after == 60
    limiter.begin("b")  # per address
    now[0] += 30
    with pytest.raises(RateLimited) as exc:
        limiter.begin("a")
    assert exc.value.retry_after == 30
    now[0] += 31  # the window slid past both failures
    limiter.begin("a")
    stamp = limiter.begin("a")
    limiter.succeed("a", stamp)  # a success is not a failure
    limiter.begin("a")


async def test_api_keys_life_cycle(api: Api) -> None:
    await api.setup_and_login()
    status, created = await api.call("POST", "/api/auth/api-keys", json={"name": "sonarr script"})
    assert status == 201
    key = created["key"]
    assert key.startswith("awd_") and created["name"] == "sonarr script"
    status, listed = await api.call("GET", "/api/auth/api-keys")
    assert status == 200 and [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    # the database holds only a hash
    rows = api.ctx.store.run_sync(lambda: [s.jti for s in api.ctx.store.e.UserSession.select()])
    assert all(key not in jti for jti in rows)

    key_headers = {"X-Api-Key": key}
    resp = await api.client.get("/api/queue/status", headers=key_headers)
    assert resp.status == 200
    status = (await api.client.get("/api/auth/status", headers=key_headers)).status
    assert status == 200
    # an API key cannot manage API keys, nor "log out"
    resp = await api.client.post("/api/auth/api-keys", json={"name": "x"}, headers=key_headers)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "login_required"
    resp = await api.client.post("/api/auth/logout", headers=key_headers)
    assert resp.status == 400

    status, _ = await api.call("DELETE", f"/api/auth/api-keys/{created['id']}")
    assert status == 200
    resp = await api.client.get("/api/queue/status", headers=key_headers)
    assert resp.status == 401
    status, data = await api.call("DELETE", f"/api/auth/api-keys/{created['id']}")
    assert status == 404
    status, data = await api.call("DELETE", "/api/auth/api-keys/abc")
    assert status == 400 and data["error"]["details"]["errors"][0]["path"] == "key_id"
    status, data = await api.call("POST", "/api/auth/api-keys", json={"name": "   "})
    assert status == 400


async def test_api_keys_can_be_disabled(api_factory) -> None:
    api = await api_factory("auth:\n  api_keys_enabled: false\n")
    await api.setup_and_login()
    status, data = await api.call("POST", "/api/auth/api-keys", json={"name": "x"})
    assert status == 403 and data["error"]["code"] == "api_keys_disabled"
    resp = await api.client.get("/api/queue/status", headers={"X-Api-Key": "awd_whatever"})
    assert resp.status == 403


async def test_auth_unavailable_answers_503(api: Api) -> None:
    api.ctx.auth = None
    client: TestClient = api.client
    resp = await client.get("/api/queue/status")
    assert resp.status == 503
    resp = await client.post("/api/auth/login", json={"password": PASSWORD})
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "unavailable"


async def test_token_expiry_is_enforced_from_the_session_row(api: Api) -> None:
    """A token whose session row says it expired is refused even if its own exp claim were later."""
    await api.setup_and_login()
    jti = jwt.decode(api.token, options={"verify_signature": False})["jti"]
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)

    def expire() -> None:
        api.ctx.store.e.UserSession.get(jti=jti).expires_at = past

    api.ctx.store.run_sync(expire)
    api.ctx.auth._sessions.clear()  # as after a restart
    status, data = await api.call("GET", "/api/queue/status")
    assert status == 401 and data["error"]["code"] == "token_expired"


async def test_behind_a_trusted_proxy_the_limit_is_per_forwarded_client(api_factory) -> None:
    api = await api_factory(  # the peer is 127.0.0.1, trusted here (nobody is by default)
        "server:\n  trusted_proxies: [127.0.0.1]\nauth:\n  login_rate_limit: {attempts: 2, window: 300}\n"
    )
    await api.setup_and_login()
    mallory, alice = {"X-Forwarded-For": "198.51.100.66"}, {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(2):
        status, _ = await api.call("POST", "/api/auth/login", json={"password": "nope"}, headers=mallory)
        assert status == 401
    status, _ = await api.call("POST", "/api/auth/login", json={"password": PASSWORD}, headers=mallory)
    assert status == 429
    status, data = await api.call("POST", "/api/auth/login", json={"password": PASSWORD}, headers=alice)
    assert status == 200 and data["access_token"]


async def test_without_trusted_proxies_a_forged_header_does_not_dodge_the_limit(api_factory) -> None:
    api = await api_factory(
        "server:\n  trusted_proxies: []\nauth:\n  login_rate_limit: {attempts: 2, window: 300}\n"
    )
    await api.setup_and_login()
    for n in range(2):
        forged = {"X-Forwarded-For": f"198.51.100.{n}"}
        status, _ = await api.call("POST", "/api/auth/login", json={"password": "nope"}, headers=forged)
        assert status == 401
    fresh = {"X-Forwarded-For": "198.51.100.99"}
    status, _ = await api.call("POST", "/api/auth/login", json={"password": PASSWORD}, headers=fresh)
    assert status == 429
