"""An HTTP proxy (CONNECT tunnels and absolute-URI forwarding) and a SOCKS5 proxy for the tests.

Models: where DNS tricks do not help, users reach the sites through a proxy in another network
(`provider.proxy` = `http://`, `socks5://` or `socks5h://`, with or without user:password).  For
`https://` targets a client opens a tunnel (`CONNECT host:443` over HTTP, or SOCKS5 CONNECT);
for `http://` targets an HTTP proxy also takes the request with an absolute URI and forwards it.

* HTTP proxy: `CONNECT host:port` -> `200 Connection established` + a byte pipe; `GET http://h:p/x`
  -> forwarded (one request per connection, `Connection: close`).  With credentials configured, a
  missing or wrong `Proxy-Authorization: Basic ...` gets `407` + `Proxy-Authenticate`.
* SOCKS5 (RFC 1928): no-auth or username/password (RFC 1929) method, CONNECT with an IPv4, IPv6 or
  domain-name address.  `socks5://` clients resolve names themselves and send an address;
  `socks5h://` clients send the name, which the proxy resolves.

Names the proxies resolve go through the fake's own name table (`state.dns_names`) first, falling
back to the system resolver, so `socks5h://` and HTTP CONNECT work for the tests' `*.test` names.
Targets outside loopback are refused (HTTP 403, SOCKS5 reply 2 "not allowed by ruleset"): the tests
stay on this machine even when a client (or a browser behind FlareSolverr) asks for the internet.
Every connection is logged (`proxy.log`: (host, port) as the client named it; `state.proxy_log`:
dicts with "proxy", "host", "port", "user", "ok"), so tests can prove traffic went through.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
import struct
from urllib.parse import urlsplit

from .state import FakeSiteState
from .tcpserver import TcpService, close_writer


def resolve(state: FakeSiteState | None, host: str) -> str:
    """The fake's name table first (`state.dns_names`), else the name as is (system resolver)."""
    if state is not None:
        mapped = state.dns_names.get(host.lower().rstrip("."))
        if mapped:
            return mapped
    return host


class NotAllowed(OSError):
    """The target is not on loopback."""


async def _loopback_address(state: FakeSiteState | None, host: str) -> str:
    """Resolve `host` (fake table, then system) and insist on a loopback address."""
    address = resolve(state, host)
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(address, None, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"cannot resolve {host}") from None
        ip = ipaddress.ip_address(infos[0][4][0])
    if not ip.is_loopback:
        raise NotAllowed(f"{host} ({ip}) is not on loopback")
    return str(ip)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class _Server(TcpService):
    """Shared start/stop and connection bookkeeping of both proxies."""

    kind = "proxy"
    scheme = "http"
    connection_timeout = 300.0
    quiet_errors = (asyncio.IncompleteReadError, ConnectionError, OSError, TimeoutError, ValueError)

    def __init__(
        self, state: FakeSiteState | None = None, auth: tuple[str, str] | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(host)
        self.state = state
        self.auth = auth
        #: (host, port) of every tunnel/forward requested, as the client named the target.
        self.log: list[tuple[str, int]] = []

    @property
    def url(self) -> str:
        """Proxy URL for clients, with the credentials when auth is on."""
        creds = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"{self.scheme}://{creds}{self.host}:{self.port}"

    def _record(self, host: str, port: int, user: str | None, ok: bool) -> None:
        self.log.append((host, port))
        if self.state is not None:
            self.state.proxy_log.append(
                {"proxy": self.kind, "host": host, "port": port, "user": user, "ok": ok}
            )

    async def _connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        address = await _loopback_address(self.state, host)
        return await asyncio.wait_for(asyncio.open_connection(address, port), 10)


class HttpProxy(_Server):
    """HTTP proxy: CONNECT tunnels and absolute-URI forwarding; optional Basic auth (407)."""

    kind = "http"
    scheme = "http"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers.append((name.strip(), value.strip()))
        user = self._check_auth(headers)
        if user is False:
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="fakesite proxy"\r\n'
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        user_name = user if isinstance(user, str) else None
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host = host.strip("[]")
            port = int(port_text)
            try:
                b_reader, b_writer = await self._connect(host, port)
            except (OSError, TimeoutError) as exc:
                self._record(host, port, user_name, False)
                await self._refuse(writer, exc)
                return
            self._record(host, port, user_name, True)
            writer.write(f"{version} 200 Connection established\r\n\r\n".encode("latin-1"))
            await writer.drain()
            try:
                await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer))
            finally:
                await close_writer(b_writer)
            return
        await self._forward(method, target, version, headers, user_name, reader, writer)

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, exc: BaseException) -> None:
        status = b"403 Forbidden" if isinstance(exc, NotAllowed) else b"502 Bad Gateway"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    def _check_auth(self, headers: list[tuple[str, str]]) -> str | bool | None:
        """None when no auth is configured, the user name when the credentials match, else False."""
        if self.auth is None:
            return None
        for name, value in headers:
            if name.lower() == "proxy-authorization" and value[:6].lower() == "basic ":
                try:
                    decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    return False
                user, _, password = decoded.partition(":")
                return user if (user, password) == self.auth else False
        return False

    async def _forward(
        self,
        method: str,
        target: str,
        version: str,
        headers: list[tuple[str, str]],
        user: str | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        port = url.port or 80
        try:
            b_reader, b_writer = await self._connect(url.hostname, port)
        except (OSError, TimeoutError) as exc:
            self._record(url.hostname, port, user, False)
            await self._refuse(writer, exc)
            return
        self._record(url.hostname, port, user, True)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        drop = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}
        out = [f"{method} {path} {version}"]
        out += [f"{n}: {v}" for n, v in headers if n.lower() not in drop]
        out += ["Connection: close", "", ""]
        b_writer.write("\r\n".join(out).encode("latin-1"))
        length = next((int(v) for n, v in headers if n.lower() == "content-length"), 0)
        if length:
            b_writer.write(await reader.readexactly(length))
        await b_writer.drain()
        try:
            await _pipe(b_reader, writer)
        finally:
            await close_writer(b_writer)


class Socks5Proxy(_Server):
    """SOCKS5 (RFC 1928) with CONNECT, IPv4/IPv6/domain addresses, optional RFC 1929 auth."""

    kind = "socks5"
    scheme = "socks5"

    @property
    def url_h(self) -> str:
        """The same proxy as a `socks5h://` URL (the client sends names, the proxy resolves them)."""
        return "socks5h" + self.url[len("socks5") :]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, n_methods = await reader.readexactly(2)
        if version != 5:
            return
        methods = await reader.readexactly(n_methods)
        wanted = 0x02 if self.auth else 0x00
        if wanted not in methods:
            writer.write(b"\x05\xff")
            await writer.drain()
            if self.auth:
                self._record("-", 0, None, False)
            return
        writer.write(bytes([5, wanted]))
        await writer.drain()
        user: str | None = None
        if self.auth:
            ver, ulen = await reader.readexactly(2)
            name = (await reader.readexactly(ulen)).decode("utf-8", errors="replace")
            (plen,) = await reader.readexactly(1)
            password = (await reader.readexactly(plen)).decode("utf-8", errors="replace")
            if ver != 1 or (name, password) != self.auth:
                writer.write(b"\x01\x01")
                await writer.drain()
                self._record("-", 0, name, False)
                return
            writer.write(b"\x01\x00")
            await writer.drain()
            user = name
        ver, cmd, _rsv, atyp = await reader.readexactly(4)
        if atyp == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif atyp == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        elif atyp == 3:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode("ascii", errors="replace")
        else:
            await self._reply(writer, 8)  # address type not supported
            return
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if ver != 5 or cmd != 1:
            await self._reply(writer, 7)  # command not supported
            return
        try:
            b_reader, b_writer = await self._connect(host, port)
        except NotAllowed:
            self._record(host, port, user, False)
            await self._reply(writer, 2)  # connection not allowed by ruleset
            return
        except ConnectionRefusedError:
            self._record(host, port, user, False)
            await self._reply(writer, 5)
            return
        except (OSError, TimeoutError):
            self._record(host, port, user, False)
            await self._reply(writer, 4)  # host unreachable
            return
        self._record(host, port, user, True)
        await self._reply(writer, 0)
        try:
            await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer))
        finally:
            await close_writer(b_writer)

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, code: int) -> None:
        writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
        await writer.drain()
