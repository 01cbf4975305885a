"""Arrival processes: small, pure, seeded objects that say when each request is due.

Why separate from sending: the schedule is fixed by (rate, seed) before the run, so a run can be
reproduced and the scheduler can be tested statistically without a network (as LoadGen does with
its schedule_rng_seed). N load processes each take rate/N with their own seed stream; a sum of
independent Poisson streams is Poisson at the total rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

_CHUNK = 4096
NS_PER_S = 1_000_000_000


def stream_seed(seed: int, stream: int) -> np.random.SeedSequence:
    """An independent seed stream per load process (or Locust user) derived from one run seed."""
    return np.random.SeedSequence(seed, spawn_key=(stream,))


class Arrivals(Protocol):
    """Yields scheduled offsets in ns from the start of the run, increasing."""

    def offsets_ns(self) -> Iterator[int]: ...


@dataclass(frozen=True)
class PoissonArrivals:
    """Exponential inter-arrival gaps with mean 1/rate: the open-loop Poisson process."""

    rate: float
    seed: int | np.random.SeedSequence = 0

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"arrival rate must be > 0 requests/s, got {self.rate}")

    def gaps_s(self) -> Iterator[float]:
        rng = np.random.default_rng(self.seed)
        while True:
            yield from rng.exponential(1.0 / self.rate, _CHUNK).tolist()

    def offsets_ns(self) -> Iterator[int]:
        return _cumulative_ns(self.gaps_s())


@dataclass(frozen=True)
class ConstantArrivals:
    """Evenly spaced arrivals (wrk2-style), for calibration; not Poisson."""

    rate: float
    seed: int | np.random.SeedSequence = 0  # unused; kept so both kinds are built alike

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"arrival rate must be > 0 requests/s, got {self.rate}")

    def offsets_ns(self) -> Iterator[int]:
        gap = 1.0 / self.rate
        k = 0
        while True:
            yield round(k * gap * NS_PER_S)
            k += 1


@dataclass(frozen=True)
class StepArrivals:
    """Poisson arrivals whose rate steps: `steps` is ((start_s, rate), ...) from start_s = 0.

    A ramp is a staircase of small steps. Drawn by time rescaling: unit-rate exponential gaps
    are mapped through the inverse of the cumulative rate, so each segment is Poisson at its rate.
    """

    steps: tuple[tuple[float, float], ...]
    seed: int | np.random.SeedSequence = 0

    def __post_init__(self) -> None:
        if not self.steps or self.steps[0][0] != 0:
            raise ValueError("steps must start at 0 s: ((0, rate0), (t1, rate1), ...)")
        starts = [s for s, _ in self.steps]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError(f"step start times must increase, got {starts}")
        if any(not r > 0 for _, r in self.steps):
            raise ValueError(f"every step rate must be > 0 requests/s, got {[r for _, r in self.steps]}")

    def offsets_ns(self) -> Iterator[int]:
        unit = PoissonArrivals(1.0, self.seed).gaps_s()
        segment = 0
        t = 0.0
        for gap in unit:
            # spend `gap` units of cumulative rate, crossing segment borders as needed
            remaining = gap
            while True:
                rate = self.steps[segment][1]
                end = self.steps[segment + 1][0] if segment + 1 < len(self.steps) else float("inf")
                if t + remaining / rate <= end:
                    t += remaining / rate
                    break
                remaining -= (end - t) * rate
                t = end
                segment += 1
            yield round(t * NS_PER_S)


def ramp(
    start_rate: float, end_rate: float, duration_s: float, steps: int = 20
) -> tuple[tuple[float, float], ...]:
    """A linear ramp as a staircase for StepArrivals."""
    if steps < 1:
        raise ValueError("a ramp needs at least one step")
    width = duration_s / steps
    return tuple((k * width, start_rate + (end_rate - start_rate) * (k + 0.5) / steps) for k in range(steps))


def _cumulative_ns(gaps: Iterator[float]) -> Iterator[int]:
    t = 0.0
    for gap in gaps:
        t += gap
        yield round(t * NS_PER_S)


def schedule_ns(arrivals: Arrivals, duration_s: float) -> np.ndarray:
    """All offsets (ns) before duration_s, as an array: for tests and previews."""
    limit = duration_s * NS_PER_S
    out = []
    for offset in arrivals.offsets_ns():
        if offset >= limit:
            break
        out.append(offset)
    return np.asarray(out, dtype=np.int64)


def make_arrivals(kind: str, rate: float, seed: int | np.random.SeedSequence) -> Arrivals:
    if kind == "poisson":
        return PoissonArrivals(rate, seed)
    if kind == "constant":
        return ConstantArrivals(rate, seed)
    raise ValueError(f"unknown arrival process {kind!r}: use poisson or constant")
