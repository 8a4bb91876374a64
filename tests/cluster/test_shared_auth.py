"""Two AuthServices over two Stores on one PostgreSQL database and one data dir, each with its own
RedisLink: two processes of a cluster, with a real redis-server that can be stopped and restarted."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aniworldd.cluster import shared_auth
from aniworldd.cluster.redis_link import RedisLink
from aniworldd.db import Store
from aniworldd.services.auth_service import (
    AuthService,
    Identity,
    PasswordFile,
    RateLimited,
    Unauthorized,
    load_or_create_secret,
    load_secret,
)
from tests.cluster.conftest import RedisServer
from tests.conftest import free_port

PASSWORD = "correct horse battery"
WRONG = "wrong password!"


class Cluster:
    """Builds the "processes"; everything is closed after the test."""

    def __init__(self, pg_url: str, data_dir: Path) -> None:
        self.pg_url = pg_url
        self.data_dir = data_dir
        self.made: list[tuple[AuthService, Store, RedisLink | None]] = []

    async def process(self, redis_url: str | None, **kwargs) -> AuthService:
        store = Store(self.pg_url, self.data_dir)
        link = RedisLink(redis_url, prefix="awtest", node=f"node{len(self.made)}") if redis_url else None
        kwargs = {"login_attempts": 3, "login_window": 300.0, "login_global_attempts": 50, **kwargs}
        auth = AuthService(store, self.data_dir, bcrypt_rounds=4, link=link, **kwargs)
        await auth.start()
        self.made.append((auth, store, link))
        return auth

    async def close(self) -> None:
        for auth, store, link in self.made:
            await asyncio.wait_for(auth.close(), 30)  # a stop must never hang, with or without Redis
            if link is not None:
                await asyncio.wait_for(link.close(), 30)
            store.close()


@pytest.fixture
async def cluster(pg_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    made = Cluster(pg_url, tmp_path / "data")
    made.data_dir.mkdir()
    PasswordFile(made.data_dir).set_password(PASSWORD, rounds=4)  # set before the processes start
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask Redis again right after it failed, so a test does not depend on when the last failure was."""
    monkeypatch.setattr(shared_auth, "RETRY_INTERVAL", 0.0)
    monkeypatch.setattr(shared_auth, "LISTEN_RETRY", 0.1)


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await _result(check()):
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def _result(value: Awaitable[bool] | bool) -> bool:
    return await value if inspect.isawaitable(value) else value


async def fail_login(auth: AuthService, client: str) -> None:
    with pytest.raises(Unauthorized):
        await auth.login(WRONG, client)


async def refused(auth: AuthService, token: str) -> bool:
    try:
        await auth.verify_token(token)
    except Unauthorized as exc:
        assert exc.code == "token_revoked"
        return True
    return False


async def subscribed(*procs: AuthService) -> None:
    for auth in procs:
        assert auth.revocations is not None
        await asyncio.wait_for(auth.revocations.subscribed.wait(), 10)


# --- login limits ----------------------------------------------------------------------------------


async def test_failed_logins_in_one_process_count_in_the_other(cluster: Cluster, redis_server) -> None:
    a = await cluster.process(redis_server.url)
    b = await cluster.process(redis_server.url)

    await fail_login(a, "10.0.0.1")
    await fail_login(a, "10.0.0.1")
    await fail_login(b, "10.0.0.1")
    with pytest.raises(RateLimited) as caught:
        await b.login(PASSWORD, "10.0.0.1")  # even the right password: the client is over the limit
    assert caught.value.retry_after >= 1
    with pytest.raises(RateLimited):
        await a.login(PASSWORD, "10.0.0.1")
    assert b.shared_limiter is not None and await b.shared_limiter.retry_after("10.0.0.1") is not None
    # per client: another address logs in on either process
    assert (await b.login(PASSWORD, "10.0.0.2"))["access_token"]
    assert await b.shared_limiter.retry_after("10.0.0.2") is None


async def test_a_success_is_forgiven_everywhere(cluster: Cluster, redis_server) -> None:
    a = await cluster.process(redis_server.url)
    b = await cluster.process(redis_server.url)
    for _ in range(5):  # more correct logins than attempts: none of them counts
        await a.login(PASSWORD, "10.0.0.1")
    await fail_login(b, "10.0.0.1")
    await fail_login(a, "10.0.0.1")
    await b.login(PASSWORD, "10.0.0.1")
    await fail_login(b, "10.0.0.1")
    with pytest.raises(RateLimited):
        await a.login(PASSWORD, "10.0.0.1")


async def test_the_global_limit_spans_processes_and_addresses(cluster: Cluster, redis_server) -> None:
    a = await cluster.process(redis_server.url, login_global_attempts=4)
    b = await cluster.process(redis_server.url, login_global_attempts=4)
    await fail_login(a, "10.0.0.1")
    await fail_login(b, "10.0.0.2")
    await fail_login(a, "10.0.0.3")
    await fail_login(b, "10.0.0.4")
    with pytest.raises(RateLimited) as caught:
        await a.login(PASSWORD, "10.0.0.5")
    assert "on this server" in str(caught.value)
    # a refused attempt is not counted: the limit is not pushed further out by the refusals
    with pytest.raises(RateLimited):
        await b.login(PASSWORD, "10.0.0.6")
    assert len(a.limiter._global) == 2 and len(b.limiter._global) == 2


async def test_limits_survive_a_redis_restart(cluster: Cluster, redis_server: RedisServer) -> None:
    a = await cluster.process(redis_server.url)
    b = await cluster.process(redis_server.url)
    for _ in range(3):
        await fail_login(a, "10.0.0.1")

    redis_server.stop()
    # Redis away: every process still limits what it has seen, and nobody is locked out
    with pytest.raises(RateLimited):
        await a.login(PASSWORD, "10.0.0.1")
    for _ in range(3):
        await fail_login(b, "10.0.0.9")
    with pytest.raises(RateLimited):
        await b.login(PASSWORD, "10.0.0.9")
    assert (await b.login(PASSWORD, "10.0.0.2"))["access_token"]

    redis_server.start()  # empty: the restarted Redis forgot every count
    with pytest.raises(RateLimited):  # ... this process did not
        await a.login(PASSWORD, "10.0.0.1")
    # and new failures are shared again
    await fail_login(a, "10.0.0.3")
    await fail_login(b, "10.0.0.3")
    await fail_login(a, "10.0.0.3")
    with pytest.raises(RateLimited):
        await b.login(PASSWORD, "10.0.0.3")


async def test_without_redis_each_process_limits_alone(cluster: Cluster) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    a = await cluster.process(dead)
    b = await cluster.process(dead)
    plain = await cluster.process(None)
    for proc in (a, b, plain):
        for _ in range(3):
            await fail_login(proc, "10.0.0.1")
        with pytest.raises(RateLimited):
            await proc.login(PASSWORD, "10.0.0.1")
        assert (await proc.login(PASSWORD, "10.0.0.2"))["access_token"]
    assert plain.shared_limiter is None and plain.revocations is None


# --- revocation ------------------------------------------------------------------------------------


async def test_logout_in_one_process_is_refused_by_the_other(cluster: Cluster, redis_server) -> None:
    # trust the cache for an hour: only the channel can tell B
    a = await cluster.process(redis_server.url, session_trust=3600)
    b = await cluster.process(redis_server.url, session_trust=3600)
    await subscribed(a, b)
    token = (await a.login(PASSWORD, "10.0.0.1"))["access_token"]
    other = (await a.login(PASSWORD, "10.0.0.1"))["access_token"]
    identity = await b.verify_token(token)  # B has it cached now
    await b.verify_token(other)

    await a.logout(await a.verify_token(token))
    await eventually(lambda: refused(b, token))
    assert b.revoked_reason(identity) == "logged out"  # its WebSockets close too
    assert (await b.verify_token(other)).jti != identity.jti  # only that session


async def test_a_revoked_api_key_is_refused_by_the_other(cluster: Cluster, redis_server) -> None:
    a = await cluster.process(redis_server.url, session_trust=3600)
    b = await cluster.process(redis_server.url, session_trust=3600)
    await subscribed(a, b)
    made = await a.create_api_key("script", "control")
    identity = await b.verify_api_key(made["key"])
    await a.revoke_api_key(made["id"])

    async def key_refused() -> bool:
        try:
            await b.verify_api_key(made["key"])
        except Unauthorized:
            return True
        return False

    await eventually(key_refused)
    assert b.revoked_reason(identity) == "API key revoked"


async def test_revocation_while_redis_is_down_and_after(cluster: Cluster, redis_server: RedisServer) -> None:
    a = await cluster.process(redis_server.url, session_trust=0.2)
    b = await cluster.process(redis_server.url, session_trust=0.2)
    await subscribed(a, b)
    first = (await a.login(PASSWORD, "10.0.0.1"))["access_token"]
    second = (await a.login(PASSWORD, "10.0.0.1"))["access_token"]
    first_id = await b.verify_token(first)
    second_id = await b.verify_token(second)

    redis_server.stop()
    await a.logout(await a.verify_token(first))  # the announcement is lost
    # the WebSocket sweep, which never reads the database itself, learns it from the listener's re-sync
    await eventually(lambda: b.revoked_reason(first_id) == "logged out")
    assert await refused(b, first)
    # a request re-reads the row once the trust time is over, whatever the listener knows
    third = (await a.login(PASSWORD, "10.0.0.1"))["access_token"]
    await b.verify_token(third)
    channel = b.revocations
    heard, resync = channel.on_revoked, channel.resync
    channel.on_revoked, channel.resync = (lambda jti: None), (lambda: asyncio.sleep(0))  # deaf listener
    await a.logout(await a.verify_token(third))
    await eventually(lambda: refused(b, third))
    channel.on_revoked, channel.resync = heard, resync

    redis_server.start()
    await subscribed(a, b)
    b.session_trust = 3600.0  # from here on only the channel can tell B
    await a.logout(await a.verify_token(second))
    await eventually(lambda: refused(b, second))
    assert b.revoked_reason(second_id) == "logged out"


async def test_a_message_lost_during_an_outage_is_caught_up(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    """The trust time is the safety net for requests; the re-sync after re-subscribing is the one for the
    cache itself (and the WebSocket sweep that only reads the cache)."""
    a = await cluster.process(redis_server.url, session_trust=3600)
    b = await cluster.process(redis_server.url, session_trust=3600)
    await subscribed(a, b)
    token = (await a.login(PASSWORD, "10.0.0.1"))["access_token"]
    identity: Identity = await b.verify_token(token)

    redis_server.restart()
    # the logout may happen before B noticed the restart: its message is then lost, the re-sync catches up
    await a.logout(await a.verify_token(token))
    await eventually(lambda: refused(b, token))
    assert b.revoked_reason(identity) == "logged out"


async def test_a_password_change_in_one_process_ends_the_others_tokens(cluster: Cluster) -> None:
    a = await cluster.process(None)
    b = await cluster.process(None)
    token = (await a.login(PASSWORD, "10.0.0.1"))["access_token"]
    identity = await b.verify_token(token)
    await a._set_password("a new long password")  # what `aniworldd set-password` does to auth.json

    async def password_refused() -> bool:
        try:
            await b.verify_token(token)
        except Unauthorized as exc:
            return exc.code == "token_revoked"
        return False

    await eventually(password_refused)
    assert b.revoked_reason(identity) == "password changed"
    assert (await b.login("a new long password", "10.0.0.1"))["access_token"]


async def test_processes_issuing_their_first_tokens_at_once_agree_on_the_secret(cluster: Cluster) -> None:
    a = await cluster.process(None)
    b = await cluster.process(None)
    tokens = await asyncio.gather(*(p.login(PASSWORD, "10.0.0.1") for p in (a, b, a, b)))
    for token in tokens:  # every token works in both processes: one secret was written, the rest read it
        await a.verify_token(token["access_token"])
        await b.verify_token(token["access_token"])


def _first_token(folder: Path, barrier: threading.Barrier, got: list[bytes]) -> None:
    barrier.wait()
    got.append(load_or_create_secret(folder))


def test_a_secret_created_at_once_by_several_processes_is_one_secret(tmp_path: Path) -> None:
    """Threads behind a barrier stand in for processes: each must end up with the secret on disk."""
    for run in range(20):
        folder = tmp_path / str(run)
        folder.mkdir()
        barrier = threading.Barrier(4)
        got: list[bytes] = []
        workers = [threading.Thread(target=_first_token, args=(folder, barrier, got)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len(got) == 4 and set(got) == {load_secret(folder)}
