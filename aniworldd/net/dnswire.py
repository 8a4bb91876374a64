"""The little of the DNS wire format (RFC 1035) that DNS-over-HTTPS in RFC 8484 form needs: an A query
out, the A records (and their TTLs) back.  Hand-written because it is ~80 lines and the only other user
of a DNS library would be this file."""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_CNAME = 5
CLASS_IN = 1
RCODE_NXDOMAIN = 3


class DnsWireError(ValueError):
    """A DNS message that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    rtype: int
    ttl: int
    data: str


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not raw or len(raw) > 63:
            raise DnsWireError(f"invalid DNS name {name!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out + b"\x00")


def build_query(name: str, rtype: int = TYPE_A, *, qid: int | None = None) -> bytes:
    """A recursive query for one name.  RFC 8484 asks for id 0 (cache-friendly) over GET."""
    qid = secrets.randbelow(65536) if qid is None else qid
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", rtype, CLASS_IN)


def _read_name(msg: bytes, pos: int, depth: int = 0) -> tuple[str, int]:
    """(name, position after it); follows compression pointers (bounded, so a loop cannot hang us)."""
    labels: list[str] = []
    while True:
        if pos >= len(msg):
            raise DnsWireError("truncated name")
        length = msg[pos]
        if length == 0:
            return ".".join(labels), pos + 1
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(msg) or depth > 16:
                raise DnsWireError("bad compression pointer")
            target = ((length & 0x3F) << 8) | msg[pos + 1]
            rest, _ = _read_name(msg, target, depth + 1)
            labels.append(rest)
            return ".".join(x for x in labels if x), pos + 2
        pos += 1
        labels.append(msg[pos : pos + length].decode("ascii", errors="replace"))
        pos += length


def parse_response(msg: bytes) -> tuple[int, list[Record]]:
    """(rcode, answer records); A records carry a dotted IPv4 address as data."""
    if len(msg) < 12:
        raise DnsWireError("DNS message shorter than its header")
    _qid, flags, qdcount, ancount, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    rcode = flags & 0x000F
    pos = 12
    for _ in range(qdcount):
        _, pos = _read_name(msg, pos)
        pos += 4
    records: list[Record] = []
    for _ in range(ancount):
        name, pos = _read_name(msg, pos)
        if pos + 10 > len(msg):
            raise DnsWireError("truncated answer")
        rtype, _cls, ttl, rdlen = struct.unpack("!HHIH", msg[pos : pos + 10])
        pos += 10
        rdata = msg[pos : pos + rdlen]
        if len(rdata) != rdlen:
            raise DnsWireError("truncated record data")
        if rtype == TYPE_A and rdlen == 4:
            data = ".".join(str(b) for b in rdata)
        elif rtype == TYPE_CNAME:
            data, _ = _read_name(msg, pos)
        else:
            data = rdata.hex()
        records.append(Record(name, rtype, ttl, data))
        pos += rdlen
    return rcode, records
