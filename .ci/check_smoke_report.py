"""CI gate after the tests: the smoke matrix produced a report whose verdicts are filled by real answers.

For each of the 9 server x protocol pairs the report must hold (else exit 1, listing every problem):
- ok records: every run of the pair answered requests (`ok` > 0) and its error rate is within the
  SLO's failure limit, so a chain that fails every request cannot pass;
- a filled verdict: the sweep line was judged, i.e. a max rate under the SLO (with its p99 when the
  SLO is p99; enough requests for the SLO percentile, see analysis/README.md), or a measured miss at
  its lowest rate; not a null for want of usable cells or of requests. One exception, the analysis
  working as designed: a line whose every run had the requests the rule asks of independent ones (368
  for p99, 36 for p90) but whose latencies were correlated (a busy machine's stalls), so they were
  worth fewer independent ones and the SLO percentile was withheld as "too few" rather than printed
  wrong (analysis/README.md, "A percentile of one run"). The smoke matrix judges p90 so that this
  exception is the exception: at p99 its ~450-request cells were always "too few".
summary.json is read through its owner's definition (`analysis.summary.SummaryDocument`), so a report
of another format version, or with a field missing, fails here by name.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's packages, run from anywhere

from analysis.stats import RunSummary  # noqa: E402
from analysis.summary import SummaryDocument, read_summary  # noqa: E402
from inferload_formats import SchemaError  # noqa: E402

EXPECTED_PAIRS = {
    (s, p) for s in ("tfserving", "torchserve", "triton") for p in ("rest-json", "rest-binary", "grpc")
}


def problems_in(summary: SummaryDocument, *, allow_generator_invalid: bool = False) -> list[str]:
    """Everything wrong with a smoke report's summary.json (empty when it passes).

    `allow_generator_invalid` (for tests on a shared, overloaded machine, never for CI): a pair whose
    every run finished but was marked generator-invalid (the load generator could not keep its Poisson
    schedule: a property of the machine, not of the servers) may leave its verdict unfilled.
    """
    problems: list[str] = []
    verdicts = {(v.server, v.protocol): v for v in summary.verdicts}
    for pair in sorted(EXPECTED_PAIRS - verdicts.keys()):
        problems.append(f"no verdict for {pair[0]} {pair[1]}")
    runs: dict[tuple[str, str], list[RunSummary]] = {}
    for run in summary.runs:
        runs.setdefault((run.key.server, run.key.protocol), []).append(run)
    for pair in sorted(EXPECTED_PAIRS):
        name = f"{pair[0]} {pair[1]}"
        if not runs.get(pair):
            problems.append(f"{name}: no runs")
        for run in runs.get(pair, []):
            where = f"{name}: run {run.cell_id}"
            stats = run.stats
            if stats is None or not stats.ok:
                problems.append(f"{where} has no ok responses ({stats.errors if stats else 0} errors)")
            elif summary.slo.failures_exceed(stats.error_rate, 0.0):
                limit = summary.slo.max_failure_rate
                problems.append(f"{where} error rate {stats.error_rate:.1%} > {limit:.0%}")
    for pair, verdict in sorted(verdicts.items()):
        name = f"{pair[0]} {pair[1]}"
        if verdict.max_rate_under_slo is not None:
            if summary.slo.percentile == 99.0 and verdict.p99_at_max_rate_ms is None:
                problems.append(f"{name}: a max rate under the SLO without its p99")
        elif verdict.first_miss_rate is None:
            pair_runs = runs.get(pair, [])
            busy = bool(pair_runs) and all(
                r.status == "done" and r.generator_valid is False for r in pair_runs)
            if allow_generator_invalid and busy:
                continue
            if pair_runs and all(_withheld_for_correlation(r) for r in pair_runs):
                continue
            reason = verdict.max_rate_under_slo_note or "no reason given"
            problems.append(f"{name}: verdict not filled: {reason}")
    if not summary.tfserving_kind:
        problems.append("summary.json does not say which TF Serving kind ran")
    return problems


def _withheld_for_correlation(run: RunSummary) -> bool:
    """The run had the requests the sample rule asks for, but correlated: its SLO percentile withheld."""
    if run.status != "done" or run.stats is None:
        return False
    interval = run.stats.slo.interval
    return (interval.needed is not None and interval.n >= interval.needed and interval.correlation is not None
            and interval.correlation.inflation > 1.0 and not interval.enough)


def main(results_dir: Path) -> int:
    problems: list[str] = []
    for name in ("report.html", "summary.md", "summary.json"):
        if not (results_dir / name).is_file():
            problems.append(f"{results_dir / name} is missing")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    try:
        summary = read_summary(results_dir)
    except SchemaError as exc:
        print(f"smoke report check failed: {exc}", file=sys.stderr)
        return 1
    problems = problems_in(summary)
    if problems:
        print("smoke report check failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    verdicts = sorted(((v.server, v.protocol), v) for v in summary.verdicts)
    judged = sum(v.max_rate_under_slo is not None or v.first_miss_rate is not None for _, v in verdicts)
    rest = "" if judged == len(verdicts) else " (the rest withheld for correlated latencies)"
    print(f"smoke report OK: {len(verdicts)} verdicts in {results_dir / 'summary.json'}, {judged} judged "
          f"at {summary.slo.describe()}{rest}")
    for pair, verdict in verdicts:
        print(
            f"  {pair[0]:<10} {pair[1]:<11} max rate under SLO: {verdict.max_rate_under_slo}, first miss: "
            f"{verdict.first_miss_rate} (p99 there: {verdict.p99_at_max_rate_ms} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/smoke")))
