"""Reading, validating and saving the user's YAML file, with backups.

A save is atomic (temp file + fsync + rename) and the previous file is kept as a timestamped backup, so a
bad edit through the API or UI can always be undone and a crash mid-write never leaves a truncated config.
A save edits the user's document in place (ruamel.yaml round trip): only changed values are rewritten, so
their comments, key order and formatting survive a save from the UI.
"""

from __future__ import annotations

import asyncio
import copy
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError
from ruamel.yaml.representer import RoundTripRepresenter

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
        if not isinstance(doc, dict):
            return [ConfigIssue(name, None, "", "expected a mapping at the top level")]
        current = self.path.read_text(encoding="utf-8") if self.path and self.path.exists() else None
        text = render_update(current, doc)
        # Validate through the text a save would write, so issues carry the line they will have in the file.
        _, lines = parse_yaml(text, name)
        _, issues = validate_document(doc, name, lines)
        return issues

    async def save(self, doc: dict, text: str | None = None) -> dict:
        """Validate, write (with backup) and re-read. YAML dump/parse and validation are pure Python and
        take seconds for a large document, so all of it runs in a worker thread, never on the loop."""
        issues = await asyncio.to_thread(self.validate, doc)
        if issues:
            raise ConfigError(issues)
        if self.path is None:
            raise BadRequest("the daemon was started without a config file; nothing to save to")
        async with self._lock:  # the file is read and rewritten under the lock: two saves never interleave
            await asyncio.to_thread(self._write_with_backup, doc, text)
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

    def _write_with_backup(self, doc: dict, text: str | None = None) -> None:
        """`text`: a backup being restored, written as it is (its own comments); else the user's file
        with the changed values of `doc` edited in."""
        assert self.path is not None
        if text is None:
            old_text = self.path.read_text(encoding="utf-8") if self.path.exists() else None
            text = render_update(old_text, doc)
        if self.path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            atomic_write(self.backup_dir / f"config-{stamp}.yaml", self.path.read_bytes())
            self._prune()
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o600
        # Through a symlink to its target: replacing the link itself would cut the user's file loose.
        atomic_write(self.path.resolve(), text.encode("utf-8"), mode)

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

        def check() -> tuple[Any, str]:
            text = path.read_text(encoding="utf-8")
            base = self.path.parent if self.path else None
            load_text(text, name, env={}, base_dir=base)  # raises ConfigError
            return parse_yaml(text, name)[0], text

        doc, text = await asyncio.to_thread(check)
        # The backup is written back as it was saved, comments included (it is what was just validated).
        return await self.save(doc or {}, text if isinstance(doc, dict) else None)


# ---- round-trip YAML ----------------------------------------------------------------------------------


def _plain_dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _same(a: Any, b: Any) -> bool:
    """Equal as the daemon reads them (PyYAML values vs. JSON values): 1 is not true, 1 is not 1.0."""
    if type(a) is not type(b) and (isinstance(a, bool | float) or isinstance(b, bool | float)):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _fresh(value: Any, current: Any) -> Any:
    """A new value replacing `current`: a list of plain values is written `[a, b]` (as the example file
    writes lists) unless the user wrote that list as a block, so the value stays on its commented line."""
    block = isinstance(current, CommentedSeq) and not current.fa.flow_style() and len(current) > 0
    if isinstance(value, list) and not block and all(not isinstance(v, dict | list) for v in value):
        seq = CommentedSeq(value)
        seq.fa.set_flow_style()
        return seq
    return value


def _merge_map(node: CommentedMap, old: dict, new: dict) -> None:
    """Make `node` (the user's mapping as ruamel read it) hold `new`, touching only what changed.

    `old` is the same mapping as PyYAML (the daemon's reader) reads it: "changed" is judged on that, so a
    value the user wrote as `yes` or `0x10` is left as written when the client sent it back unchanged.
    """
    for key in [k for k in node if k not in new]:
        del node[key]
    last = next(reversed(node), None) if len(node) else None
    for key, value in new.items():
        if key not in node:
            node[key] = value  # new keys go at the end of their section
            continue
        before = old.get(key) if isinstance(old, dict) else None
        if _same(before, value) and key in old:
            continue
        current = node[key]
        if isinstance(current, CommentedMap) and isinstance(value, dict) and isinstance(before, dict):
            _merge_map(current, before, value)
        elif (
            isinstance(current, CommentedSeq)
            and len(current) > 0
            and not current.fa.flow_style()
            and isinstance(value, list)
            and isinstance(before, list)
        ):
            _merge_seq(current, before, value)  # a block list: item by item, its comments stay
        else:
            node[key] = _fresh(value, current)
    if last is not None and next(reversed(node)) != last:
        _move_trailing_comment(node, last, next(reversed(node)))


def _merge_seq(node: CommentedSeq, old: list, new: list) -> None:
    """Lists are edited item by item, so comments on the items that stay keep their place."""
    del node[len(new) :]
    last = len(node) - 1
    for i, value in enumerate(new):
        if i >= len(node):
            node.append(value)
        elif i < len(old) and _same(old[i], value):
            continue
        elif isinstance(node[i], CommentedMap) and isinstance(value, dict) and isinstance(old[i], dict):
            _merge_map(node[i], old[i], value)
        else:
            node[i] = value
    if 0 <= last < len(new) - 1:
        _move_trailing_comment(node, last, len(new) - 1)


def _move_trailing_comment(node: CommentedMap | CommentedSeq, old_last: Any, new_last: Any) -> None:
    """Comment lines after a mapping or list hang on its last entry: after an append they follow the new
    last entry (the old entry keeps its own end-of-line comment)."""
    pos = 2 if isinstance(node, CommentedMap) else 0  # where ruamel keeps an entry's end-of-line comment
    slot = node.ca.items.get(old_last)
    token = slot[pos] if slot else None
    if token is None or "\n" not in token.value.rstrip("\n"):
        return
    eol, _, rest = token.value.partition("\n")
    moved = copy.copy(token)
    if eol.strip():  # "# on the entry\n# after the block\n": the first line stays with the entry
        token.value = eol + "\n"
        moved.value = "\n" + rest
    else:
        slot[pos] = None
    new_slot = [None] * len(slot)
    new_slot[pos] = moved
    node.ca.items[new_last] = new_slot


_BLOCK_ITEM_RE = re.compile(r"^( *)[^\s#-][^#\n]*:[ \t]*(?:#.*)?\n(?:[ \t]*#.*\n)*( *)- ", re.MULTILINE)


def _round_trip_yaml(text: str) -> YAML:
    """A round-trip YAML that writes block lists indented the way this file does (`- x` or `  - x`)."""
    rt = YAML(typ="rt")
    found = _BLOCK_ITEM_RE.search(text)
    offset = max(0, len(found.group(2)) - len(found.group(1))) if found else 0
    rt.indent(mapping=2, sequence=offset + 2, offset=offset)
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long value the user kept on one line
    rt.Representer = _NullRepresenter
    return rt


class _NullRepresenter(RoundTripRepresenter):
    """Writes null as `null`, as the example file does (ruamel's default is an empty value)."""


_NullRepresenter.add_representer(
    type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
)


def render_update(old_text: str | None, doc: dict) -> str:
    """The text to save for `doc`: the user's file with only the changed values rewritten.

    The result is checked by reading it back the way the daemon does (PyYAML): it must be exactly the
    validated document. Where a round trip cannot promise that (no file yet, a file ruamel cannot read, a
    value YAML 1.1 and 1.2 read differently) the document is written plainly instead, comments lost but
    never a different config.
    """
    if not old_text or not old_text.strip():
        return _plain_dump(doc)
    try:
        old = yaml.safe_load(old_text)
        rt = _round_trip_yaml(old_text)
        node = rt.load(old_text)
    except (yaml.YAMLError, RuamelError):
        return _plain_dump(doc)
    if not isinstance(node, CommentedMap) or not isinstance(old, dict):
        return _plain_dump(doc)
    try:
        _merge_map(node, old, doc)
        out = io.StringIO()
        rt.dump(node, out)
        text = out.getvalue()
        if _same(yaml.safe_load(text) or {}, doc):
            return text
    except Exception:  # noqa: BLE001 - a round trip that fails must never stop a valid save: plain dump
        pass
    return _plain_dump(doc)
