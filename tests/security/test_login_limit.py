"""Issue 16 item 9: the login limit cannot be dodged with X-Forwarded-For or address spellings.

The attacks: 40 guesses from 127.0.0.1 with a different `X-Forwarded-For` each got no 429 (loopback was a
trusted proxy by default); one IPv6 client spelling its address differently got a fresh counter each time;
an attacker behind a real trusted proxy can still vary the forwarded address at will. Now nobody is trusted
by default, addresses are normalised before they are counted, and a global limit caps failed logins across
all clients.
"""

from __future__ import annotations

from aniworldd.config import load_text
from aniworldd.core.forwarded import client_address, normalize_address, parse_networks
from tests.api.conftest import PASSWORD, Api


async def _login(api: Api, password: str, xff: str | None = None) -> int:
    headers = {"X-Forwarded-For": xff} if xff else {}
    status, _ = await api.call("POST", "/api/auth/login", json={"password": password}, headers=headers)
    return status


def test_no_proxy_is_trusted_by_default(tmp_path) -> None:
    cfg = load_text("", "config.yaml", env={}, base_dir=tmp_path)
    assert cfg["server"]["trusted_proxies"] == []
    assert cfg["auth"]["login_rate_limit"]["global_attempts"] == 50


async def test_varying_x_forwarded_for_from_loopback_does_not_reset_the_limit(api: Api) -> None:
    await api.setup_and_login()
    statuses = [await _login(api, "wrong password", f"198.51.100.{n}") for n in range(8)]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    assert await _login(api, PASSWORD, "203.0.113.1") == 429  # the peer is the one counted


async def test_spellings_of_one_address_share_a_counter(api_factory) -> None:
    api = await api_factory(
        "server:\n  trusted_proxies: [127.0.0.1]\nauth:\n  login_rate_limit: {attempts: 3, window: 300}\n"
    )
    await api.setup_and_login()
    spellings = ["2001:db8::7", "2001:DB8:0:0:0:0:0:7", "2001:0db8::0:7"]
    assert [await _login(api, "wrong password", s) for s in spellings] == [401, 401, 401]
    assert await _login(api, PASSWORD, "2001:db8:0000::7") == 429
    mapped = ["198.51.100.9", "::ffff:198.51.100.9", "::FFFF:c633:6409"]
    assert [await _login(api, "wrong password", s) for s in mapped] == [401, 401, 401]
    assert await _login(api, PASSWORD, "198.51.100.9") == 429


async def test_a_global_limit_caps_failed_logins_across_all_clients(api_factory) -> None:
    api = await api_factory(
        "server:\n  trusted_proxies: [127.0.0.1]\n"
        "auth:\n  login_rate_limit: {attempts: 5, window: 300, global_attempts: 12}\n"
    )
    await api.setup_and_login()
    statuses = [await _login(api, "wrong password", f"198.51.100.{n}") for n in range(20)]
    assert statuses[:12] == [401] * 12
    assert set(statuses[12:]) == {429}
    # a client never seen before is refused while the global window is full
    assert await _login(api, PASSWORD, "203.0.113.77") == 429


async def test_the_default_global_limit_holds_against_rotating_addresses(api_factory) -> None:
    api = await api_factory("server:\n  trusted_proxies: [127.0.0.1]\n")
    await api.setup_and_login()
    statuses = [await _login(api, "wrong password", f"10.0.{n // 250}.{n % 250}") for n in range(55)]
    assert statuses.count(401) == 50 and set(statuses[50:]) == {429}


def test_addresses_are_normalised() -> None:
    assert normalize_address("::ffff:192.0.2.1") == "192.0.2.1"
    assert normalize_address("2001:DB8:0:0::1") == "2001:db8::1"
    assert normalize_address("fe80::1%eth0") == "fe80::1"
    assert normalize_address("[2001:db8::1]") == "2001:db8::1"
    assert normalize_address("not an address") == "not an address"
    assert normalize_address(None) == "unknown"
    nets = parse_networks(["127.0.0.1"])
    assert client_address("::ffff:127.0.0.1", "2001:DB8::0:5", nets) == "2001:db8::5"
    assert client_address("::ffff:203.0.113.9", None, nets) == "203.0.113.9"
