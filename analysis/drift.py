"""Was the machine itself off while a cell ran? Flags from what each cell recorded (cell.json `machine`).

The machine drifts: on a shared VM the same in-process predict ranged 2.43-4.90 ms within 4 minutes
(issue 16), and its neighbours' memory traffic never shows as steal time. A cell is flagged when
- its nearest calibration (the model's predict on the servers' CPUs, idle, between rounds) is off the
  run's median calibration by more than `TOLERANCE`: the machine was slower or faster then;
- the probe inside its own window (a low-duty predict burst while the load ran) is off the median of
  the same line's cells at the same load level (arms and repetitions pooled, at least `MIN_PEERS`
  cells) by more than `TOLERANCE`: something slowed this one cell's window (the probe shares the
  cores with the load, so only cells under the same load are compared);
- the hypervisor stole more than `STEAL_LIMIT` of the CPU time.
Flagged cells are left out of "surely" (analysis/paired.py) and named in the report.

The tolerance, 25 %: within-minutes drift of an idle shared VM spans about ±27 % (10th-90th
percentile of the issue's measurement, 2.62-4.53 ms around 3.5 ms), so a smaller tolerance would flag
the ordinary machine; a slowdown the size of the issue's 25-40 % between runs is flagged.
This is the smallest version of the rule; the report's drift flags build on it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from analysis.stats import RunSummary

__all__ = ["MIN_PEERS", "STEAL_LIMIT", "TOLERANCE", "machine_flags", "speed_range"]

TOLERANCE = 0.25
STEAL_LIMIT = 0.05
MIN_PEERS = 3


def _off(value: float, reference: float) -> float:
    return value / reference - 1.0


def _peer_key(run: RunSummary) -> tuple[object, ...]:
    key = run.key
    return (key.server, key.protocol, key.batch, key.server_config_name, key.repeat_share, key.rate,
            key.concurrency)


def machine_flags(runs: Sequence[RunSummary], tolerance: float = TOLERANCE) -> dict[str, tuple[str, ...]]:
    """Why each flagged cell's machine was off (cell id -> reasons); cells not flagged are absent."""
    measured = [run for run in runs if run.machine is not None]
    calibrations = {
        run.machine.calibration.index: run.machine.calibration.predict_ms
        for run in measured
        if run.machine and run.machine.calibration
    }
    reference = statistics.median(calibrations.values()) if calibrations else None
    peers: dict[tuple[object, ...], list[float]] = {}
    for run in measured:
        if run.machine and run.machine.probe:
            peers.setdefault(_peer_key(run), []).append(run.machine.probe.median_ms)
    flags: dict[str, tuple[str, ...]] = {}
    for run in measured:
        machine = run.machine
        assert machine is not None
        reasons = []
        calibration = machine.calibration
        if calibration is not None and reference:
            off = _off(calibration.predict_ms, reference)
            if abs(off) > tolerance:
                reasons.append(
                    f"the nearest calibration ({calibration.label}) ran the model {abs(off):.0%} "
                    f"{'slower' if off > 0 else 'faster'} than the run's median"
                )
        same = peers.get(_peer_key(run), [])
        if machine.probe is not None and len(same) >= MIN_PEERS:
            off = _off(machine.probe.median_ms, statistics.median(same))
            if abs(off) > tolerance:
                reasons.append(
                    f"the probe in its window ran {abs(off):.0%} {'slower' if off > 0 else 'faster'} "
                    f"than in the {len(same)} cells of this line at this load"
                )
        if machine.steal_share is not None and machine.steal_share > STEAL_LIMIT:
            reasons.append(f"the hypervisor stole {machine.steal_share:.0%} of the CPU time")
        if reasons:
            flags[run.cell_id] = tuple(reasons)
    return flags


def speed_range(runs: Sequence[RunSummary]) -> tuple[float, float, float] | None:
    """(lowest, median, highest) calibration predict time (ms) the run's cells saw; None: none."""
    values = sorted(
        {
            (run.machine.calibration.index, run.machine.calibration.predict_ms)
            for run in runs
            if run.machine and run.machine.calibration
        }
    )
    if not values:
        return None
    times = [ms for _, ms in values]
    return min(times), statistics.median(times), max(times)
