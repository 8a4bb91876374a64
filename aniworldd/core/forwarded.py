"""The client's address behind a reverse proxy.

Login attempts are limited per client address. Behind nginx or Caddy every request comes from the proxy,
so without this one stranger's wrong passwords would lock everybody out. `X-Forwarded-For` is believed
only from peers listed in `server.trusted_proxies` (anyone can send the header): the list is read from
the right, every hop that is a trusted proxy is skipped, and the first one that is not is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """`127.0.0.1`, `10.0.0.0/8`, `::1`; raises ValueError naming the bad entry."""
    nets = []
    for value in values:
        try:
            nets.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {value!r}") from None
    return nets


def _trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, networks: list[Network]) -> str:
    """The address a request really comes from (`peer` when it is not a trusted proxy)."""
    client = peer or "unknown"
    if not forwarded_for or not networks or not _trusted(client, networks):
        return client
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client  # a garbled entry: stop at the last proxy we trust
        client = hop
        if not _trusted(hop, networks):
            return hop
    return client
