"""A DNS-over-HTTPS endpoint (`/dns-query`) on the look-alike site.

Models: German ISPs answer aniworld.to / serienstream.to wrongly at DNS (CUII blocks); users get around
it with DoH (Cloudflare's `https://1.1.1.1/dns-query`, Quad9's ...).  In the tests the site names are
`*.test` names the system resolver cannot resolve (RFC 6761 reserves `.test`), and only this endpoint
knows them: answers come from `state.dns_names` (name -> IPv4) with TTL `state.dns_ttl`, unknown
names get NXDOMAIN.  Both DoH forms real resolvers offer are served, as Cloudflare does:

* JSON: `GET /dns-query?name=<name>&type=A` (Accept: application/dns-json) ->
  `{"Status": 0, "Answer": [{"name", "type": 1, "TTL", "data"}]}`, `Status` 3 = NXDOMAIN.
* RFC 8484 wire format: `GET /dns-query?dns=<base64url query, no padding>` or `POST` with
  `Content-Type: application/dns-message`; the answer is a DNS message (application/dns-message).

Every query is counted per name (`state.dns_queries`) and logged (`state.dns_log`) so tests can assert
that a client caches answers for their TTL.  The DNS message code here is deliberately our own minimal
parser/builder: the daemon has its own, and the two must not share code (a shared bug would pass).
Bad queries answer 400 with a short reason, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import struct

from aiohttp import web

from .state import FakeSiteState

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
_TYPE_NAMES = {"A": TYPE_A, "AAAA": TYPE_AAAA, "CNAME": 5, "NS": 2, "MX": 15, "TXT": 16}


class DnsFormatError(ValueError):
    """The query is not a DNS message we can read."""


def _read_name(msg: bytes, offset: int) -> tuple[str, int]:
    """Labels starting at `offset` (compression pointers allowed) -> (name, offset after it)."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if offset >= len(msg):
            raise DnsFormatError("name runs past the end of the message")
        length = msg[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(msg) or jumps > 16:
                raise DnsFormatError("bad compression pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | msg[offset + 1]
            jumps += 1
            continue
        if length & 0xC0:
            raise DnsFormatError("bad label length")
        offset += 1
        if length == 0:
            break
        if offset + length > len(msg):
            raise DnsFormatError("label runs past the end of the message")
        labels.append(msg[offset : offset + length].decode("ascii", errors="strict"))
        offset += length
    return ".".join(labels), (end if end is not None else offset)


def parse_query(msg: bytes) -> tuple[int, int, str, int, int]:
    """A DNS query -> (id, flags, name, qtype, qclass) of its first question."""
    if len(msg) < 12:
        raise DnsFormatError("shorter than a DNS header")
    ident, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if flags & 0x8000:
        raise DnsFormatError("this is a response, not a query")
    if qdcount < 1:
        raise DnsFormatError("no question")
    try:
        name, offset = _read_name(msg, 12)
    except UnicodeDecodeError as exc:
        raise DnsFormatError("name is not ASCII") from exc
    if offset + 4 > len(msg):
        raise DnsFormatError("question is cut short")
    qtype, qclass = struct.unpack("!HH", msg[offset : offset + 4])
    return ident, flags, name, qtype, qclass


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def build_response(
    ident: int,
    query_flags: int,
    name: str,
    qtype: int,
    qclass: int,
    rcode: int,
    addresses: list[str],
    ttl: int,
) -> bytes:
    """A response echoing the question, with one A record per address (name compressed to offset 12)."""
    rd = query_flags & 0x0100
    flags = 0x8000 | (query_flags & 0x7800) | rd | 0x0080 | (rcode & 0x0F)  # QR, opcode, RD, RA, RCODE
    header = struct.pack("!HHHHHH", ident, flags, 1, len(addresses), 0, 0)
    question = _encode_name(name) + struct.pack("!HH", qtype, qclass)
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, ttl, 4) + ipaddress.IPv4Address(a).packed
        for a in addresses
    )
    return header + question + answers


def lookup(state: FakeSiteState, name: str, qtype: int) -> tuple[int, list[str]]:
    """(rcode, addresses) for a question; counts the query.  Only A records exist in the table."""
    key = name.lower().rstrip(".")
    state.dns_queries[key] = state.dns_queries.get(key, 0) + 1
    address = state.dns_names.get(key)
    if address is None:
        return RCODE_NXDOMAIN, []
    return RCODE_NOERROR, ([address] if qtype == TYPE_A else [])


def _bad(reason: str) -> web.Response:
    return web.Response(status=400, text=f"bad DNS query: {reason}\n", content_type="text/plain")


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def dns_query(state: FakeSiteState, request: web.Request) -> web.Response:
    """`/dns-query`, JSON or wire form (decided by the `name` / `dns` parameter or the POST body)."""
    if not state.doh_enabled:
        return web.Response(status=503, text="DoH resolver unavailable\n", content_type="text/plain")
    if request.method == "GET" and "name" in request.query:
        return _json_answer(state, request)
    if request.method == "GET":
        raw = request.query.get("dns")
        if not raw:
            return _bad("needs ?name= (JSON) or ?dns= (RFC 8484)")
        try:
            msg = _b64url(raw)
        except (binascii.Error, ValueError):
            return _bad("dns= is not base64url")
    else:
        if request.content_type != "application/dns-message":
            return web.Response(
                status=415,
                text="POST needs Content-Type: application/dns-message\n",
                content_type="text/plain",
            )
        msg = await request.read()
    try:
        ident, flags, name, qtype, qclass = parse_query(msg)
    except DnsFormatError as exc:
        return _bad(str(exc))
    rcode, addresses = lookup(state, name, qtype)
    state.dns_log.append(
        {
            "name": name.lower().rstrip("."),
            "type": qtype,
            "form": "wire",
            "method": request.method,
            "rcode": rcode,
        }
    )
    body = build_response(ident, flags, name, qtype, qclass, rcode, addresses, state.dns_ttl)
    return web.Response(
        body=body,
        content_type="application/dns-message",
        headers={"Cache-Control": f"max-age={state.dns_ttl}"},
    )


def _json_answer(state: FakeSiteState, request: web.Request) -> web.Response:
    name = request.query.get("name", "").strip()
    type_arg = request.query.get("type", "A").strip().upper()
    qtype = int(type_arg) if type_arg.isdigit() else _TYPE_NAMES.get(type_arg)
    if not name or qtype is None or len(name) > 253:
        return _bad("name= must be a host name and type= a record type")
    rcode, addresses = lookup(state, name, qtype)
    clean = name.rstrip(".")
    state.dns_log.append(
        {"name": clean.lower(), "type": qtype, "form": "json", "method": request.method, "rcode": rcode}
    )
    answer: dict[str, object] = {
        "Status": rcode,
        "TC": False,
        "RD": True,
        "RA": True,
        "AD": False,
        "CD": False,
        "Question": [{"name": clean, "type": qtype}],
    }
    if addresses:
        answer["Answer"] = [
            {"name": clean, "type": TYPE_A, "TTL": state.dns_ttl, "data": a} for a in addresses
        ]
    return web.Response(
        text=json.dumps(answer),
        content_type="application/dns-json",
        headers={"Cache-Control": f"max-age={state.dns_ttl}"},
    )


def add_doh_routes(app: web.Application, state: FakeSiteState) -> None:
    """Serve `/dns-query` (GET and POST) from `state.dns_names`."""

    async def handler(request: web.Request) -> web.Response:
        return await dns_query(state, request)

    app.router.add_get("/dns-query", handler)
    app.router.add_post("/dns-query", handler)
