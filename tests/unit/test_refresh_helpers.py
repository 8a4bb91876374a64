"""Pure parts of the refresh scheduler: jitter and language ranking."""

from __future__ import annotations

from aniworldd.services.refresh_service import better_language, jitter_factor

PREF = ["ger-dub", "ger-sub", "eng-sub"]


def test_jitter_is_stable_and_bounded() -> None:
    factors = [jitter_factor(f"series-{i}", 0.1) for i in range(500)]
    assert all(0.9 <= f <= 1.1 for f in factors)
    assert jitter_factor("one-piece", 0.1) == jitter_factor("one-piece", 0.1)
    assert max(factors) - min(factors) > 0.15  # spread out, not all at one moment
    assert jitter_factor("one-piece", 0.0) == 1.0


def test_better_language() -> None:
    assert better_language("eng-sub", ["eng-sub", "ger-sub"], PREF) == "ger-sub"
    assert better_language("ger-sub", ["ger-sub", "ger-dub", "eng-sub"], PREF) == "ger-dub"
    assert better_language("ger-dub", ["ger-dub", "ger-sub"], PREF) is None
    assert better_language("eng-sub", ["eng-sub", "eng-dub"], PREF) is None  # eng-dub is not wanted
    assert better_language(None, ["eng-sub"], PREF) == "eng-sub"  # unknown language on disk ranks lowest
