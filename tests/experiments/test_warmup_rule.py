"""The warm-up's stability rule (inferload/warmup.py): window medians, and when they agree."""

from __future__ import annotations

import pytest

from inferload.experiments import ServerWarmup
from inferload.warmup import is_stable, warm_up, window_medians

RULE = ServerWarmup(window_s=0.5, windows=3, within=0.10, max_s=4.0)
MS = 1_000_000


def test_window_medians_take_full_windows_from_the_first_send() -> None:
    # sends at 0, 100, ..., 1200 ms: windows [0, 500) [500, 1000) hold 5 each; [1000, 1500) is partial
    samples = [(k * 100 * MS, float(k)) for k in range(13)]
    assert window_medians(samples, 0.5) == [(2.0, 5), (7.0, 5)]  # nearest rank: the 3rd of 5
    assert window_medians(samples[:3], 0.5) == [(1.0, 3)], "a lone partial window is kept"
    assert window_medians([], 0.5) == []


@pytest.mark.parametrize(("medians", "stable"), [
    ([9.0, 3.0, 3.1, 2.9], True),     # the first (cold) window does not count: the last three agree
    ([3.0, 3.0], False),              # fewer windows than the rule asks for
    ([3.0, 3.0, 3.7], False),         # mean 3.233: 3.7 lies 0.467 above it, more than 0.323
    ([3.0, 3.1, 3.3], True),          # mean 3.133: the farthest, 3.3, lies 0.167 above, within 0.313
])
def test_the_last_windows_must_lie_within_ten_percent_of_their_mean(medians: list[float],
                                                                    stable: bool) -> None:
    assert is_stable(medians, RULE) is stable


def test_the_warm_up_stops_once_stable() -> None:
    chunks: list[float] = []

    def chunk(seconds: float) -> list[tuple[int, float]]:
        chunks.append(seconds)
        cold = 50.0 if len(chunks) == 1 else 3.0  # the first chunk starts slow (cold), then steady
        return [(k * 100 * MS, cold if k < 6 else 3.0) for k in range(int(seconds * 10))]

    outcome = warm_up(chunk, RULE)
    assert outcome.stable and outcome.error is None
    # chunk 1 (2 s): its first request dropped, windows 50 3 3 and a partial one left out; chunk 2
    # (1.5 s): 3 3 (and a partial one): the last three agree
    assert chunks == [2.0, 1.5]
    assert outcome.windows_ms == (50.0, 3.0, 3.0, 3.0, 3.0)


def test_a_warm_up_that_never_settles_ends_at_the_cap_and_one_that_fails_says_why() -> None:
    def swinging(seconds: float) -> list[tuple[int, float]]:
        return [(k * 100 * MS, 1.0 + (k // 5) % 2) for k in range(int(seconds * 10))]

    outcome = warm_up(swinging, RULE)
    assert not outcome.stable and len(outcome.windows_ms) >= 3

    def broken(seconds: float) -> list[tuple[int, float]]:
        raise ConnectionError("connection refused")

    failed = warm_up(broken, RULE)
    assert not failed.stable and failed.error == "ConnectionError: connection refused"
