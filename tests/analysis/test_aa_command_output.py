"""What `inferload aa` prints once its cells ran: the A/A figure of each metric, read from the results
directory (inferload/commands/aa.py `aa_lines`)."""

from __future__ import annotations

from pathlib import Path

from synthetic_results import ResultsBuilder

from inferload.commands.aa import aa_lines


def test_the_a_a_lines_name_the_pairs_and_every_metric(tmp_path: Path) -> None:
    """One line twinned at 3 rates over 2 repetitions, both arms in the same round each time: 6 pairs,
    the arms 10 ms and 11 ms; every metric gets a line, the max rate under the SLO among them."""
    results = ResultsBuilder(tmp_path / "run")
    for repetition in range(2):
        for k, rate in enumerate((40, 80, 160)):
            round_index = 3 * repetition + k
            results.cell(server="tfserving", rate=rate, latency_ms=10.0, repetition=repetition,
                         round_index=round_index, arm="a")
            results.cell(server="tfserving", rate=rate, latency_ms=11.0, repetition=repetition,
                         round_index=round_index, arm="b")
    lines = aa_lines(results.root)
    assert lines[0].startswith("A/A check (6 pairs of arms a and b")
    assert any(line.strip().startswith("p50 latency: differences below") for line in lines)
    assert any("max rate under the SLO" in line for line in lines)
