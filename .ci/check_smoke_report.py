"""CI gate after the tests: the smoke matrix produced a report whose verdicts are filled.

Every server x protocol pair must have a verdict entry whose fields are present, and each must
either have a value or say why not (the report's own contract), so an empty or broken analysis
stage fails CI instead of shipping a blank report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

EXPECTED_PAIRS = {(s, p) for s in ("tfserving", "torchserve") for p in ("rest-json", "rest-binary", "grpc")}
VERDICT_FIELDS = ("max_rate_under_slo", "p99_at_max_rate_ms", "half_rate", "p99_at_half_rate_ms")


def main(results_dir: Path) -> int:
    problems: list[str] = []
    for name in ("report.html", "summary.md", "summary.json"):
        if not (results_dir / name).is_file():
            problems.append(f"{results_dir / name} is missing")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    summary = json.loads((results_dir / "summary.json").read_text())
    verdicts = {(v["server"], v["protocol"]): v for v in summary["verdicts"]}
    for pair in sorted(EXPECTED_PAIRS - verdicts.keys()):
        problems.append(f"no verdict for {pair[0]} {pair[1]}")
    for pair, verdict in sorted(verdicts.items()):
        for field in VERDICT_FIELDS:
            if field not in verdict:
                problems.append(f"{pair}: verdict field {field} missing")
        if verdict.get("max_rate_under_slo") is None and not verdict.get("max_rate_under_slo_note"):
            problems.append(f"{pair}: max_rate_under_slo is null without a reason")
    if not summary.get("tfserving_kind"):
        problems.append("summary.json does not say which TF Serving kind ran")
    if problems:
        print("smoke report check failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"smoke report OK: {len(verdicts)} verdicts in {results_dir / 'summary.json'}")
    for pair, verdict in sorted(verdicts.items()):
        print(f"  {pair[0]:<10} {pair[1]:<11} max rate under SLO: {verdict['max_rate_under_slo']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/smoke")))
