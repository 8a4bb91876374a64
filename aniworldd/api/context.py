"""What the web layer is given: the services, passed in explicitly by the composition root."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aniworldd.db import Store
from aniworldd.events import EventBus


@dataclass
class AppContext:
    config: dict
    store: Store
    bus: EventBus
    config_path: Path | None = None
    started_at: float = field(default_factory=time.monotonic)
    # Services; None while a component is not configured (the routes answer 503 then).
    series: Any = None  # db.services.AnimeSeriesService
    anime: Any = None  # services.anime_service.AnimeService
    scan: Any = None  # services.scan_service.ScanService
    library: Any = None  # services.library_service.LibraryService
    queue: Any = None  # services.download_service.DownloadService
    auth: Any = None  # services.auth_service.AuthService
    config_service: Any = None  # services.config_service.ConfigService
    mqtt: Any = None  # mqtt bridge (for status)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_at, 3)
