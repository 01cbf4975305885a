"""The arrival schedule is Poisson at the requested rate, seeded, and reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from loadtest import ConstantArrivals, PoissonArrivals, StepArrivals, ramp, schedule_ns, stream_seed


@pytest.mark.parametrize("rate", [50.0, 1000.0, 20000.0])
def test_poisson_gaps_pass_a_kolmogorov_smirnov_test_for_the_exponential(rate: float) -> None:
    offsets = schedule_ns(PoissonArrivals(rate, seed=3), duration_s=5000 / rate)
    gaps_s = np.diff(offsets) / 1e9
    result = stats.kstest(gaps_s, "expon", args=(0, 1 / rate))
    assert result.pvalue > 0.01, result
    # n ~ 5000 arrivals: the count's standard deviation is ~1.4 %
    assert len(offsets) == pytest.approx(5000, rel=0.05)


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    a = schedule_ns(PoissonArrivals(100, seed=1), 2)
    b = schedule_ns(PoissonArrivals(100, seed=1), 2)
    c = schedule_ns(PoissonArrivals(100, seed=2), 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[: len(c)], c[: len(a)])


def test_stream_seeds_give_independent_streams_that_sum_to_the_total_rate() -> None:
    """Two processes at rate/2 each: merged gaps are exponential at the total rate."""
    merged = np.sort(
        np.concatenate([schedule_ns(PoissonArrivals(100, stream_seed(5, k)), 40) for k in range(2)])
    )
    assert len(merged) / 40 == pytest.approx(200, rel=0.05)
    assert stats.kstest(np.diff(merged) / 1e9, "expon", args=(0, 1 / 200)).pvalue > 0.01


def test_constant_arrivals_are_evenly_spaced() -> None:
    offsets = schedule_ns(ConstantArrivals(4), 1)
    assert offsets.tolist() == [0, 250_000_000, 500_000_000, 750_000_000]


def test_step_arrivals_follow_each_segment_rate() -> None:
    offsets = schedule_ns(StepArrivals(((0, 100.0), (10, 400.0)), seed=2), 20) / 1e9
    first, second = np.sum(offsets < 10), np.sum(offsets >= 10)
    assert first / 10 == pytest.approx(100, rel=0.1)
    assert second / 10 == pytest.approx(400, rel=0.1)


def test_ramp_is_a_staircase_between_the_rates() -> None:
    steps = ramp(100, 300, 10, steps=4)
    assert [s for s, _ in steps] == [0, 2.5, 5.0, 7.5]
    assert [r for _, r in steps] == [125, 175, 225, 275]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PoissonArrivals(0), "rate must be > 0"),
        (lambda: PoissonArrivals(-5), "rate must be > 0"),
        (lambda: ConstantArrivals(0), "rate must be > 0"),
        (lambda: StepArrivals(((1, 10.0),)), "start at 0"),
        (lambda: StepArrivals(((0, 10.0), (0, 20.0))), "increase"),
    ],
)
def test_bad_arrival_parameters_are_refused(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
