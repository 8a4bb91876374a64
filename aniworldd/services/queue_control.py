"""The queue's stopped/paused state on disk, so a restart keeps what the user (or Home Assistant) chose.

Without it the queue came back running after every restart and the HA "Queue paused" switch flipped back
on its own. The file only exists once somebody started, stopped, paused or resumed the queue: until then
`downloads.autostart` decides (the first start of a fresh install); afterwards the last choice wins.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from aniworldd.fileio import atomic_write

log = logging.getLogger(__name__)

CONTROL_FILE = "queue_control.json"


@dataclass(frozen=True, slots=True)
class ControlState:
    running: bool
    paused: bool


class ControlStore:
    """Load/save data_dir/queue_control.json (`{"running": bool, "paused": bool}`)."""

    def __init__(self, data_dir: str | Path | None) -> None:
        # No data dir (a bare test config): nothing is persisted and autostart always decides.
        self.path = Path(data_dir) / CONTROL_FILE if data_dir else None

    def load(self) -> ControlState | None:
        """The saved state, or None before the first control command (or when the file is unreadable)."""
        if self.path is None:
            return None
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s (downloads.autostart decides): %s", self.path, exc)
            return None
        if not isinstance(doc, dict) or not all(isinstance(doc.get(k), bool) for k in ("running", "paused")):
            log.warning("ignoring malformed %s (downloads.autostart decides)", self.path)
            return None
        return ControlState(doc["running"], doc["paused"])

    def save(self, state: ControlState) -> None:
        if self.path is None:
            return
        try:
            atomic_write(self.path, json.dumps({"running": state.running, "paused": state.paused}) + "\n")
        except OSError as exc:  # a full or read-only data dir must not break the queue command itself
            log.warning("cannot save %s: %s", self.path, exc)
