"""A local HTTP receiver for Apprise: what json://, form:// and ntfy:// (an ntfy-shaped server) deliver.

Apprise's own plugins do the HTTP; only the far end is ours, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from aiohttp import web


@dataclass
class Delivery:
    path: str
    kind: str  # json | form | ntfy
    title: str
    message: str
    fields: dict


@dataclass
class Receiver:
    port: int
    deliveries: list[Delivery] = field(default_factory=list)

    def url(self, scheme: str, path: str = "", auth: str = "") -> str:
        return f"{scheme}://{auth + '@' if auth else ''}127.0.0.1:{self.port}/{path}"

    def on(self, kind: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.kind == kind]


@contextlib.asynccontextmanager
async def apprise_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(0)

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            fields = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            kind = "form"
        else:
            fields = json.loads(raw or b"{}")
            kind = "ntfy" if "topic" in fields else "json"
        receiver.deliveries.append(
            Delivery(request.path, kind, fields.get("title", ""), fields.get("message", ""), fields)
        )
        if kind == "ntfy":  # what ntfy answers to a publish
            return web.json_response({"id": "abc", "time": 1, "event": "message", "topic": fields["topic"]})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = site._server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        await runner.cleanup()
