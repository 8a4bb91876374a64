"""Whether the provider sites let us in, and what the user can do when they don't.

A captcha (s.to's Turnstile step), a Cloudflare or DDoS-Guard wall is not a failed download: the
affected items wait with the reason and are tried again later (the wait doubles while the wall stays,
from `provider.challenge_retry` up to 6 h), and one `health` event tells webhooks, MQTT and the UI
banner once when it starts and once when it is over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aniworldd.events import HEALTH
from aniworldd.net import challenge as walls

MAX_WAIT = 6 * 3600.0

_HINTS = {
    walls.TURNSTILE: (
        "it asks for a captcha that only a person can solve. Downloads from it wait and resume by "
        "themselves; opening the site once in a browser on this network, another address "
        "(provider.sto_url / provider.aniworld_url) or a proxy (provider.proxy) may clear it sooner."
    ),
    walls.CLOUDFLARE: (
        "Cloudflare's browser check stops the request. Set provider.flaresolverr_url to a FlareSolverr "
        "instance to pass it, or use a proxy (provider.proxy); downloads wait and resume by themselves."
    ),
    walls.DDOS_GUARD: (
        "DDoS-Guard's browser check stops the request. Try another address or a proxy (provider.proxy); "
        "downloads wait and resume by themselves."
    ),
}
_DEFAULT_HINT = (
    "the site refuses the request. Try another address, a proxy (provider.proxy) or DoH (provider.dns: "
    "doh); downloads wait and resume by themselves."
)


@dataclass(slots=True)
class _Wall:
    challenge: str
    message: str
    headline: str
    since: datetime
    retry_at: datetime
    strikes: int


class ProviderHealth:
    """Per host: blocked by which wall since when, and until when its items wait."""

    def __init__(
        self,
        publish: Callable[[str, dict[str, Any]], Any] | None = None,
        *,
        first_wait: float = 900.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._publish = publish
        self.first_wait = max(1.0, float(first_wait))
        self._now = now
        self._walls: dict[str, _Wall] = {}

    @staticmethod
    def hint(challenge: str) -> str:
        return _HINTS.get(challenge, _DEFAULT_HINT)

    def blocked(self, host: str, challenge: str, message: str) -> tuple[float, str]:
        """Record a wall on `host`; (seconds to wait, the reason to show on the item)."""
        now = self._now()
        wall = self._walls.get(host)
        strikes = wall.strikes + 1 if wall else 1
        wait = min(self.first_wait * 2 ** (strikes - 1), MAX_WAIT)
        retry_at = now + timedelta(seconds=wait)
        site = host or "the site"
        what = "asks for a captcha" if challenge in (walls.TURNSTILE, walls.CAPTCHA) else "blocks us"
        reason = (
            f"waiting: {site} {what} ({message}); next try at {retry_at:%H:%M} UTC - "
            f"{site} {self.hint(challenge)}"
        )
        headline = f"{site} {what}: {message}"
        self._walls[host] = _Wall(
            challenge, message, headline, wall.since if wall else now, retry_at, strikes
        )
        if wall is None and self._publish is not None:
            self._publish(
                HEALTH,
                {
                    "status": "blocked",
                    "component": "provider",
                    "host": host,
                    "challenge": challenge,
                    "message": headline,
                    "hint": self.hint(challenge),
                    "retry_at": retry_at,
                },
            )
        return wait, reason

    def ok(self, host: str) -> None:
        """A request to `host` got through: the wall is gone."""
        wall = self._walls.pop(host, None)
        if wall is not None and self._publish is not None:
            self._publish(
                HEALTH,
                {
                    "status": "ok",
                    "component": "provider",
                    "host": host,
                    "message": f"{host} lets us in again",
                },
            )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            host: {
                "status": "blocked",
                "challenge": w.challenge,
                "message": w.headline,
                "hint": self.hint(w.challenge),
                "since": w.since,
                "retry_at": w.retry_at,
                "strikes": w.strikes,
            }
            for host, w in self._walls.items()
        }
