"""Wall clock vs monotonic clock: how records from several hosts share one timeline.

Record times are `time.monotonic_ns()`: steady, but with an arbitrary origin per machine. Hosts agree
on wall time (NTP, to about a millisecond), so each stream's header carries its host's
wall - monotonic offset, and a run with streams from several hosts is put on one timeline by
shifting each host's times by the difference of offsets (read_run does this).
"""

from __future__ import annotations

import time

__all__ = ["wall_minus_monotonic_ns", "wall_to_monotonic"]


def wall_minus_monotonic_ns(tries: int = 5) -> int:
    """time.time_ns() - time.monotonic_ns() now, from the tightest of a few back-to-back reads
    (a preemption between the two reads, common on a busy machine, would shift a single one)."""
    best: tuple[int, int] | None = None  # (gap between the monotonic reads, offset)
    for _ in range(tries):
        before = time.monotonic_ns()
        wall = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, wall - (before + after) // 2)
    assert best is not None
    return best[1]


def wall_to_monotonic(wall_ns: int) -> int:
    """This host's monotonic time at the wall-clock instant `wall_ns`."""
    return wall_ns - wall_minus_monotonic_ns()
