"""An HTTPS front door that refuses clients whose TLS handshake does not look like Chrome's.

Models: Cloudflare (in front of aniworld.to, VOE, Vidara, ...) tells browsers from scripts by the TLS
ClientHello itself, before any HTTP is sent: Python's `ssl` (aiohttp, requests), plain curl and other
OpenSSL clients are refused, while Chrome, and curl_cffi impersonating Chrome, pass.  The clearest
mark of Chrome's hello is GREASE (RFC 8701): reserved values 0x0A0A, 0x1A1A, ... 0xFAFA that Chrome
mixes into its cipher suites, extensions and supported groups; OpenSSL never sends them.

How: an asyncio TCP server reads the first TLS record(s) up to the complete ClientHello, parses the
cipher suites, extensions, supported_groups and SNI, and

* when `state.tls_browser_only` is on and any of the three lists lacks a GREASE value, answers with a
  fatal TLS alert `handshake_failure` and closes (counted in `state.tls_refused`);
* otherwise pipes the bytes it read, and everything after, byte for byte to an internal TLS listener
  (the fake site's aiohttp app with the test certificate), so the TLS session is really between the
  client and that listener (counted in `state.tls_accepted`).

Every connection is logged in `state.tls_log` ({"sni", "accepted", "reason", "grease"}), so a test can
also check which SNI a client sent (e.g. the real name when it connects to a pinned address).  With
`tls_browser_only` off it is a plain HTTPS listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass, field

from .state import FakeSiteState
from .tcpserver import TcpService

log = logging.getLogger(__name__)

_HANDSHAKE = 22
_CLIENT_HELLO = 1
_EXT_SNI = 0x0000
_EXT_SUPPORTED_GROUPS = 0x000A
#: A fatal `handshake_failure` alert (TLS 1.2 record version, as servers send for a refused hello).
ALERT_HANDSHAKE_FAILURE = bytes([21, 3, 3, 0, 2, 2, 40])
_MAX_HELLO = 1 << 16


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE value: 0x?A?A with both bytes equal (0x0A0A, 0x1A1A, ..., 0xFAFA)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


@dataclass
class ClientHello:
    """What the gate looks at in a ClientHello."""

    cipher_suites: list[int] = field(default_factory=list)
    extensions: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    sni: str | None = None

    def grease(self) -> dict[str, bool]:
        return {
            "ciphers": any(map(is_grease, self.cipher_suites)),
            "extensions": any(map(is_grease, self.extensions)),
            "groups": any(map(is_grease, self.groups)),
        }

    def looks_like_chrome(self) -> tuple[bool, str]:
        missing = [part for part, present in self.grease().items() if not present]
        if missing:
            return False, "no GREASE in " + ", ".join(missing)
        return True, "GREASE present"


class HelloError(ValueError):
    """Not a TLS ClientHello we can read."""


def parse_client_hello(body: bytes) -> ClientHello:
    """Parse a ClientHello handshake body (after the 4-byte handshake header)."""
    hello = ClientHello()
    try:
        pos = 2 + 32  # legacy_version, random
        pos += 1 + body[pos]  # session id
        (n,) = struct.unpack_from("!H", body, pos)
        pos += 2
        hello.cipher_suites = [struct.unpack_from("!H", body, pos + i)[0] for i in range(0, n, 2)]
        pos += n
        pos += 1 + body[pos]  # compression methods
        if pos == len(body):
            return hello  # no extensions at all
        (ext_total,) = struct.unpack_from("!H", body, pos)
        pos += 2
        end = pos + ext_total
        while pos + 4 <= end:
            ext_type, ext_len = struct.unpack_from("!HH", body, pos)
            pos += 4
            data = body[pos : pos + ext_len]
            pos += ext_len
            hello.extensions.append(ext_type)
            if ext_type == _EXT_SUPPORTED_GROUPS and len(data) >= 2:
                (glen,) = struct.unpack_from("!H", data, 0)
                hello.groups = [struct.unpack_from("!H", data, 2 + i)[0] for i in range(0, glen - 1, 2)]
            elif ext_type == _EXT_SNI and len(data) >= 5:
                # server_name_list: len(2), then entries type(1) len(2) name
                if data[2] == 0:
                    (nlen,) = struct.unpack_from("!H", data, 3)
                    hello.sni = data[5 : 5 + nlen].decode("ascii", errors="replace")
    except (IndexError, struct.error) as exc:
        raise HelloError("truncated ClientHello") from exc
    return hello


async def read_client_hello(reader: asyncio.StreamReader) -> tuple[bytes, ClientHello]:
    """Read TLS records until the ClientHello is complete; return (raw bytes read, parsed hello)."""
    raw = b""
    handshake = b""
    while True:
        header = await reader.readexactly(5)
        raw += header
        content_type, _version, length = struct.unpack("!BHH", header)
        if content_type != _HANDSHAKE:
            raise HelloError(f"not a TLS handshake record (type {content_type})")
        fragment = await reader.readexactly(length)
        raw += fragment
        handshake += fragment
        if len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                raise HelloError("first handshake message is not a ClientHello")
            hs_len = int.from_bytes(handshake[1:4], "big")
            if hs_len > _MAX_HELLO:
                raise HelloError("ClientHello too large")
            if len(handshake) >= 4 + hs_len:
                return raw, parse_client_hello(handshake[4 : 4 + hs_len])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class TlsGate(TcpService):
    """`await gate.start()`, then clients connect to 127.0.0.1:`gate.port`; `await gate.stop()`."""

    def __init__(
        self,
        state: FakeSiteState,
        backend_port: int,
        backend_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.state = state
        self.backend = (backend_host, backend_port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = self.state
        try:
            raw, hello = await asyncio.wait_for(read_client_hello(reader), 10)
        except (HelloError, asyncio.IncompleteReadError, TimeoutError, ConnectionError) as exc:
            state.tls_refused += 1
            state.tls_log.append({"sni": None, "accepted": False, "reason": str(exc) or type(exc).__name__})
            return
        ok, reason = hello.looks_like_chrome()
        entry = {"sni": hello.sni, "accepted": True, "reason": reason, "grease": hello.grease()}
        if state.tls_browser_only and not ok:
            entry["accepted"] = False
            state.tls_refused += 1
            state.tls_log.append(entry)
            log.debug("TLS gate refused %s: %s", hello.sni, reason)
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(ALERT_HANDSHAKE_FAILURE)
                await writer.drain()
            return
        state.tls_accepted += 1
        state.tls_log.append(entry)
        try:
            b_reader, b_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            return
        try:
            b_writer.write(raw)
            await b_writer.drain()
            await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer))
        finally:
            b_writer.close()
            with contextlib.suppress(Exception):
                await b_writer.wait_closed()
