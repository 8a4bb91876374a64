"""One shared "internet link" for the fake hosters' media: every response's bytes pass the same pacer.

Why aggregate and not per response (`media_rate_bps`): a home server's 1 Gbit/s line caps the sum of all
its connections. A per-response limit would let 16 parallel HLS fragment requests move 16 Gbit/s and make
concurrency look better than any real link allows; with one shared link, parallel requests can only hide
the per-request latency (`state.media_delay`), which is exactly what they win on a real line.
"""

from __future__ import annotations

import asyncio


class SharedLink:
    """A virtual wire of `rate_bps` bytes/s: `take(n)` waits until n more bytes fit on it.

    Reservations are serialised on a virtual clock (next free moment of the wire), so concurrent senders
    share the rate instead of each getting all of it. A short burst (`burst_s`) is allowed so the pacing
    sleeps stay well above the event loop's timer resolution.
    """

    def __init__(self, rate_bps: int, burst_s: float = 0.02) -> None:
        if rate_bps <= 0:
            raise ValueError("rate_bps must be positive")
        self.rate_bps = rate_bps
        self.burst_s = burst_s
        self._free_at = 0.0

    async def take(self, nbytes: int) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._free_at = max(self._free_at, now) + nbytes / self.rate_bps
        ahead = self._free_at - now - self.burst_s
        if ahead > 0:
            await asyncio.sleep(ahead)
