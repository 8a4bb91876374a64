"""A loopback TCP service for the look-alike's non-HTTP parts (the TLS gate, the proxies): started on a
free port, every connection's task tracked, so `stop()` ends them all and a test leaves nothing open."""

from __future__ import annotations

import asyncio
import contextlib


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


class TcpService:
    """`await service.start()`, clients connect to `host:port`, `await service.stop()`."""

    #: Seconds one connection may last (None: no limit).
    connection_timeout: float | None = None
    #: Errors a connection may end with quietly (a client that hangs up, a bad request).
    quiet_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self, port: int = 0):
        self._server = await asyncio.start_server(self._accept, self.host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await asyncio.wait_for(self._handle(reader, writer), self.connection_timeout)
        except self.quiet_errors:
            pass
        except asyncio.CancelledError:
            pass  # stop() cancels open connections; ending normally keeps 3.11's stream callback quiet
        finally:
            if task is not None:
                self._tasks.discard(task)
            await close_writer(writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
