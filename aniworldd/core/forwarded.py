"""The client's address behind a reverse proxy.

Login attempts are limited per client address. Behind nginx or Caddy every request comes from the proxy,
so without this one stranger's wrong passwords would lock everybody out. `X-Forwarded-For` is believed
only from peers listed in `server.trusted_proxies` (anyone can send the header): the list is read from
the right, every hop that is a trusted proxy is skipped, and the first one that is not is the client.
Nobody is trusted by default: a daemon reached directly would otherwise let every client pick its own
counter, and a proxy on the same host (127.0.0.1) is exactly what an attacker on that host can pretend to be.

Addresses are normalised before they are used as a counter key: `::ffff:192.0.2.1` is 192.0.2.1 and
`2001:DB8:0::1` is 2001:db8::1, so one client cannot get a fresh counter by spelling itself differently.
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


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address without brackets and zone (`[fe80::1%eth0]`), IPv4-mapped IPv6 as IPv4; None if garbled."""
    text = address.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def normalize_address(address: str | None) -> str:
    """One spelling per address (the counter key of the login limit); a non-address is kept as it is."""
    if not address:
        return "unknown"
    ip = _parse(address)
    return str(ip) if ip is not None else address


def _trusted(address: str, networks: list[Network]) -> bool:
    ip = _parse(address)
    return ip is not None and any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, networks: list[Network]) -> str:
    """The address a request really comes from (`peer` when it is not a trusted proxy), normalised."""
    client = peer or "unknown"
    if not forwarded_for or not networks or not _trusted(client, networks):
        return normalize_address(client)
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if _parse(hop) is None:
            return normalize_address(client)  # a garbled entry: stop at the last proxy we trust
        client = hop
        if not _trusted(hop, networks):
            return normalize_address(hop)
    return normalize_address(client)
