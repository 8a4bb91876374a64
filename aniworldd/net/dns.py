"""Name resolution for site and hoster requests: the system resolver, or DNS-over-HTTPS.

Why DoH: German ISPs answer the provider names wrongly (CUII blocks).  A DoH server is reached by its
IP address (`https://1.1.1.1/dns-query`), so asking it needs no DNS at all; its answers are cached for
their TTL.  Both DoH forms are spoken: RFC 8484 wire format (the standard, every public server) and
the JSON form (`application/dns-json`, Cloudflare and Google).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from .dnswire import RCODE_NXDOMAIN, TYPE_A, DnsWireError, build_query, parse_response

log = logging.getLogger(__name__)

#: Cloudflare and Quad9, by address so that asking them needs no DNS (both speak RFC 8484).
DEFAULT_DOH_URLS = ("https://1.1.1.1/dns-query", "https://9.9.9.9/dns-query")
DOH_FORMATS = ("wire", "json")
#: TTLs outside this range are clamped: a 0 s TTL would mean a DoH round trip per request.
MIN_TTL, MAX_TTL = 30.0, 86400.0
NEGATIVE_TTL = 30.0


class DnsError(Exception):
    """A name could not be resolved; `reason` says why (NXDOMAIN, every DoH server failed, ...)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"cannot resolve {host}: {reason}")
        self.host = host
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DohServer:
    url: str
    format: str = "wire"

    @classmethod
    def parse(cls, item: str | Mapping[str, str]) -> DohServer:
        if isinstance(item, str):
            return cls(item)
        return cls(str(item["url"]), str(item.get("format") or "wire"))


#: (method, url, headers, body) -> (status, body bytes); the transport's raw fetch, no DNS needed.
RawFetch = Callable[[str, str, Mapping[str, str], bytes | None], Awaitable[tuple[int, bytes]]]


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class SystemResolver:
    """The operating system's resolver (what a plain program gets: possibly the ISP's blocked answer)."""

    name = "system"

    async def resolve(self, host: str) -> list[str]:
        if is_address(host):
            return [host.strip("[]")]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise DnsError(host, f"system resolver: {exc.strerror or exc}") from None
        return list(dict.fromkeys(info[4][0] for info in infos))


class DohResolver:
    """DNS-over-HTTPS with a TTL cache; servers tried in order, the first good answer wins."""

    name = "doh"

    def __init__(
        self,
        servers: Sequence[str | Mapping[str, str] | DohServer],
        fetch: RawFetch,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = [s if isinstance(s, DohServer) else DohServer.parse(s) for s in servers]
        if not self.servers:
            raise ValueError("DoH needs at least one server URL")
        self._fetch = fetch
        self._clock = clock
        self._cache: dict[str, tuple[float, list[str] | None, str]] = {}
        self._inflight: dict[str, asyncio.Future[list[str]]] = {}
        self.queries = 0

    def forget(self, host: str | None = None) -> None:
        if host is None:
            self._cache.clear()
        else:
            self._cache.pop(host.lower(), None)

    async def resolve(self, host: str) -> list[str]:
        if is_address(host):
            return [host.strip("[]")]
        key = host.lower().rstrip(".")
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self._clock():
            if hit[1] is None:
                raise DnsError(host, hit[2])
            return hit[1]
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(key))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _f, k=key: self._inflight.pop(k, None))
        return await asyncio.shield(pending)

    async def _lookup(self, host: str) -> list[str]:
        errors: list[str] = []
        for server in self.servers:
            self.queries += 1
            try:
                nxdomain, addresses, ttl = await self._ask(server, host)
            except (OSError, DnsWireError, ValueError, KeyError, TypeError) as exc:
                errors.append(f"{server.url}: {exc}")
                continue
            except Exception as exc:  # the transport's own errors (curl_cffi): one server down
                errors.append(f"{server.url}: {exc.__class__.__name__}: {exc}")
                continue
            if nxdomain:
                reason = f"no such name (NXDOMAIN from {server.url})"
                self._cache[host] = (self._clock() + NEGATIVE_TTL, None, reason)
                raise DnsError(host, reason)
            if not addresses:
                errors.append(f"{server.url}: no A record")
                continue
            ttl = min(max(float(ttl), MIN_TTL), MAX_TTL)
            self._cache[host] = (self._clock() + ttl, addresses, "")
            return addresses
        raise DnsError(host, "DNS-over-HTTPS failed: " + "; ".join(errors))

    async def _ask(self, server: DohServer, host: str) -> tuple[bool, list[str], float]:
        """(NXDOMAIN?, IPv4 addresses, TTL) from one server."""
        sep = "&" if "?" in server.url else "?"
        if server.format == "json":
            url = server.url + sep + urlencode({"name": host, "type": "A"})
            status, body = await self._fetch("GET", url, {"Accept": "application/dns-json"}, None)
            if status != 200:
                raise OSError(f"HTTP {status}")
            data = json.loads(body)
            if int(data.get("Status", 2)) == RCODE_NXDOMAIN:
                return True, [], 0
            answers = [a for a in data.get("Answer") or [] if int(a.get("type", 0)) == TYPE_A]
            addresses = [str(a["data"]) for a in answers if is_address(str(a["data"]))]
            ttl = min((float(a.get("TTL", MIN_TTL)) for a in answers), default=MIN_TTL)
            return False, addresses, ttl
        query = base64.urlsafe_b64encode(build_query(host, qid=0)).rstrip(b"=").decode()
        status, body = await self._fetch(
            "GET", server.url + sep + "dns=" + query, {"Accept": "application/dns-message"}, None
        )
        if status != 200:
            raise OSError(f"HTTP {status}")
        rcode, records = parse_response(body)
        if rcode == RCODE_NXDOMAIN:
            return True, [], 0
        if rcode != 0:
            raise OSError(f"DNS error code {rcode}")
        a_records = [r for r in records if r.rtype == TYPE_A]
        ttl = min((r.ttl for r in a_records), default=MIN_TTL)
        return False, [r.data for r in a_records], ttl
