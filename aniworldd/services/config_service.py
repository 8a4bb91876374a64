"""Reading, validating and saving the user's YAML file, with backups.

A save is atomic (temp file + fsync + rename) and the previous file is kept as a timestamped backup, so a
bad edit through the API or UI can always be undone and a crash mid-write never leaves a truncated config.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from aniworldd.config import (
    LIVE_KEYS,
    ConfigError,
    ConfigIssue,
    changed_keys,
    load_config,
    load_text,
    parse_yaml,
    validate_document,
)
from aniworldd.events import CONFIG_CHANGED, EventBus
from aniworldd.fileio import atomic_write
from aniworldd.services.errors import BadRequest, NotFound

BACKUPS_KEPT = 20
BACKUP_NAME_RE = re.compile(r"^config-\d{8}T\d{6}\d{6}Z\.yaml$")


class ConfigService:
    def __init__(
        self,
        path: Path | None,
        data_dir: Path,
        bus: EventBus | None = None,
        running: dict | None = None,
    ) -> None:
        self.path = path
        self.backup_dir = Path(data_dir) / "config-backups"
        self.bus = bus
        #: The config the daemon runs with; a save answers which of its changes wait for a restart.
        self.running = running
        self._lock = asyncio.Lock()

    def _read_document(self) -> dict:
        if self.path is None or not self.path.exists():
            return {}
        doc, _ = parse_yaml(self.path.read_text(encoding="utf-8"), str(self.path))
        return doc or {}

    def get(self) -> dict:
        """The user's document as written, and the effective config (defaults and env applied)."""
        doc = self._read_document()
        effective = load_config(self.path) if self.path and self.path.exists() else load_config(None)
        return {"config": doc, "effective": effective}

    def validate(self, doc: Any) -> list[ConfigIssue]:
        """Issues of a document as a client sent it (no env overrides: those are not part of the file)."""
        name = self.path.name if self.path else "config.yaml"
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True) if isinstance(doc, dict) else None
        if text is None:
            return [ConfigIssue(name, None, "", "expected a mapping at the top level")]
        # Validate through the dumped text so issues carry the line they will have in the saved file.
        _, lines = parse_yaml(text, name)
        _, issues = validate_document(doc, name, lines)
        return issues

    async def save(self, doc: dict) -> dict:
        """Validate, write (with backup) and re-read. YAML dump/parse and validation are pure Python and
        take seconds for a large document, so all of it runs in a worker thread, never on the loop."""
        issues = await asyncio.to_thread(self.validate, doc)
        if issues:
            raise ConfigError(issues)
        if self.path is None:
            raise BadRequest("the daemon was started without a config file; nothing to save to")
        text = await asyncio.to_thread(yaml.safe_dump, doc, sort_keys=False, allow_unicode=True)
        async with self._lock:
            await asyncio.to_thread(self._write_with_backup, text)
        if self.bus:
            self.bus.publish(CONFIG_CHANGED, {"path": str(self.path)})
        saved = await asyncio.to_thread(self.get)
        saved["restart_required"] = self.restart_required(saved["effective"])
        return saved

    def restart_required(self, effective: dict) -> list[str]:
        """Saved settings the running daemon does not take over until it restarts (dotted paths)."""
        if self.running is None:
            return []
        return [k for k in changed_keys(self.running, effective) if k not in LIVE_KEYS]

    def _write_with_backup(self, text: str) -> None:
        assert self.path is not None
        if self.path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            atomic_write(self.backup_dir / f"config-{stamp}.yaml", self.path.read_bytes())
            self._prune()
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o600
        atomic_write(self.path, text.encode("utf-8"), mode)

    def _prune(self) -> None:
        backups = sorted(self.backup_dir.glob("config-*.yaml"))
        for old in backups[:-BACKUPS_KEPT]:
            old.unlink(missing_ok=True)

    def list_backups(self) -> list[dict]:
        if not self.backup_dir.exists():
            return []
        result = []
        for p in sorted(self.backup_dir.glob("config-*.yaml"), reverse=True):
            st = p.stat()
            result.append(
                {
                    "name": p.name,
                    "size": st.st_size,
                    "created_at": datetime.fromtimestamp(st.st_mtime, UTC).isoformat().replace("+00:00", "Z"),
                }
            )
        return result

    async def restore(self, name: str) -> dict:
        """Apply a backup; it is validated first and the live file is untouched when it is invalid."""
        if not BACKUP_NAME_RE.match(name or ""):
            raise BadRequest(f"invalid backup name: {name!r}", {"name": name})
        path = self.backup_dir / name
        if not path.is_file():
            raise NotFound(f"no backup named {name}", {"name": name})

        def check() -> Any:
            text = path.read_text(encoding="utf-8")
            base = self.path.parent if self.path else None
            load_text(text, name, env={}, base_dir=base)  # raises ConfigError
            return parse_yaml(text, name)[0]

        doc = await asyncio.to_thread(check)
        return await self.save(doc or {})
