"""The one max-rate search: each sweep line's max Poisson rate under the SLO, bracketed and bisected.

Two ways in, one bisection rule (`bisection_point`: the midpoint in rates people write, until the
bracket is narrower than MIN_RELATIVE_GAP of its lower end):
- a matrix's `load.search` (`plan`, `search_steps`), below;
- `inferload run --refine N` after a fixed rate sweep (`refine`): the brackets the sweep's verdicts
  leave (last rate met, first usable rate missed) are split N times, each midpoint an ordinary cell of
  the matrix extended by that rate, judged again by analysis' verdicts over all its repetitions.

The load.search way:

perf_analyzer-style: offer `start`, `start x factor`, ... until a step does not meet the SLO or `max`
is reached (a `start` that already misses steps down to `min`), then bisect between the last rate met
and the first not met, `bisect_steps` times. Every step is an ordinary open-loop cell of the results
directory (`torchserve-grpc-b1-default-r160-rep0`), run on the servers already up for the line's group
(the runner restarts a server only when it died), so the report's max-rate verdict reads the steps
like any sweep, and resume reuses finished steps: the search is replayed from the recorded outcomes
(`plan` is a pure function of them) and only steps not yet done are run.

A step is judged by analysis' own definitions (`analysis.stats` / `analysis.repetitions`: the SLO
percentile with the sample rule, errors + drops <= 1 %):
- `met` / `missed`: the analysis' SLO status of the step's one run;
- `generator invalid`: the load generator could not keep the schedule. That bounds what this
  machine can *test*, not what the server sustains: an upper bound of the search, never a miss;
- `too few requests`: fewer ok requests than the SLO percentile needs (the step's duration is chosen
  to avoid it, see `step_duration_s`); not met, and not a miss either;
- `failed`: the cell failed (e.g. the server died; it is restarted for the next step). On resume a
  failed step is run again.
Anything but `met` stops the climb and becomes the bisection's upper end; the line's summary says
which kind of end it is.

Step duration (the sample rule): a step at rate r lasts max(duration_s, 1.2 x n / r) seconds, n the
ok requests the SLO percentile needs at the search's planned `inflation`
(`loadtest._percentiles.requests_needed`: a window's requests are correlated, and its interval counts
them as worth n / f independent ones, f an upper bound, 2.16 for independent requests; p99 needs 795
requests when they are independent, 3,680 at f = 10; p90 78 and 360), so a step without errors whose
correlation is no worse than planned holds enough ok requests with probability > 99.9 % (Poisson
counts: 1.2 n expected).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from analysis.percentiles import requests_needed
from analysis.repetitions import summarize_cells
from analysis.stats import summarize_run
from analysis.verdicts import SweepVerdict
from inferload.cells import Cell, expand_cells
from inferload.experiments import Experiment, RateSearch
from inferload_formats import CELL_DONE, Slo, cell_status

__all__ = [
    "MET",
    "MISSED",
    "INVALID",
    "TOO_FEW",
    "FAILED",
    "Judgement",
    "SearchPlan",
    "plan",
    "step_duration_s",
    "planned_inflation",
    "search_steps",
    "judge_step",
    "expected_steps",
    "estimated_seconds",
    "SAMPLE_MARGIN",
    "MIN_RELATIVE_GAP",
    "Bracket",
    "bisection_point",
    "brackets",
    "check_refinable",
    "refine",
    "round_rate",
    "with_rate",
]

MET = "met"
MISSED = "missed"
INVALID = "generator invalid"
TOO_FEW = "too few requests"
FAILED = "failed"

SAMPLE_MARGIN = 1.2  # expected ok requests per step = this x the SLO percentile's minimum
# Stop bisecting a line once its bracket is this narrow relative to its lower end: finer steps are
# below what one repetition on a shared machine can tell apart.
MIN_RELATIVE_GAP = 0.05


def round_rate(rate: float) -> float:
    """Midpoints as rates people write (and cell ids stay short): whole req/s from 10 up."""
    return float(round(rate)) if rate >= 10 else round(rate, 1)


def midpoint(low: float, high: float) -> float:
    return round_rate((low + high) / 2)


def bisection_point(low: float, high: float) -> float | None:
    """The next rate to try between `low` (met) and `high` (not met), or None when the bracket is split
    as finely as is worth it (its midpoint rounds onto an end, or it is narrower than MIN_RELATIVE_GAP)."""
    mid = midpoint(low, high)
    if not low < mid < high or high - low <= MIN_RELATIVE_GAP * low:
        return None
    return mid


@dataclass(frozen=True)
class Judgement:
    """A finished step's outcome (one of the constants above) and a few words for the console."""

    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class SearchPlan:
    """Where a line's search stands: the next rate to offer (None: finished) and the bracket so far.

    `low` is the highest rate met on the search's path, `high` the lowest not met above it (None: not
    found, e.g. `max` was met), `high_outcome` what happened there (a miss or only an upper bound).
    """

    next_rate: float | None
    phase: str | None
    low: float | None
    high: float | None
    high_outcome: str | None
    lowest_miss: float | None = None  # the lowest rate that surely did not meet the SLO (a real miss)


def _ladder_up(search: RateSearch) -> list[float]:
    """start, start x factor, ... capped at max (max itself is the last step when not on the ladder)."""
    rates: list[float] = []
    for k in itertools.count():
        rate = round_rate(search.start * search.factor**k)
        if rate >= search.max:
            rates.append(round_rate(search.max))
            return rates
        rates.append(rate)
    return rates  # pragma: no cover - the loop always returns


def _ladder_down(search: RateSearch) -> list[float]:
    rates: list[float] = []
    for k in itertools.count(1):
        rate = round_rate(search.start / search.factor**k)
        if rate < search.floor or rate <= 0 or (rates and rate >= rates[-1]):
            return rates
        rates.append(rate)
    return rates  # pragma: no cover


def plan(search: RateSearch, outcomes: Mapping[float, str]) -> SearchPlan:
    """The search replayed over the outcomes recorded so far (rate -> outcome): what to run next."""
    found = _plan(search, outcomes)
    misses = [rate for rate, outcome in outcomes.items() if outcome == MISSED]
    return replace(found, lowest_miss=min(misses, default=None))


def _plan(search: RateSearch, outcomes: Mapping[float, str]) -> SearchPlan:
    low: float | None = None
    high: float | None = None
    high_outcome: str | None = None
    for rate in _ladder_up(search):
        outcome = outcomes.get(rate)
        if outcome is None:
            return SearchPlan(rate, "step up", low, high, high_outcome)
        if outcome != MET:
            high, high_outcome = rate, outcome
            break
        low = rate
    if low is None:  # the start already failed: step down until a rate is met
        for rate in _ladder_down(search):
            outcome = outcomes.get(rate)
            if outcome is None:
                return SearchPlan(rate, "step down", low, high, high_outcome)
            if outcome == MET:
                low = rate
                break
            high, high_outcome = rate, outcome
    if low is None or high is None:
        return SearchPlan(None, None, low, high, high_outcome)
    for _ in range(search.bisect_steps):
        mid = bisection_point(low, high)
        if mid is None:
            break
        outcome = outcomes.get(mid)
        if outcome is None:
            return SearchPlan(mid, "bisect", low, high, high_outcome)
        if outcome == MET:
            low = mid
        else:
            high, high_outcome = mid, outcome
    return SearchPlan(None, None, low, high, high_outcome)


def expected_steps(search: RateSearch) -> int:
    """A rough step count per line for the progress display: half the climb, the miss, the bisections."""
    return math.ceil(len(_ladder_up(search)) / 2) + 1 + search.bisect_steps


def estimated_seconds(experiment: Experiment, lines: int, *, cell_overhead_s: float = 4.0) -> float:
    """Rough wall time of `lines` searches (server starts apart): a typical path climbs half the
    ladder plus the first miss, then bisects near it; each step is warm-up + its duration + overhead
    (with `early_stop`, its longest: an upper bound)."""
    search = experiment.load.search
    if search is None:
        raise ValueError("not a search matrix")
    duration = longest_step_s(experiment)
    ladder = _ladder_up(search)
    climb = ladder[: min(len(ladder), math.ceil(len(ladder) / 2) + 1)]
    near_miss = (climb[-1] + climb[-2]) / 2 if len(climb) > 1 else climb[-1]
    per_step = experiment.warmup_s + cell_overhead_s
    seconds = sum(per_step + duration(rate) for rate in climb)
    seconds += search.bisect_steps * (per_step + duration(near_miss))
    return lines * seconds


def step_duration_s(rate: float, *, minimum_s: float, needed: int | None) -> float:
    """max(minimum_s, SAMPLE_MARGIN x needed / rate), rounded up to 0.5 s (see the module docstring)."""
    if not needed:
        return minimum_s
    return max(minimum_s, math.ceil(2 * SAMPLE_MARGIN * needed / rate) / 2)


def planned_inflation(experiment: Experiment) -> float:
    """The variance inflation this matrix's steps are sized for (`load.search.inflation`; 1 without a
    search)."""
    search = experiment.load.search
    return search.inflation if search is not None else 1.0


def duration_rule(experiment: Experiment) -> Callable[[float], float]:
    """The step duration at each rate for this matrix's SLO percentile and `duration_s` (with
    `early_stop`, the step's minimum: it may run on up to max(that, max_duration_s))."""
    needed = requests_needed(experiment.slo.percentile, planned_inflation(experiment))
    return lambda rate: step_duration_s(rate, minimum_s=experiment.duration_s, needed=needed)


def longest_step_s(experiment: Experiment) -> Callable[[float], float]:
    """The longest a step at each rate can measure: its duration, or the early-stop cap above it."""
    duration = duration_rule(experiment)
    cap = experiment.early_stop.max_duration_s if experiment.early_stop is not None else 0.0
    return lambda rate: max(duration(rate), cap)


def _is_done(cell_dir: Path) -> bool:
    return cell_status(cell_dir)[0] == CELL_DONE


def _line_label(cell: Cell) -> str:
    share = "" if cell.repeat_share is None else f" repeat {cell.repeat_share:g}"
    rep = f" rep {cell.repetition}" if cell.repetition else ""
    return f"{cell.server} {cell.protocol} b{cell.batch} [{cell.server_config_name}]{share}{rep}"


def describe_result(result: SearchPlan) -> str:
    """The line's bracket in words: `max rate in [160, 240) req/s (240 missed)`."""
    if result.low is None:
        if result.high is None:
            return "nothing was run"
        if result.high_outcome == MISSED:
            return f"no rate met the SLO down to the search's min ({result.high:g} req/s missed)"
        if result.lowest_miss is not None:
            return (f"max rate below {result.lowest_miss:g} req/s ({result.lowest_miss:g} missed); not "
                    f"determined lower: {result.high:g} req/s was {result.high_outcome} (not a miss)")
        return (f"not determined: no step met the SLO down to {result.high:g} req/s, the last one "
                f"{result.high_outcome} (not a miss); lower the search's min, or give the load "
                "generator more CPU")
    if result.high is None:
        return f"met the SLO up to the search's max: max rate >= {result.low:g} req/s"
    kind = ("missed" if result.high_outcome == MISSED else
            f"{result.high_outcome}: an upper bound of what was tested, not a miss")
    return f"max rate in [{result.low:g}, {result.high:g}) req/s ({result.high:g} {kind})"


def search_steps(
    lines: Iterable[Cell],
    search: RateSearch,
    *,
    cells_dir: Path,
    duration_for: Callable[[float], float],
    judge: Callable[[Path], Judgement],
    note: Callable[[str], None] = print,
    reused: list[str] | None = None,
    results: dict[str, SearchPlan] | None = None,
) -> Iterator[Cell]:
    """Yield the step cells to run for each line, in order, judging each after the runner ran it.

    `lines` are the matrix's cells at the start rate (one per line); the runner runs each yielded cell
    on the line's running server before asking for the next. Finished steps in `cells_dir` are judged
    and reused, never rerun (their ids go to `reused`); `results` receives each line's final plan.
    """
    for line in lines:
        outcomes: dict[float, str] = {}
        label = _line_label(line)
        while True:
            step_plan = plan(search, outcomes)
            if step_plan.next_rate is None:
                break
            rate = step_plan.next_rate
            step = line.at_rate(rate, duration_for(rate))
            step_dir = cells_dir / step.cell_id
            was_done = _is_done(step_dir)
            if was_done:
                if reused is not None:
                    reused.append(step.cell_id)
            else:
                yield step
            judgement = judge(step_dir)
            outcomes[rate] = judgement.outcome
            again = " (recorded earlier)" if was_done else ""
            note(f"  {label}: {step_plan.phase} {rate:g} req/s: {judgement.outcome}"
                 f"{' - ' + judgement.detail if judgement.detail else ''}{again}")
        final = plan(search, outcomes)
        if results is not None:
            results[line.cell_id] = final
        note(f"{label}: {describe_result(final)}")


def judge_step(cell_dir: Path, slo: Slo) -> Judgement:
    """One step judged by analysis' own definitions, against the matrix's SLO."""
    status, error = cell_status(cell_dir)
    if status != CELL_DONE:
        return Judgement(FAILED, error or "the step did not finish")
    try:
        run = summarize_run(cell_dir, slo)
    except Exception as exc:  # noqa: BLE001 - unreadable records: the step cannot be judged
        return Judgement(FAILED, f"its records could not be read: {exc}")
    if not run.usable:
        return Judgement(INVALID, "; ".join(run.exclusion_reasons) or "generator health unknown")
    (cell,) = summarize_cells([run], slo)
    estimate = cell.slo_estimate
    name = f"p{slo.percentile:g}"
    stats = run.measured
    if cell.slo_status == MET:
        sure = "" if cell.met_surely is not False else ", not surely (interval straddles the bound)"
        return Judgement(MET, f"{name} {_ms(estimate.value)} ms [{_ms(estimate.low)}, {_ms(estimate.high)}]"
                              f" over {stats.ok} ok{sure}")
    if cell.slo_status == MISSED:
        return Judgement(MISSED, "; ".join(stats.slo.misses))
    return Judgement(TOO_FEW, "; ".join(cell.notes) or f"{stats.ok} ok requests")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


# ---------------------------------------------------------------- after a fixed rate sweep: --refine


@dataclass(frozen=True)
class Bracket:
    """One sweep line's bracket: `low` met the SLO, `high` (usable) missed it."""

    server: str
    protocol: str
    server_config_name: str
    batch: int
    low: float
    high: float

    @property
    def midpoint(self) -> float:
        return midpoint(self.low, self.high)

    def worth_splitting(self) -> bool:
        return bisection_point(self.low, self.high) is not None


def check_refinable(experiment: Experiment) -> None:
    """Bisection moves Poisson rates: refuse a closed-loop matrix (before its sweep is run)."""
    if experiment.load.mode != "open":
        raise ValueError("--refine bisects Poisson rates: it needs an open-loop matrix (load.mode: open)")
    if experiment.load.search is not None:
        raise ValueError("--refine bisects a fixed rate list; this matrix's `load.search` bisects already "
                         "(raise its `bisect_steps` instead)")


def brackets(verdicts: Iterable[SweepVerdict]) -> list[Bracket]:
    """Brackets worth splitting, from `analysis` sweep verdicts (open-loop lines only)."""
    found = []
    for verdict in verdicts:
        if verdict.first_miss_rate is None:
            continue
        bracket = Bracket(
            server=verdict.group.server,
            protocol=verdict.group.protocol,
            server_config_name=verdict.group.server_config_name,
            batch=verdict.group.batch,
            low=verdict.max_rate_under_slo or 0.0,
            high=verdict.first_miss_rate,
        )
        if bracket.worth_splitting():
            found.append(bracket)
    return found


def with_rate(experiment: Experiment, rate: float) -> Experiment:
    """The same matrix with one more Poisson rate (a change the runner accepts on resume: it adds cells)."""
    rates = tuple(sorted({*(experiment.load.rates or ()), rate}))
    return experiment.model_copy(update={"load": experiment.load.model_copy(update={"rates": rates})})


def cell_ids_for(experiment: Experiment, bracket: Bracket) -> list[str]:
    """The ids of the midpoint cells (every repetition) of one bracket in the extended matrix."""
    return [
        cell.cell_id
        for cell in expand_cells(experiment).cells
        if (cell.server, cell.protocol, cell.server_config_name, cell.batch)
        == (bracket.server, bracket.protocol, bracket.server_config_name, bracket.batch)
        and cell.rate == bracket.midpoint
    ]


def refine(
    experiment: Experiment,
    out_dir: Path,
    *,
    steps: int,
    run_cells: Callable[[Experiment, str], None],
    read_verdicts: Callable[[Path], Iterable[SweepVerdict]],
    note: Callable[[str], None] = print,
) -> list[Bracket]:
    """Bisect every bracketed line `steps` times; returns the brackets that were split.

    `run_cells(experiment, only_pattern)` runs the selected cells of a matrix into `out_dir` (the
    runner), `read_verdicts(out_dir)` re-reads the sweep verdicts (analysis): both injected so the
    bisection logic is tested without servers.
    """
    check_refinable(experiment)
    split: list[Bracket] = []
    for step in range(1, steps + 1):
        todo = brackets(read_verdicts(out_dir))
        if not todo:
            note(f"refine step {step}: every bracket is narrower than {MIN_RELATIVE_GAP:.0%}, or none missed")
            break
        for bracket in todo:
            experiment = with_rate(experiment, bracket.midpoint)
            note(
                f"refine step {step}: {bracket.server} {bracket.protocol} [{bracket.server_config_name}] "
                f"batch {bracket.batch}: max rate in [{bracket.low:g}, {bracket.high:g}) req/s, "
                f"trying {bracket.midpoint:g}"
            )
            for cell_id in cell_ids_for(experiment, bracket):
                run_cells(experiment, cell_id)
            split.append(bracket)
    return split
