"""Who the client is behind a reverse proxy: X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import pytest

from aniworldd.config import ConfigError, load_text
from aniworldd.core.forwarded import client_address, parse_networks

LOCAL = parse_networks(["127.0.0.1", "::1"])
DOCKER = parse_networks(["127.0.0.1", "172.16.0.0/12"])


def test_a_direct_client_is_its_peer_address_whatever_it_claims():
    assert client_address("203.0.113.9", "198.51.100.1", LOCAL) == "203.0.113.9"
    assert client_address("203.0.113.9", None, LOCAL) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_forwarded_client_counts():
    assert client_address("127.0.0.1", "198.51.100.1", LOCAL) == "198.51.100.1"
    assert client_address("::1", "2001:db8::5", LOCAL) == "2001:db8::5"
    assert client_address("::ffff:127.0.0.1", "198.51.100.1", LOCAL) == "198.51.100.1"


def test_only_the_hops_our_proxies_added_are_believed():
    # the client sent its own X-Forwarded-For "1.2.3.4"; nginx appended the real address
    assert client_address("127.0.0.1", "1.2.3.4, 198.51.100.1", LOCAL) == "198.51.100.1"
    # two proxies of ours (Caddy in Docker in front of nginx on the host)
    assert client_address("127.0.0.1", "198.51.100.1, 172.18.0.2", DOCKER) == "198.51.100.1"


def test_garbled_or_empty_headers_fall_back_to_the_last_trusted_hop():
    assert client_address("127.0.0.1", "not-an-ip", LOCAL) == "127.0.0.1"
    assert client_address("127.0.0.1", "198.51.100.1, junk", LOCAL) == "127.0.0.1"
    assert client_address("127.0.0.1", "", LOCAL) == "127.0.0.1"
    assert client_address("127.0.0.1", "172.18.0.2", DOCKER) == "172.18.0.2"  # all trusted: the first one


def test_no_trusted_proxies_means_the_header_is_ignored():
    assert client_address("127.0.0.1", "198.51.100.1", []) == "127.0.0.1"
    assert client_address(None, None, LOCAL) == "unknown"


def test_config_default_and_bad_entries(tmp_path):
    cfg = load_text("", "config.yaml", env={}, base_dir=tmp_path)
    assert cfg["server"]["trusted_proxies"] == []  # nobody by default (issue 16 item 9)
    ok = load_text("server: {trusted_proxies: [10.0.0.0/8, 'fd00::/8']}", "c.yaml", env={}, base_dir=tmp_path)
    assert ok["server"]["trusted_proxies"] == ["10.0.0.0/8", "fd00::/8"]
    with pytest.raises(ConfigError, match=r"server.trusted_proxies.*'nginx'"):
        load_text("server: {trusted_proxies: [nginx]}", "c.yaml", env={}, base_dir=tmp_path)
