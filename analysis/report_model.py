"""The report's model: everything report.html, summary.md and summary.json show, computed once from a
results directory (`build_model`), and the sentences the CLI and the views print from it.

The three views (analysis/report.py renders the HTML and Markdown, analysis/summary.py defines
summary.json) are views of one `ReportModel`, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from analysis.aa import Mdd, mdd_sentence, mdd_table
from analysis.compare import Comparison, check_comparable, check_gateable, compare, pace_of, threshold_of
from analysis.decomposition import Decomposition, ServerDecomposition, decompose, server_decomposition
from analysis.drift import MachineTimeline, machine_flags, machine_timeline
from analysis.intervals import ORDER_STATISTIC, THROUGHPUT_SLICES, Estimate
from analysis.keys import GroupKey
from analysis.paired import PairedComparison, compare_max_rates
from analysis.percentiles import CONFIDENCE, REPORTED_PERCENTILES, min_samples
from analysis.results import Results, read_results
from analysis.topology import TopologyReport, topology_report
from analysis.verdicts import (
    BatchingVerdict,
    BatchSweepPoint,
    BestConfiguration,
    SweepVerdict,
    batch_sweep,
    batching_verdicts,
    best_batch,
    best_configuration,
    sweep_verdicts,
)
from loadtest import EarlyStop

TFSERVING_KIND_LABELS = {
    "tfs-compat": "TF Serving API, served by tfs-compat (TensorFlow runtime)",
    "tensorflow_model_server": "TensorFlow Serving (tensorflow_model_server)",
}
TRITON_KIND_LABELS = {
    "pytriton": "Triton 2.51, Python backend (the nvidia-pytriton wheel's tritonserver; model in NumPy)",
    "tritonserver": "Triton Inference Server (tritonserver on PATH), Python backend (model in NumPy)",
    "v2": "an Open Inference Protocol (V2) server, unlabelled",
}

@dataclass(frozen=True)
class FloorTable:
    frameworks: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, float]], ...]


@dataclass(frozen=True)
class ReportModel:
    """Everything the three report views show, computed once."""

    results: Results
    verdicts: tuple[SweepVerdict, ...]
    best: BestConfiguration
    batching: tuple[BatchingVerdict, ...]
    sweep: tuple[BatchSweepPoint, ...]
    decomposition: tuple[Decomposition, ...]
    comparison: Comparison | None
    server_decomposition: tuple[ServerDecomposition, ...] = ()
    topology: TopologyReport | None = None  # CPU per request, replicas, balancer, cache (topology.py)
    paired: tuple[PairedComparison, ...] = ()  # the best line's max rate against every other line's
    aa: tuple[Mdd, ...] = ()  # the A/A minimum detectable difference per metric (analysis/aa.py)
    timeline: MachineTimeline | None = None  # the machine's speed over the run (analysis/drift.py)
    drift_flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # cell id -> why it is flagged

    def machine_lines(self) -> list[str]:
        """The machine's speed in words: its pace, the cells measured while it was off, and how the
        repetitions were made independent (as the matrix says)."""
        timeline, manifest = self.timeline, self.results.manifest
        lines = []
        if timeline is None or not timeline.measured:
            lines.append("machine speed not recorded (no calibration probe in this run): drift during the "
                         "run is unknown, and no verdict can rule it out")
        else:
            if timeline.calibrations:
                speeds = [p.speed_ms for p in timeline.calibrations]
                spread = (max(speeds) - min(speeds)) / (timeline.calibration_ms or 1.0)
                lines.append(
                    f"calibration between rounds (the model's predict{_at_batch(timeline.batch)}, no load): "
                    f"median {timeline.calibration_ms:.3g} ms over {len(speeds)} points, {min(speeds):.3g}-"
                    f"{max(speeds):.3g} ms ({spread:.0%} of the median)")
            flagged = len(self.drift_flags)
            measured = len(timeline.cells)
            lines.append(
                f"{flagged} of {measured} cell(s) ran while the machine was off by more than "
                f"{timeline.tolerance:.0%} (their nearest calibration against the run's median, their "
                "own-window probe against the same line's cells at the same load, or steal time): flagged, "
                "and no 'surely' rests on them" if flagged else
                f"no cell ran while the machine was off by more than {timeline.tolerance:.0%}")
        repetitions = int((manifest.experiment.get("repetitions") if manifest else None) or 1)
        isolation = manifest.schedule.isolation if manifest is not None and manifest.schedule else None
        how = {"restart": "the servers were restarted between repetitions",
               "rewarm": "the servers were warmed again (not restarted) between repetitions"}
        if repetitions > 1:
            lines.append(f"{repetitions} repetitions; "
                         + how.get(str(isolation), "how they were separated is not recorded"))
        else:
            lines.append("one repetition: no between-run interval, so no verdict is called 'surely'")
        return lines

    def paired_lines(self) -> list[str]:
        """The best line against every other, on pairs of max rates from the same repetition."""
        return [c.describe() for c in self.paired]

    def aa_line(self) -> str:
        return mdd_sentence(self.aa)

    def flagged_rows(self) -> list[tuple[str, str]]:
        return [(cell, "; ".join(why)) for cell, why in sorted(self.drift_flags.items())]

    @property
    def tfserving_label(self) -> str:
        kind = self.results.tfserving_kind
        if kind is None:
            ran = any(r.key.server == "tfserving" for r in self.results.runs)
            return "not recorded" if ran else "not run"
        return TFSERVING_KIND_LABELS.get(kind, kind)

    @property
    def triton_label(self) -> str | None:
        """What served the `triton` lines (None when the experiment has none)."""
        runs = self.results.runs
        kinds = sorted({r.server_kind or "not recorded" for r in runs if r.key.server == "triton"})
        if not kinds:
            return None
        return "; ".join(TRITON_KIND_LABELS.get(kind, kind) for kind in kinds)

    @property
    def floor_table(self) -> FloorTable | None:
        """The in-process floor as batch rows x framework columns."""
        floor = self.results.floor
        if not floor:
            return None
        frameworks = tuple(sorted({f.framework for f in floor}))
        rows: dict[int, dict[str, float]] = {}
        for f in floor:
            rows.setdefault(f.batch, {})[f.framework] = f.p50_ms
        return FloorTable(frameworks, tuple(sorted(rows.items())))

    @property
    def machine_description(self) -> str:
        """The manifest's machine facts, sizes in GiB, for the report header."""
        machine = self.results.manifest.machine if self.results.manifest is not None else {}
        if not machine:
            return "not recorded"
        parts = []
        for key, value in machine.items():
            if key.endswith("_bytes") and isinstance(value, int | float):
                parts.append(f"{key.removesuffix('_bytes')}: {value / 2**30:.1f} GiB")
            elif isinstance(value, list):
                values = ", ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in value)
                parts.append(f"{key}: {values}")
            else:
                parts.append(f"{key}: {value}")
        return " · ".join(parts)

    @property
    def cpu_sets_description(self) -> str:
        """Where servers and load processes ran (manifest `cpus`, written by the runner)."""
        cpus = self.results.manifest.cpus if self.results.manifest is not None else None
        return cpus.describe() if cpus is not None else "not recorded"

    def sweep_lines(self) -> dict[str, list[BatchSweepPoint]]:
        """Batch-sweep points grouped by server x protocol x configuration x concurrency."""
        lines: dict[str, list[BatchSweepPoint]] = {}
        for point in self.sweep:
            config = f" [{point.server_config_name}]" if point.server_config_name != "default" else ""
            key = f"{point.server} {point.protocol}{config}, concurrency {point.concurrency}"
            lines.setdefault(key, []).append(point)
        return lines

    def batch_sweep_sentences(self) -> list[str]:
        """Per closed-loop sweep line: the batch size with the most predictions/s, and its latency."""
        sentences = []
        for line, points in self.sweep_lines().items():
            top, ties = best_batch(points)
            if top is not None:
                sure = (
                    f"; indistinguishable here from batch {', '.join(str(b) for b in ties)}"
                    if ties
                    else ""
                )
                sentences.append(
                    f"batch sweep {line}: most predictions/s {number(top.predictions_per_s)}"
                    f"{interval_text(top.predictions)} at batch {top.batch} "
                    f"(latency p50 {number(top.p50_ms)} ms, p99 {with_interval(top.p99, ' ms')}){sure}"
                )
        return sentences

    def best_batches(self) -> list[dict[str, Any]]:
        """Per closed-loop sweep line: the batch with the most predictions/s, its interval, and the batch
        sizes it cannot be told apart from (summary.json's `batch_sweep_best`)."""
        best = []
        for line, points in self.sweep_lines().items():
            top, ties = best_batch(points)
            if top is not None:
                best.append(
                    {
                        "line": line,
                        "batch": top.batch,
                        "predictions_per_s": asdict(top.predictions),
                        "indistinguishable_from_batches": list(ties),
                    }
                )
        return best

    def verdict_lines(self) -> list[str]:
        """One plain sentence per sweep line, then the best configuration: what the CLI prints."""
        lines = [verdict_sentence(v) for v in self.verdicts]
        if not self.verdicts:
            pass
        elif self.best.group is not None:
            lines.append(f"best: {best_sentence(self.best)}")
        else:
            lines.append(f"best: none ({self.best.note})")
        lines.extend(self.batch_sweep_sentences())
        for b in self.batching:
            lines.append(
                f"batching {b.server} {b.protocol} batch {b.batch}: "
                f"latency-optimal {b.latency_optimal or 'n/a'}{_ties(b.latency_indistinguishable_from)}, "
                f"throughput-optimal {b.throughput_optimal or 'n/a'}"
                f"{_ties(b.throughput_indistinguishable_from)}"
            )
        return lines

    def best_line(self) -> str:
        return best_sentence(self.best) if self.best.group is not None else f"none ({self.best.note})"

    def slo_word(self, cell: Any) -> str:
        """met / met, not surely / missed / too few requests / excluded: a cell's SLO status in words."""
        if cell.slo_status == "met" and cell.met_surely is False:
            return "met, not surely"
        return str(cell.slo_status)

    def method_sentence(self) -> str:
        rule = ", ".join(f"{k} {v:,}" for k, v in uncertainty_methods()["min_requests"].items())
        return (
            f"intervals are {CONFIDENCE:.0%} two-sided: a percentile of one run by the exact binomial "
            "order-statistic interval; over repetitions by Student-t; one run's throughput by batch means "
            f"over {THROUGHPUT_SLICES} slices. A percentile is reported only with enough ok requests "
            f"({rule}); 'A beats B' only when intervals separate"
        )

    @property
    def early_stop_rule(self) -> str | None:
        """The matrix's stopping rule in words ("ran >= 20 s and until the p99's 95 % interval was within
        ±10 % of it, at most 120 s"), or None when its cells ran a fixed duration."""
        matrix = self.results.manifest.matrix if self.results.manifest is not None else None
        if matrix is not None and matrix.early_stop is not None and matrix.duration_s is not None:
            rule = matrix.early_stop
            return EarlyStop(percentile=self.results.slo.percentile, interval_within=rule.interval_within,
                             max_duration_s=rule.max_duration_s).describe(matrix.duration_s)
        outcomes = [r.early_stop for r in self.results.runs if r.early_stop]
        if not outcomes:  # a bare load run records its rule in its own load.json
            return None
        first = outcomes[0]
        return EarlyStop(percentile=first.percentile, interval_within=first.interval_within,
                         max_duration_s=first.max_duration_s).describe(first.min_duration_s)

    def early_stop_rows(self) -> list[tuple[str, int, str]]:
        """Per run with the rule: cell id, repetition, and how it ended in words."""
        return [(r.cell_id, r.repetition, r.early_stop_note or "") for r in self.results.runs
                if r.early_stop_note]

    def regression_lines(self) -> list[str]:
        """Each cell whose latency distribution, and each p99 or max rate, that got worse beyond the noise
        and the threshold (empty without a comparison)."""
        if self.comparison is None:
            return []
        return [
            *(f"{s.label}: {s.shift.describe()}, Holm-adjusted p {s.adjusted_p:.2g}"
              for s in self.comparison.shifted_worse if s.shift is not None and s.adjusted_p is not None),
            *(f"{d.label}: {number(d.before)}{interval_text(d.before_interval)} -> {number(d.after)}"
              f"{interval_text(d.after_interval)}" for d in self.comparison.regressions),
        ]

    def comparison_lines(self) -> list[str]:
        """How the comparison judged: the machine's pace in both runs, the threshold and its source."""
        c = self.comparison
        if c is None:
            return []
        tested = [s for s in c.shifts if s.shift is not None]
        lines = [c.pace.describe() if c.pace is not None else "machine pace not compared"]
        lines.append(f"{len(tested)} cell(s) compared as whole distributions (rank test over time slices, "
                     f"Holm-corrected); a change counts only beyond {c.threshold:.0%}, {c.threshold_source}; "
                     "below it: indistinguishable here")
        return lines


def _ties(names: tuple[str, ...]) -> str:
    return f" (indistinguishable here from {', '.join(names)})" if names else ""


def interval_text(estimate: Estimate) -> str:
    """ " [low–high]" for an interval, "" without one (one side missing shows as ?)."""
    if estimate.low is None and estimate.high is None:
        return ""
    return f" [{number(estimate.low) if estimate.low is not None else '?'}–" + (
        f"{number(estimate.high)}]" if estimate.high is not None else "?]"
    )


def with_interval(estimate: Estimate, unit: str = "") -> str:
    """A value with its interval, or why there is none ("too few requests for p99 ...")."""
    if estimate.value is None:
        return estimate.note or "n/a"
    return f"{number(estimate.value)}{unit}{interval_text(estimate)}"


def best_sentence(best: BestConfiguration) -> str:
    assert best.group is not None
    sentence = (
        f"{best.group.label()}: {number(best.predictions_per_s)} predictions/s at "
        f"{number(best.max_rate_under_slo)} requests/s under the SLO"
    )
    if best.beats and not best.ahead_here_of and not best.indistinguishable_from:
        return sentence + "; surely sustains more than every other line (paired repetitions)"
    parts = []
    if best.beats:
        parts.append(f"surely sustains more than {_labels(best.beats)} (paired repetitions)")
    if best.ahead_here_of:
        parts.append(f"sustains more here than {_labels(best.ahead_here_of)} (not surely)")
    if best.indistinguishable_from:
        parts.append(f"indistinguishable here from {_labels(best.indistinguishable_from)}")
    return "; ".join([sentence, *parts])


def _labels(groups: Sequence[GroupKey]) -> str:
    return ", ".join(g.label() for g in groups)


def number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def verdict_sentence(verdict: SweepVerdict) -> str:
    head = verdict.group.label()
    if verdict.never_judged:
        return f"{head}: not judged at any rate ({verdict.max_rate_note})"
    if verdict.max_rate_under_slo is None:
        return f"{head}: no rate met the SLO{rate_bracket(verdict)} ({verdict.max_rate_note})"
    bracket = rate_bracket(verdict)
    sentence = (
        f"{head}: max {number(verdict.max_rate_under_slo)}/s under the SLO{bracket} "
        f"(p99 {with_interval(verdict.p99_at_max, ' ms')} there; "
        f"p99 {with_interval(verdict.p99_at_half, ' ms')} at {number(verdict.half_rate)}/s)"
    )
    if verdict.max_rate_note:
        sentence += f"; {verdict.max_rate_note}"
    return sentence


def rate_bracket(verdict: SweepVerdict) -> str:
    """ " (true max in [low, high)/s)": the bracket on the true max rate, when either end is known."""
    low, high = verdict.max_rate_low, verdict.max_rate_high
    if low is None and high is None:
        return ""
    left = f"[{number(low)}" if low is not None else "(0"
    right = f"{number(high)})" if high is not None else "∞)"
    return f" (true max in {left}, {right}/s)"


def build_model(results_dir: Path | str, compare_with: Path | str | None = None, *,
                gate: bool = False) -> ReportModel:
    """The report's model; with `compare_with`, the comparison against that (before) run, and with `gate`
    the regression gate's refusals first (another machine, a drifted calibration: ResultsError)."""
    experiment = read_results(results_dir)
    verdicts = sweep_verdicts(experiment.cells)
    flags = machine_flags(experiment.runs)
    comparison = None
    if compare_with is not None:
        before = read_results(compare_with)
        check_comparable(before, experiment)
        pace = check_gateable(before, experiment) if gate else pace_of(before, experiment)
        comparison = compare(
            before.name,
            before.cells,
            sweep_verdicts(before.cells),
            experiment.name,
            experiment.cells,
            verdicts,
            threshold=threshold_of(before, experiment),
            pace=pace,
            flagged=frozenset(machine_flags(before.runs)) | frozenset(flags),
        )
    aa = tuple(mdd_table(experiment.runs, experiment.cells))
    best, paired = paired_best(experiment, verdicts, aa, frozenset(flags))
    return ReportModel(
        results=experiment,
        verdicts=tuple(verdicts),
        best=best,
        batching=tuple(batching_verdicts(experiment.cells, verdicts)),
        sweep=tuple(batch_sweep(experiment.cells)),
        decomposition=tuple(decompose(experiment.cells, experiment.floor, experiment.payloads)),
        comparison=comparison,
        server_decomposition=tuple(server_decomposition(experiment.cells)),
        topology=topology_report(experiment.manifest, experiment.cells, verdicts),
        paired=paired,
        aa=aa,
        timeline=machine_timeline(experiment.runs, experiment.calibration),
        drift_flags=flags,
    )


def paired_best(results: Results, verdicts: Sequence[SweepVerdict], aa: Sequence[Mdd],
                flagged: frozenset[str]) -> tuple[BestConfiguration, tuple[PairedComparison, ...]]:
    """The best configuration by max rate (the A/A's twin arms left out), and its max rate paired by
    repetition against every other line (`analysis.paired.compare_max_rates`). It "beats" only the lines
    its pairs surely beat (two or more repetitions, beyond the A/A figure); it is "ahead here" of the lines
    its pairs put lower without that certainty; every other line is indistinguishable here, whatever the
    brackets say."""
    lines = [v for v in verdicts if v.group.arm != "b"]
    best = best_configuration(lines)
    if best.group is None:
        return best, ()
    mdd = next((m.mdd for m in aa if m.metric == "max rate under the SLO"), None)
    mine = [c for c in results.cells if c.key.group == best.group]
    paired = tuple(
        compare_max_rates(mine, [c for c in results.cells if c.key.group == v.group], mdd=mdd,
                          flagged=flagged)
        for v in lines if v.group != best.group
    )
    others = [v.group for v in lines if v.group != best.group]
    beaten = tuple(g for g, c in zip(others, paired, strict=True) if c.verdict == "b lower")
    ahead = tuple(g for g, c in zip(others, paired, strict=True) if c.verdict == "b lower here")
    tied = tuple(g for g in others if g not in beaten and g not in ahead)
    return replace(best, beats=beaten, ahead_here_of=ahead, indistinguishable_from=tied), paired


def _at_batch(batch: int | None) -> str:
    return "" if batch is None else f" at batch {batch}"


def uncertainty_methods() -> dict[str, Any]:
    """How every interval in the report was computed, and the sample rule (also shown in the report)."""
    return {
        "confidence": CONFIDENCE,
        "percentile_one_run": ORDER_STATISTIC
        + ": the exact ranks for B ~ Binomial(n/f, p/100), each effective sample standing for f requests, f "
        "the variance inflation of the window's latencies at its 90 % upper confidence bound (batch means "
        "over 10 time slices; at least 1)",
        "over_repetitions": "Student-t interval of the mean of the per-repetition values (>= 2 repetitions)",
        "throughput_one_run": f"batch means: Student-t over {THROUGHPUT_SLICES} equal slices of the window",
        "max_rate": "a bracket [low, high) on the true max: with repetitions, the smallest per-repetition "
        "max rate and the largest per-repetition first-miss rate; with one, within that run: the highest "
        "rate met with the SLO percentile's upper bound within the SLO and the lowest missed with its lower "
        "bound above it (no between-run interval)",
        "comparisons": "'A beats B' only when the intervals do not overlap, else 'indistinguishable here'",
        "min_requests": {f"p{p:g}": min_samples(p) for p in REPORTED_PERCENTILES},
        "sample_rule": "a percentile is reported only when both ends of its order-statistic interval "
        "exist on the effective sample (n/f >= min_requests); with fewer, a cell does not count as meeting "
        "the SLO, and misses it "
        "only when the percentile's lower bound is already above the SLO bound",
    }
