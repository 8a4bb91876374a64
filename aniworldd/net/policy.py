"""Which addresses the daemon may fetch from: no loopback, link-local or private address unless the user
configured it.

Why: embed and media URLs come from the provider's pages and the hosters' answers, i.e. from strangers.
A page that points at `http://127.0.0.1:8080/...` or `http://192.168.1.1/...` would otherwise make the
daemon fetch from the NAS itself or the home network (and save the answer into the library).  Allowed
anyway: the addresses of the configured sites (and what their names resolve to), pinned and last-resort
addresses, the proxy, the DoH servers, FlareSolverr, and `provider.allow_private` networks.  The check
runs on the resolved address, which is then pinned for the connection, so a name cannot resolve to a
public address for the check and to a private one for the connect.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _host(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    try:
        return (urlsplit(url).hostname or "").lower() or None
    except ValueError:
        return None


class AddressPolicy:
    """Trusted host names and networks; everything else must resolve to public addresses only."""

    def __init__(self, trusted_hosts: Iterable[str] = (), networks: Iterable[str] = ()) -> None:
        self.trusted_hosts = {h.lower().strip("[]") for h in trusted_hosts if h}
        self.networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in networks]
        for host in list(self.trusted_hosts):
            try:
                self.networks.append(ipaddress.ip_network(host))
            except ValueError:
                pass

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], site_urls: Iterable[str]) -> AddressPolicy:
        """The `provider` section's own addresses are trusted; `allow_private` adds networks."""
        hosts: set[str] = set()
        for url in site_urls:
            if (host := _host(url)) is not None:
                hosts.add(host)
        for mapping in (cfg.get("resolve") or {}, cfg.get("last_resort") or {}):
            hosts |= {str(a) for a in mapping.values()}
        for server in cfg.get("doh_urls") or ():
            hosts.add(_host(server if isinstance(server, str) else server.get("url")) or "")
        for url in (cfg.get("proxy"), cfg.get("flaresolverr_url")):
            hosts.add(_host(url) or "")
        return cls({h for h in hosts if h}, cfg.get("allow_private") or ())

    def trusts_host(self, host: str) -> bool:
        return host.lower().strip("[]") in self.trusted_hosts

    def trust_addresses(self, addresses: Iterable[str]) -> None:
        """What a trusted name resolved to is trusted too (a look-alike site and its hosters share it)."""
        for text in addresses:
            try:
                self.networks.append(ipaddress.ip_network(text))
            except ValueError:
                continue

    def refusal(self, host: str, addresses: Iterable[str]) -> str | None:
        """Why a request to `host` resolving to `addresses` is refused, or None when it may go."""
        if self.trusts_host(host):
            return None
        for text in addresses:
            try:
                address = ipaddress.ip_address(text.strip("[]"))
            except ValueError:
                return f"{host}: unusable address {text!r}"
            if is_public(address) or any(address in net for net in self.networks):
                continue
            return (
                f"{host} resolves to {address}, a loopback/private/link-local address: refused "
                "(add it to provider.allow_private if you really mean it)"
            )
        return None
