"""Simulated single-server queues whose latency percentiles are known exactly: what the percentile
intervals' coverage is checked against (tests/analysis/test_queue_coverage.py,
benchmarks/interval_coverage.py).

Latencies in a queue are correlated: a slow moment delays every request behind it (a busy period), so
an interval that assumes independent requests is too narrow. These queues reproduce that on purpose:
Poisson arrivals at `rate` (what inferload's open-loop generator offers), one FIFO server, service
times exponential (M/M/1) or constant (M/D/1) with mean 1/`service_rate`. A request's latency is its
sojourn time (waiting + service), like inferload's done - scheduled.

- Waiting times follow Lindley's recursion W[i+1] = max(0, W[i] + S[i] - A[i+1]), computed for a
  whole trajectory at once: W = C - running minimum of C (C the cumulative sum of S - A, started at 0).
- The trajectory starts after a burn-in of 50 relaxation times, 1 / (mu (1 - sqrt(rho))^2), so the
  windows cut from it are stationary: their true percentile is the stationary one.
- True percentiles: M/M/1 sojourn ~ Exponential(mu - lambda), so its p-th percentile is
  -ln(1 - p/100) / (mu - lambda); M/D/1 waiting time from Erlang's formula
  P(W <= t) = (1 - rho) sum_{k=0}^{floor(t/D)} (lambda (kD - t))^k / k! e^{-lambda (kD - t)},
  summed in 80-digit decimals (the terms alternate and cancel), plus the service time D.
  At rho = 0.9, mu = 100/s: M/M/1 p99 460.5 ms, M/D/1 p99 229.0 ms (10^7 simulated requests: 457, 228).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Literal

import numpy as np

from loadtest._percentiles import QuantileInterval, quantile_interval, window_quantile_interval

Kind = Literal["M/M/1", "M/D/1"]


@dataclass(frozen=True)
class Queue:
    """A stable single-server FIFO queue: Poisson arrivals at `rate`/s, service at `service_rate`/s."""

    kind: Kind
    rate: float
    service_rate: float

    def __post_init__(self) -> None:
        if not 0 < self.rate < self.service_rate:
            raise ValueError(f"need 0 < rate < service rate for a stable queue, got {self.rate}, "
                             f"{self.service_rate}")

    @classmethod
    def at(cls, kind: Kind, rate: float, utilisation: float) -> Queue:
        return cls(kind, rate, rate / utilisation)

    @property
    def utilisation(self) -> float:
        return self.rate / self.service_rate

    @property
    def relaxation_s(self) -> float:
        """The time scale over which the queue forgets its state (its slowest correlation)."""
        return 1.0 / (self.service_rate * (1.0 - math.sqrt(self.utilisation)) ** 2)

    def true_percentile_s(self, p: float) -> float:
        """The stationary p-th percentile of latency (sojourn time), seconds."""
        q = p / 100.0
        if self.kind == "M/M/1":
            return -math.log(1.0 - q) / (self.service_rate - self.rate)
        service = 1.0 / self.service_rate
        low, high = 0.0, service
        while _md1_wait_cdf(high, self.rate, service) < q:
            low, high = high, 2.0 * high
        for _ in range(60):  # bisection to ~1e-18 of the bracket
            middle = (low + high) / 2.0
            if _md1_wait_cdf(middle, self.rate, service) < q:
                low = middle
            else:
                high = middle
        return high + service

    def simulate(self, duration_s: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(arrival times from 0, latencies), seconds, of every request arriving in `duration_s`, the queue
        already in its stationary regime."""
        burn_s = 50.0 * self.relaxation_s
        total = burn_s + duration_s
        count = int(rng.poisson(self.rate * total))
        arrivals = np.sort(rng.uniform(0.0, total, count))
        if self.kind == "M/M/1":
            service = rng.exponential(1.0 / self.service_rate, count)
        else:
            service = np.full(count, 1.0 / self.service_rate)
        steps = service[:-1] - np.diff(arrivals)
        walk = np.concatenate([[0.0], np.cumsum(steps)])
        waiting = walk - np.minimum.accumulate(np.minimum(walk, 0.0))
        keep = arrivals >= burn_s
        return arrivals[keep] - burn_s, (waiting + service)[keep]

    def windows(
        self, window_s: float, count: int, seed: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`count` measuring windows of `window_s` (arrival times from the window's start, latencies), as a
        matrix cell's window would see the queue: cut from seeded stationary trajectories, a window's
        length apart (a trajectory holds at most ~4 million arrivals; each starts anew, burnt in)."""
        rng = np.random.default_rng(seed)
        per_trajectory = max(1, min(count, int(2_000_000 / max(1.0, self.rate * window_s))))
        done = 0
        while done < count:
            chunk = min(per_trajectory, count - done)
            arrivals, latencies = self.simulate(2 * chunk * window_s, rng)
            edges = np.searchsorted(arrivals, np.arange(2 * chunk + 1) * window_s)
            for i in range(chunk):
                start, end = edges[2 * i], edges[2 * i + 1]
                yield arrivals[start:end] - 2 * i * window_s, latencies[start:end]
            done += chunk


Method = Callable[[np.ndarray, np.ndarray, tuple[float, float], float], QuantileInterval]


def exact_method(latencies: np.ndarray, times: np.ndarray, window: tuple[float, float],
                 p: float) -> QuantileInterval:
    """The exact order-statistic interval, which takes the window's latencies as independent."""
    return quantile_interval(latencies, p)


def window_method(latencies: np.ndarray, times: np.ndarray, window: tuple[float, float],
                  p: float) -> QuantileInterval:
    """The interval for dependent samples (batch means over time slices)."""
    return window_quantile_interval(latencies, times, window, p)


METHODS: dict[str, Method] = {"exact (independent)": exact_method, "batch means (time slices)": window_method}


@dataclass(frozen=True)
class Coverage:
    """How often one interval method's stated interval held the true percentile over simulated windows.

    The stated interval is [low, high] with a missing end open (0 or infinity): a "too few" window
    states only its lower bound, which must hold too. `two_sided` windows gave both ends (a reported
    percentile); `covered_two_sided` counts those that held the truth.
    """

    windows: int
    covered: int
    two_sided: int
    covered_two_sided: int
    median_requests: float
    median_width_ratio: float | None  # (high - low) / truth over the two-sided windows

    @property
    def rate(self) -> float:
        return self.covered / self.windows

    @property
    def two_sided_rate(self) -> float | None:
        return self.covered_two_sided / self.two_sided if self.two_sided else None


def measure_coverage(method: Method, queue: Queue, window_s: float, count: int, seed: int,
                     p: float = 99.0) -> Coverage:
    """`method`'s coverage of the true p-th percentile over `count` seeded windows of `queue`."""
    truth = queue.true_percentile_s(p)
    covered = two_sided = covered_two_sided = 0
    sizes, widths = [], []
    for times, latencies in queue.windows(window_s, count, seed):
        interval = method(latencies, times, (0.0, window_s), p)
        low = interval.low if interval.low is not None else 0.0
        high = interval.high if interval.high is not None and interval.enough else math.inf
        hit = low <= truth <= high
        covered += hit
        sizes.append(interval.n)
        if math.isfinite(high) and interval.low is not None:
            two_sided += 1
            covered_two_sided += hit
            widths.append((high - low) / truth)
    return Coverage(count, covered, two_sided, covered_two_sided, float(np.median(sizes)),
                    float(np.median(widths)) if widths else None)


def _md1_wait_cdf(t: float, rate: float, service: float) -> float:
    """P(W <= t) for M/D/1 waiting times (Erlang's formula; see the module docstring)."""
    with localcontext() as context:
        context.prec = 80
        lam, d, at = Decimal(rate), Decimal(service), Decimal(t)
        total, factorial, k = Decimal(0), Decimal(1), 0
        while k * d <= at:
            if k:
                factorial *= k
            u = lam * (k * d - at)
            total += (u**k if k else Decimal(1)) / factorial * (-u).exp()
            k += 1
        return float((1 - lam * d) * total)
