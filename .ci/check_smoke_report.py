"""CI gate after the tests: the smoke matrix produced a report whose verdicts are filled by real answers.

For each of the 9 server x protocol pairs the report must hold (else exit 1, listing every problem):
- ok records: every run of the pair answered requests (`ok` > 0) and its error rate is within the
  SLO's failure limit, so a chain that fails every request cannot pass;
- a filled verdict: the sweep line was judged, i.e. a max rate under the SLO with its p99 (enough
  requests for the SLO percentile, see analysis/README.md), or a measured miss at its lowest rate;
  not a null for want of usable cells or of requests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

EXPECTED_PAIRS = {
    (s, p) for s in ("tfserving", "torchserve", "triton") for p in ("rest-json", "rest-binary", "grpc")
}
VERDICT_FIELDS = ("max_rate_under_slo", "p99_at_max_rate_ms", "half_rate", "p99_at_half_rate_ms")


def problems_in(summary: dict, *, allow_generator_invalid: bool = False) -> list[str]:
    """Everything wrong with a smoke report's summary.json (empty when it passes).

    `allow_generator_invalid` (for tests on a shared, overloaded machine, never for CI): a pair whose
    every run finished but was marked generator-invalid (the load generator could not keep its Poisson
    schedule: a property of the machine, not of the servers) may leave its verdict unfilled.
    """
    problems: list[str] = []
    limit = float((summary.get("slo") or {}).get("max_failure_rate", 0.01))
    verdicts = {(v["server"], v["protocol"]): v for v in summary.get("verdicts", [])}
    for pair in sorted(EXPECTED_PAIRS - verdicts.keys()):
        problems.append(f"no verdict for {pair[0]} {pair[1]}")
    runs: dict[tuple[str, str], list[dict]] = {}
    for run in summary.get("runs", []):
        runs.setdefault((run["server"], run["protocol"]), []).append(run)
    for pair in sorted(EXPECTED_PAIRS):
        name = f"{pair[0]} {pair[1]}"
        if not runs.get(pair):
            problems.append(f"{name}: no runs")
        for run in runs.get(pair, []):
            where = f"{name}: run {run['cell_id']}"
            if not run.get("ok"):
                problems.append(f"{where} has no ok responses ({run.get('errors')} errors)")
            elif run.get("error_rate", 0.0) > limit:
                problems.append(f"{where} error rate {run['error_rate']:.1%} > {limit:.0%}")
    for pair, verdict in sorted(verdicts.items()):
        name = f"{pair[0]} {pair[1]}"
        for field in VERDICT_FIELDS:
            if field not in verdict:
                problems.append(f"{name}: verdict field {field} missing")
        if verdict.get("max_rate_under_slo") is not None:
            if verdict.get("p99_at_max_rate_ms") is None:
                problems.append(f"{name}: a max rate under the SLO without its p99")
        elif verdict.get("first_miss_rate") is None:
            pair_runs = runs.get(pair, [])
            busy = bool(pair_runs) and all(
                r.get("status") == "done" and r.get("generator_valid") is False for r in pair_runs
            )
            if allow_generator_invalid and busy:
                continue
            problems.append(
                f"{name}: verdict not filled: {verdict.get('max_rate_under_slo_note') or 'no reason given'}"
            )
    if not summary.get("tfserving_kind"):
        problems.append("summary.json does not say which TF Serving kind ran")
    return problems


def main(results_dir: Path) -> int:
    problems: list[str] = []
    for name in ("report.html", "summary.md", "summary.json"):
        if not (results_dir / name).is_file():
            problems.append(f"{results_dir / name} is missing")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    summary = json.loads((results_dir / "summary.json").read_text())
    problems = problems_in(summary)
    if problems:
        print("smoke report check failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    verdicts = sorted(((v["server"], v["protocol"]), v) for v in summary["verdicts"])
    print(f"smoke report OK: {len(verdicts)} verdicts in {results_dir / 'summary.json'}")
    for pair, verdict in verdicts:
        print(
            f"  {pair[0]:<10} {pair[1]:<11} max rate under SLO: {verdict['max_rate_under_slo']} "
            f"(p99 there: {verdict['p99_at_max_rate_ms']} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/smoke")))
