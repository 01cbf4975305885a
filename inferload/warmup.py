"""Warm a line until it is stable, after its server started and before the rounds measure it.

A fresh server is slow at first (TensorFlow traces its graph, the JVM compiles TorchServe's frontend,
first calls allocate), and a cell that catches that measures the start-up, not the server. So every
line is warmed with closed-loop load, one request at a time (no queueing: each service time is the
server's own), in windows of `window_s` seconds. It is stable when the median service times of the
last `windows` windows all lie within ±`within` of their mean; it stops there, or at `max_s`.

The rule is perf_analyzer's (3 consecutive windows within 10 %) on shorter windows: perf_analyzer
measures throughput over 5 s windows, while here each window's median is taken over single requests
(at least ~10 of them even for the full-size model's 3 MB JSON bodies in 0.5 s), and the transients
being waited out are first-call effects of well under a second. The machine's own drift (±30 % within
seconds on a shared VM) can keep the rule from holding: then the cap ends the warm-up, and the record
says so (`stable: false`). The first request of every chunk is dropped (it sets up the connection).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from inferload.experiments import ServerWarmup

__all__ = ["WarmupOutcome", "is_stable", "rule_words", "warm_up", "window_medians"]

# (sent_ns, service_ms) of the ok requests of one chunk of closed-loop load, in sending order
Samples = Sequence[tuple[int, float]]


@dataclass(frozen=True)
class WarmupOutcome:
    windows_ms: tuple[float, ...]
    window_requests: tuple[int, ...]
    seconds: float  # wall time, the chunks' process start-ups included
    stable: bool
    error: str | None = None


def rule_words(rule: ServerWarmup) -> str:
    return (f"closed loop, 1 request at a time, {rule.window_s:g} s windows: the medians of the last "
            f"{rule.windows} within ±{rule.within:.0%} of their mean, at most {rule.max_s:g} s")


def window_medians(samples: Samples, window_s: float) -> list[tuple[float, int]]:
    """(median service ms, requests) of each full `window_s` window from the first sample's send time;
    the last, partial window is left out unless it is the only one."""
    if not samples:
        return []
    start = samples[0][0]
    width = int(window_s * 1e9)
    buckets: dict[int, list[float]] = {}
    for sent_ns, service_ms in samples:
        buckets.setdefault((sent_ns - start) // width, []).append(service_ms)
    last = max(buckets)
    full = [k for k in sorted(buckets) if k < last] or [last]
    return [(float(np.percentile(buckets[k], 50, method="inverted_cdf")), len(buckets[k])) for k in full]


def is_stable(medians: Sequence[float], rule: ServerWarmup) -> bool:
    """The last `rule.windows` medians all within ±`rule.within` of their mean."""
    if len(medians) < rule.windows:
        return False
    last = medians[-rule.windows:]
    mean = sum(last) / len(last)
    return mean > 0 and all(abs(m - mean) <= rule.within * mean for m in last)


def warm_up(run_chunk: Callable[[float], Samples], rule: ServerWarmup) -> WarmupOutcome:
    """Run chunks of `rule.windows` windows (the first one window longer) through `run_chunk(seconds)`
    until the windows are stable or `rule.max_s` seconds of warm-up load have run (the chunks'
    processes' start-up is not counted); a chunk that raises ends the warm-up."""
    started = time.monotonic()
    medians: list[float] = []
    counts: list[int] = []
    first = True
    loaded_s = 0.0
    while True:
        chunk_s = rule.window_s * (rule.windows + (1 if first else 0))
        chunk_s = max(rule.window_s, min(chunk_s, rule.max_s - loaded_s))
        loaded_s += chunk_s
        try:
            samples = run_chunk(chunk_s)
        except Exception as exc:  # noqa: BLE001 - the line's cells will say how they fare
            return WarmupOutcome(tuple(medians), tuple(counts), time.monotonic() - started, False,
                                 f"{type(exc).__name__}: {exc}"[:300])
        first = False
        for median, count in window_medians(list(samples)[1:], rule.window_s):
            medians.append(median)
            counts.append(count)
        stable = is_stable(medians, rule)
        if stable or loaded_s >= rule.max_s - 1e-9:
            return WarmupOutcome(tuple(medians), tuple(counts), time.monotonic() - started, stable)
