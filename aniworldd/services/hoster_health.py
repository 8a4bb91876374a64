"""Hoster health: what each hoster did lately, so a failing one is visible and can be tried last or skipped.

The download service records one outcome per hoster it tried for an item (resolved and downloaded =
success; resolver error or failed download = failure with its reason). From that, per hoster: attempts
and successes (all time), failures in a row, the last error and when, the last success, the success rate
over the last 24 h, and a cool-down: after `downloads.hoster_failures_before_cooldown` failures in a row
the hoster is skipped for `downloads.hoster_cooldown` (one success ends it). `rank()` gives the adaptive
order (SourceFinder): hosters whose last outcome was a success first, then untried ones, then failing ones.

Persistence: one small JSON file, `<data_dir>/hoster_health.json`, written with fileio.atomic_write in a
thread shortly after a change. Not a database table: the data is a handful of counters per hoster (the
24 h window is kept as hourly buckets, so the file stays a few KB), it is only ever read whole at start,
losing the last second of it in a crash costs nothing, and a table would need a schema change in the shared
model for what is a cache of recent experience.

A change of a hoster's `state` (ok / failing / cooling_down) is published on the EventBus as a
`hoster_health` event with the hoster's snapshot entry; a cool-down running out by time is not an event
(the next snapshot shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aniworldd.fileio import atomic_write

log = logging.getLogger(__name__)

HOSTER_HEALTH = "hoster_health"
FILE_NAME = "hoster_health.json"
WINDOW_S = 24 * 3600
_BUCKET_S = 3600
#: Hoster states, as published and shown.
OK, FAILING, COOLING_DOWN, UNKNOWN = "ok", "failing", "cooling_down", "unknown"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clock_time(ts: float) -> str:
    """HH:MM in the daemon's local time, for the item reason a user reads."""
    return datetime.fromtimestamp(ts).strftime("%H:%M")


class _Record:
    __slots__ = (
        "attempts",
        "successes",
        "failures_in_a_row",
        "last_error",
        "last_error_at",
        "last_success_at",
        "cooling_down_until",
        "buckets",
    )

    def __init__(self) -> None:
        self.attempts = 0
        self.successes = 0
        self.failures_in_a_row = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_success_at: float | None = None
        self.cooling_down_until: float | None = None
        #: hour number (epoch // 3600) -> [attempts, successes]
        self.buckets: dict[int, list[int]] = {}

    def to_json(self) -> dict:
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "failures_in_a_row": self.failures_in_a_row,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_success_at": self.last_success_at,
            "cooling_down_until": self.cooling_down_until,
            "buckets": {str(k): v for k, v in self.buckets.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> _Record:
        rec = cls()
        rec.attempts = int(data.get("attempts") or 0)
        rec.successes = int(data.get("successes") or 0)
        rec.failures_in_a_row = int(data.get("failures_in_a_row") or 0)
        rec.last_error = data.get("last_error")
        for name in ("last_error_at", "last_success_at", "cooling_down_until"):
            value = data.get(name)
            setattr(rec, name, float(value) if isinstance(value, int | float) else None)
        buckets = data.get("buckets") or {}
        rec.buckets = {
            int(k): [int(v[0]), int(v[1])]
            for k, v in buckets.items()
            if str(k).isdigit() and isinstance(v, list) and len(v) == 2
        }
        return rec


class HosterHealth:
    """Per-hoster outcome counters with a cool-down; persisted to a JSON file (see module docstring)."""

    def __init__(
        self,
        path: Path | None,
        *,
        failures_before_cooldown: int = 3,
        cooldown_s: float = 1800.0,
        hosters: Iterable[str] = (),
        publish: Callable[[str, dict], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.failures_before_cooldown = failures_before_cooldown
        self.cooldown_s = cooldown_s
        #: Configured hosters: always in the snapshot (zeros until tried), in this order.
        self.hosters = list(hosters)
        self._publish = publish
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._names: dict[str, str] = {}  # lowercase -> display name
        self._dirty = False
        self._saver: asyncio.Task | None = None
        self._load()

    @classmethod
    def from_config(cls, config: dict, publish: Callable[[str, dict], None] | None = None) -> HosterHealth:
        dl = config["downloads"]
        return cls(
            Path(config["data_dir"]) / FILE_NAME,
            failures_before_cooldown=int(dl.get("hoster_failures_before_cooldown", 3)),
            cooldown_s=float(dl.get("hoster_cooldown", 1800.0)),
            hosters=dl.get("hosters") or (),
            publish=publish,
        )

    def configure(self, failures_before_cooldown: int, cooldown_s: float, hosters: Iterable[str]) -> None:
        """New settings (a config save); a running cool-down keeps its end time."""
        self.failures_before_cooldown = int(failures_before_cooldown)
        self.cooldown_s = float(cooldown_s)
        self.hosters = list(hosters)

    # -- recording -------------------------------------------------------------------------------

    def record_success(self, hoster: str) -> None:
        self._record(hoster, None)

    def record_failure(self, hoster: str, reason: str) -> None:
        self._record(hoster, reason or "failed")

    def _record(self, hoster: str, error: str | None) -> None:
        now = self._clock()
        name = self._name(hoster)
        rec = self._records.setdefault(name, _Record())
        before = self._state(rec, now)
        rec.attempts += 1
        bucket = rec.buckets.setdefault(int(now // _BUCKET_S), [0, 0])
        bucket[0] += 1
        if error is None:
            rec.successes += 1
            bucket[1] += 1
            rec.failures_in_a_row = 0
            rec.last_success_at = now
            rec.cooling_down_until = None
        else:
            rec.failures_in_a_row += 1
            rec.last_error = error[:500]
            rec.last_error_at = now
            n = self.failures_before_cooldown
            if n > 0 and rec.failures_in_a_row >= n and self.cooldown_s > 0:
                rec.cooling_down_until = now + self.cooldown_s
        self._prune(rec, now)
        after = self._state(rec, now)
        if after != before:
            log.info("hoster %s: %s -> %s", name, before, after)
            if self._publish is not None:
                try:
                    self._publish(HOSTER_HEALTH, {"hoster": name, **self._entry(rec, now)})
                except Exception:  # a listener problem must not fail the download
                    log.exception("hoster_health event could not be published")
        self._dirty = True
        self._schedule_save()

    # -- reading ---------------------------------------------------------------------------------

    def cooling_down(self, hoster: str) -> str | None:
        """The skip reason while `hoster` is cooling down, else None."""
        rec = self._records.get(self._name(hoster))
        now = self._clock()
        if rec is None or rec.cooling_down_until is None or rec.cooling_down_until <= now:
            return None
        return (
            f"{self._name(hoster)} skipped: cooling down after {rec.failures_in_a_row} failures "
            f"until {_clock_time(rec.cooling_down_until)}"
        )

    def cooldown_ends(self, hoster: str) -> float | None:
        """Epoch seconds when the hoster's cool-down ends (None when it is not cooling down)."""
        rec = self._records.get(self._name(hoster))
        if rec is None or rec.cooling_down_until is None or rec.cooling_down_until <= self._clock():
            return None
        return rec.cooling_down_until

    def rank(self, hoster: str) -> int:
        """Adaptive order tier: 0 worked last time (within 24 h), 1 no recent outcome, 2 failed last time."""
        rec = self._records.get(self._name(hoster))
        now = self._clock()
        if rec is None:
            return 1

        def recent(ts: float | None) -> float | None:
            return ts if ts is not None and now - ts < WINDOW_S else None

        last_ok, last_bad = recent(rec.last_success_at), recent(rec.last_error_at)
        if last_ok is None and last_bad is None:
            return 1
        if last_bad is None or (last_ok is not None and last_ok >= last_bad):
            return 0
        return 2

    def snapshot(self) -> dict[str, dict]:
        """hoster -> {attempts, successes, failures_in_a_row, last_error, last_error_at, last_success_at,
        success_rate_24h, attempts_24h, cooling_down_until, state}; configured hosters first, in order."""
        now = self._clock()
        out: dict[str, dict] = {}
        for name in [self._name(h) for h in self.hosters] + sorted(self._records):
            if name not in out:
                out[name] = self._entry(self._records.get(name) or _Record(), now)
        return out

    def _entry(self, rec: _Record, now: float) -> dict:
        recent = [v for k, v in rec.buckets.items() if now - (k + 1) * _BUCKET_S < WINDOW_S]
        attempts_24h = sum(v[0] for v in recent)
        successes_24h = sum(v[1] for v in recent)
        cooling = rec.cooling_down_until if rec.cooling_down_until and rec.cooling_down_until > now else None
        return {
            "attempts": rec.attempts,
            "successes": rec.successes,
            "failures_in_a_row": rec.failures_in_a_row,
            "last_error": rec.last_error,
            "last_error_at": _iso(rec.last_error_at),
            "last_success_at": _iso(rec.last_success_at),
            "success_rate_24h": round(successes_24h / attempts_24h, 4) if attempts_24h else None,
            "attempts_24h": attempts_24h,
            "cooling_down_until": _iso(cooling),
            "state": self._state(rec, now),
        }

    @staticmethod
    def _state(rec: _Record, now: float) -> str:
        if rec.cooling_down_until is not None and rec.cooling_down_until > now:
            return COOLING_DOWN
        if rec.failures_in_a_row:
            return FAILING
        return OK if rec.attempts else UNKNOWN

    def _name(self, hoster: str) -> str:
        """One display name per hoster whatever the page's spelling (`voe` / `VOE`)."""
        key = hoster.strip().lower()
        if key not in self._names:
            configured = {h.lower(): h for h in self.hosters}
            self._names[key] = configured.get(key, hoster.strip())
        return self._names[key]

    @staticmethod
    def _prune(rec: _Record, now: float) -> None:
        oldest = int((now - WINDOW_S) // _BUCKET_S)
        for k in [k for k in rec.buckets if k < oldest]:
            del rec.buckets[k]

    # -- persistence -----------------------------------------------------------------------------

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            hosters = data.get("hosters") if isinstance(data, dict) else None
            if not isinstance(hosters, dict):
                raise ValueError("no hosters mapping")
            for name, rec in hosters.items():
                if isinstance(name, str) and isinstance(rec, dict):
                    self._records[self._name(name)] = _Record.from_json(rec)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # Only recent experience is lost; start fresh rather than refuse to start.
            log.warning("hoster health in %s not read (%s); starting fresh", self.path, exc)
            self._records.clear()

    def _dump(self) -> str:
        return json.dumps(
            {"version": 1, "hosters": {k: r.to_json() for k, r in sorted(self._records.items())}},
            separators=(",", ":"),
        )

    def save(self) -> None:
        """Write the file now (blocking; callers on the event loop use `flush()`)."""
        if self.path is None:
            return
        self._dirty = False
        atomic_write(self.path, self._dump(), mode=0o644)

    def _schedule_save(self) -> None:
        if self.path is None or (self._saver is not None and not self._saver.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a tool, a sync test): write at once
            self._save_quietly()
            return
        self._saver = loop.create_task(self._save_soon())

    async def _save_soon(self) -> None:
        await asyncio.sleep(0.2)  # outcomes of one attempt come in bursts: one write for them
        while self._dirty:
            text = self._dump()
            self._dirty = False
            try:
                await asyncio.to_thread(atomic_write, self.path, text, 0o644)
            except OSError as exc:
                log.warning("hoster health not saved to %s: %s", self.path, exc)
                return

    def _save_quietly(self) -> None:
        try:
            self.save()
        except OSError as exc:
            log.warning("hoster health not saved to %s: %s", self.path, exc)

    async def flush(self) -> None:
        """Wait for a pending write and write what is still unsaved (shutdown)."""
        if self._saver is not None:
            with contextlib.suppress(Exception):
                await self._saver
        if self._dirty and self.path is not None:
            text = self._dump()
            self._dirty = False
            with contextlib.suppress(OSError):
                await asyncio.to_thread(atomic_write, self.path, text, 0o644)

    def to_dict(self) -> dict[str, Any]:
        return self.snapshot()
