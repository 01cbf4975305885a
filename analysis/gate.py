"""The regression gate's statistics: same machine and pace, then per-cell distributions, corrected.

`inferload report AFTER --compare BEFORE --fail-on-regression` (analysis/compare.py) fails (exit 1)
only on a regression beyond the noise, and refuses to judge (exit 2) when the two runs cannot be told
apart from the machine they ran on:
- **Another machine** (`check_same_machine`): the manifests' CPU model or CPU count differ. Both are
  named.
- **Another pace** (`check_same_pace`): each run's calibration (the median of its calibration points,
  the model's in-process predict with no load running; models/calibration.py) differs by more than
  `PACE_TOLERANCE`, 10 % (a median over the run's calibration points: steadier than the single points
  the drift flags judge, whose tolerance is wider). A 30 % slower machine makes every latency slower; the gate
  cannot tell that from a slower server, so it says which it saw: both figures and their ratio. A run
  without calibration, or whose predict is too short to time (under `MIN_PACE_MS`, 0.1 ms: the small
  model's), is judged, with a note that drift between the runs is unchecked.
- **Per cell** (`judge_cells`): the whole latency distribution, a Mann-Whitney rank test over the two
  runs' time slices (analysis/distributions.py: slices long compared with the busy periods, so nearly
  independent), Holm-corrected across every cell compared. A cell is *worse* when its adjusted p is
  below 5 % and its latency ratio (Hodges-Lehmann, after / before) is at least 1 + the threshold:
  the A/A minimum detectable difference when a run measured one, else the drift tolerance (a shift the
  calibration would not have flagged must not count as a regression either). *Better* is the mirror
  image; otherwise *indistinguishable*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.distributions import Shift, holm, shift
from analysis.errors import ResultsError

PACE_TOLERANCE = 0.10  # the runs' calibration medians may differ by this much, no more
# Below this, a calibration predict is too short to time the machine's pace: a call of a few microseconds
# (the small model's ~0.015 ms) is mostly call overhead and timer noise. Measured here: three runs of
# one matrix a minute apart on the same warm servers took 0.012, 0.018 and 0.016 ms (+48 %, +28 %) while
# the same line's latency moved -6 % (tests/experiments/test_regression_gate_real.py).
MIN_PACE_MS = 0.1
ALPHA = 0.05
WORSE, BETTER, SAME, UNKNOWN = "worse", "better", "indistinguishable", "not comparable"
# A cell past the SLO in both runs is an overloaded queue: its latency grows with how long the step ran
# and with the order its arrivals came in, so its runs differ by multiples (measured: TorchServe REST-JSON
# at full size, 20/s, x13.8 between two back-to-back demo runs). Its line's max rate still judges it.
OVERLOADED = "not compared: past the SLO in both runs (an overloaded queue's latency grows with the run)"
# A cell the machine watch flagged in either run (analysis/drift.py: the machine off its pace, steal, other
# work beside it) measured the machine as much as the server: left out, as from the paired verdicts.
FLAGGED = "not compared: flagged by the machine watch in either run (see the machine-speed notes)"


def _machine_words(machine: Mapping[str, Any] | None) -> str | None:
    if not machine:
        return None
    model = machine.get("cpu_model")
    cpus = machine.get("cpu_count_logical")
    if model is None and cpus is None:
        return None
    return f"{model or 'unknown CPU'} x {cpus if cpus is not None else '?'} CPUs"


def check_same_machine(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                       before_name: str, after_name: str) -> None:
    """Refuse (ResultsError) two runs whose manifests name different machines (CPU model or count)."""
    words = _machine_words(before), _machine_words(after)
    if None in words or words[0] == words[1]:
        return
    raise ResultsError(
        f"refusing to gate: {before_name} (before) ran on {words[0]}, {after_name} (after) on {words[1]}: "
        "latencies from different machines are not comparable; measure the baseline on this machine")


@dataclass(frozen=True)
class Pace:
    """How the two runs' calibrations compare (ms per in-process predict at `batch`, no load)."""

    before_ms: float | None
    after_ms: float | None
    batch: int | None
    tolerance: float = PACE_TOLERANCE

    @property
    def ratio(self) -> float | None:
        if self.before_ms is None or self.after_ms is None or self.before_ms <= 0:
            return None
        return self.after_ms / self.before_ms

    @property
    def timeable(self) -> bool:
        """Both figures long enough to time the machine's pace (`MIN_PACE_MS`)."""
        return min(self.before_ms or 0.0, self.after_ms or 0.0) >= MIN_PACE_MS

    @property
    def drifted(self) -> bool:
        return self.timeable and self.ratio is not None and abs(self.ratio - 1.0) > self.tolerance

    def describe(self) -> str:
        if self.ratio is None:
            sides = (("before", self.before_ms), ("after", self.after_ms))
            missing = [side for side, ms in sides if ms is None]
            return (f"machine pace not compared: no calibration recorded in the {' and '.join(missing)} "
                    "run(s), so drift between the runs is unchecked")
        if not self.timeable:
            return (f"machine pace not compared: the model's predict (batch {self.batch}, no load) took "
                    f"{self.before_ms:.3f} ms before and {self.after_ms:.3f} ms after, too short to time the "
                    f"machine (under {MIN_PACE_MS} ms a predict is mostly call overhead and timer noise), so "
                    "drift between the runs is unchecked")
        return (f"machine pace: the model's predict (batch {self.batch}, no load) took {self.before_ms:.2f} "
                f"ms before and {self.after_ms:.2f} ms after ({self.ratio - 1:+.0%}; tolerance "
                f"±{self.tolerance:.0%})")


def check_same_pace(pace: Pace, before_name: str, after_name: str) -> None:
    """Refuse (ResultsError) to judge two runs between which the machine's pace drifted."""
    if pace.drifted:
        raise ResultsError(
            f"refusing to judge {after_name} against {before_name}: the machine drifted between the runs. "
            f"{pace.describe()}: a latency change of that size is the machine's as much as the servers'. "
            "Run both again back to back (or the baseline again now) and compare those")


@dataclass(frozen=True)
class CellShift:
    """One cell's distribution compared: the shift, the Holm-adjusted p, the verdict."""

    label: str
    shift: Shift | None  # None: too few slices on a side, or the cell is missing / unusable on one
    adjusted_p: float | None
    verdict: str
    threshold: float

    def describe(self) -> str:
        if self.shift is None:
            return f"{self.label}: {self.verdict}"
        return (f"{self.label}: {self.verdict}, {self.shift.describe()}, Holm-adjusted p "
                f"{self.adjusted_p:.2g}")


def judge_cells(
    cells: Sequence[tuple[str, Sequence[float] | None, Sequence[float] | None]], *, threshold: float,
    overloaded: frozenset[str] = frozenset(), flagged: frozenset[str] = frozenset(),
) -> list[CellShift]:
    """Each (label, before slices, after slices) compared; Holm's correction over every tested cell.
    Labels in `overloaded` (past the SLO in both runs) or `flagged` (by the machine watch) are listed,
    not tested."""
    left_out = overloaded | flagged
    shifts = [(label, shift(before, after) if before and after and label not in left_out else None)
              for label, before, after in cells]
    tested = [s for _, s in shifts if s is not None]
    adjusted = iter(holm([s.p_value for s in tested]))
    results = []
    for label, found in shifts:
        if found is None:
            why = OVERLOADED if label in overloaded else FLAGGED if label in flagged else UNKNOWN
            results.append(CellShift(label, None, None, why, threshold))
            continue
        p = next(adjusted)
        verdict = SAME
        if p < ALPHA and found.ratio >= 1.0 + threshold:
            verdict = WORSE
        elif p < ALPHA and 1.0 / found.ratio >= 1.0 + threshold:
            verdict = BETTER
        results.append(CellShift(label, found, p, verdict, threshold))
    return results
