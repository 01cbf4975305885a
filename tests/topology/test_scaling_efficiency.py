"""Scaling efficiency = throughput at N / (N x throughput at 1), claimed only where both lines found
their limit (a rate that missed the SLO); tables of hand-worked cases on known sweep verdicts."""

from __future__ import annotations

import pytest

from analysis.repetitions import GroupKey
from analysis.topology import Topo, scaling_rows
from analysis.verdicts import SweepVerdict

TOPO = {"rr_1": Topo("rr_1", 1, "nginx", "round_robin", False),
        "rr_2": Topo("rr_2", 2, "nginx", "round_robin", False),
        "lc_2": Topo("lc_2", 2, "nginx", "least_conn", False),
        "single": Topo("single", 1, "none", "round_robin", False)}


def verdict(config: str, throughput: float, first_miss: float | None,
            excluded: tuple[str, ...] = ()) -> SweepVerdict:
    return SweepVerdict(GroupKey("torchserve", "grpc", config, 1, "open"), 80.0, None, 40.0, throughput,
                        throughput, 40.0, 10.0, None, (20.0, 40.0, 80.0, 160.0), excluded,
                        first_miss_rate=first_miss)


@pytest.mark.parametrize(
    ("one", "two", "efficiency", "note"),
    [
        ((100.0, 160.0), (150.0, 320.0), 0.75, None),      # 150 / (2 x 100)
        ((100.0, 160.0), (210.0, 320.0), 1.05, None),      # super-linear happens (caches, noise)
        ((100.0, 160.0), (150.0, None), None, "2 replica(s) met the SLO at every rate"),
        ((100.0, None), (150.0, 320.0), None, "1 replica(s) met the SLO at every rate"),
    ],
)
def test_efficiency_by_hand(one: tuple[float, float | None], two: tuple[float, float | None],
                            efficiency: float | None, note: str | None) -> None:
    rows = {r.config: r for r in scaling_rows([verdict("rr_1", *one), verdict("rr_2", *two)], TOPO)}
    assert set(rows) == {"rr_1", "rr_2"}
    assert rows["rr_2"].efficiency == (pytest.approx(efficiency) if efficiency is not None else None)
    assert (rows["rr_2"].note is None) == (note is None)
    if note is not None:
        assert note in (rows["rr_2"].note or "")


def test_a_line_whose_higher_rates_were_excluded_has_no_limit_and_says_why() -> None:
    """A search whose next step was generator-invalid found no miss: not "extend the rates"."""
    invalid = ("torchserve grpc [rr_1] batch 1 @ 80/s: generator lateness p99 26.34 ms is above the limit",)
    rows = {r.config: r for r in scaling_rows([verdict("rr_1", 60.0, None, invalid),
                                               verdict("rr_2", 90.0, 120.0)], TOPO)}
    assert rows["rr_2"].efficiency is None
    assert "1 replica(s): no usable rate missed the SLO" in (rows["rr_2"].note or "")
    assert "excluded (generator-invalid or failed)" in (rows["rr_2"].note or "")


def test_least_conn_at_two_is_judged_against_the_single_replica_behind_nginx() -> None:
    """With one upstream the policy makes no difference: rr_1 is lc_2's base; `single` (no nginx) is not."""
    rows = scaling_rows([verdict("rr_1", 100.0, 160.0), verdict("lc_2", 180.0, 320.0),
                         verdict("single", 120.0, 160.0)], TOPO)
    least = [r for r in rows if r.policy == "least_conn"]
    assert [(r.replicas, r.efficiency) for r in least] == [(2, pytest.approx(0.9))]
    assert all(r.config != "single" for r in rows)
