"""What the bridge needs from the rest of the daemon, as structural types.

The bridge is only an adapter: it mirrors bus events to MQTT and turns MQTT requests into calls on these
two small interfaces. The real DownloadService and ScanService satisfy them by name; tests may pass
anything with the same methods.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class QueueControl(Protocol):
    """The slice of DownloadService the bridge drives (method names are the COMMON.md contract)."""

    async def start(self) -> Any: ...

    async def stop(self) -> Any: ...

    async def pause(self) -> Any: ...

    async def resume(self) -> Any: ...

    async def retry(self, item_ids: list[int] | None = None) -> Any: ...

    async def clear_completed(self) -> Any: ...

    async def add(
        self,
        key: str,
        episodes: list[tuple[int, int]] | list[dict],
        priority: str = "normal",
        language: str | None = None,
    ) -> list[dict]: ...

    async def status(self) -> dict: ...


@runtime_checkable
class ScanControl(Protocol):
    """The slice of ScanService the bridge drives."""

    def request_scan(self, keys: list[str] | None = None) -> Any: ...

    def state(self) -> dict: ...
