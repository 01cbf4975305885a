"""Every run says whether the generator kept its schedule, and why not (LoadGen-style verdict)."""

from __future__ import annotations

import pytest

from loadtest import LoadSettings, RecordWriter, RequestRecord, RunHeader, read_run
from loadtest._schema import stream_path
from loadtest._summary import summarize

MS = 1_000_000
S = 1_000_000_000


def write_run(tmp_path, *, rate: float, lateness_ms: float, dropped_every: int = 0, seconds: int = 10):
    """Evenly spaced arrivals at `rate` for `seconds`, each sent `lateness_ms` late, done 5 ms later."""
    gap = int(S / rate)
    with RecordWriter(stream_path(tmp_path, 0), RunHeader("t", 0, {}, 0, seconds * S)) as writer:
        for k in range(int(rate * seconds)):
            scheduled = k * gap
            dropped = dropped_every and k % dropped_every == 0
            sent = scheduled if dropped else scheduled + int(lateness_ms * MS)
            writer.add(
                RequestRecord(
                    seq=k,
                    stream=0,
                    server="torchserve",
                    protocol="grpc",
                    batch=1,
                    scheduled_ns=scheduled,
                    sent_ns=sent,
                    done_ns=sent if dropped else sent + 5 * MS,
                    bytes_out=10,
                    bytes_in=10,
                    status="dropped" if dropped else "ok",
                    code=0,
                    error=None,
                )
            )
    return read_run(tmp_path)


def settings(rate: float = 100.0) -> LoadSettings:
    return LoadSettings(
        server="torchserve", protocol="grpc", rate=rate, duration_s=10, lateness_p99_limit_ms=5.0
    )


def test_a_run_that_kept_its_schedule_is_valid(tmp_path) -> None:
    summary = summarize(
        settings(), write_run(tmp_path, rate=100, lateness_ms=0.2), cpu_percent=[20.0], interrupted=False
    )
    assert summary.valid and summary.invalid_reasons == []
    assert summary.achieved_send_rate == pytest.approx(100)
    assert summary.counts == {"ok": 1000, "error": 0, "timeout": 0, "dropped": 0}
    assert summary.lateness_ms["p99"] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("lateness_ms", "dropped_every", "cpu", "interrupted", "reason"),
    [
        (8.0, 0, 20.0, False, "lateness p99 8.00 ms is above the limit 5.0 ms"),
        (0.2, 0, 99.0, False, "generator CPU saturated"),
        (0.2, 0, 20.0, True, "interrupted"),
    ],
)
def test_invalid_runs_say_why(tmp_path, lateness_ms, dropped_every, cpu, interrupted, reason) -> None:
    run = write_run(tmp_path, rate=100, lateness_ms=lateness_ms, dropped_every=dropped_every)
    summary = summarize(settings(), run, cpu_percent=[cpu], interrupted=interrupted)
    assert not summary.valid
    assert any(reason in r for r in summary.invalid_reasons), summary.invalid_reasons


def test_arrivals_dropped_at_the_in_flight_bound_are_server_overload_not_generator_fault(tmp_path) -> None:
    """Every 5th arrival dropped: the schedule was kept (valid), the drops are counted as such."""
    run = write_run(tmp_path, rate=100, lateness_ms=0.2, dropped_every=5)
    summary = summarize(settings(), run, cpu_percent=[20.0], interrupted=False)
    assert summary.valid, summary.invalid_reasons
    assert summary.counts["dropped"] == 200
    assert summary.achieved_arrival_rate == pytest.approx(100)
    assert summary.achieved_send_rate == pytest.approx(80)


def test_a_generator_that_fell_behind_its_schedule_is_invalid(tmp_path) -> None:
    """Arrivals at 80/s against a 100/s target: beyond 5 % and beyond 3 sigma of Poisson noise."""
    run = write_run(tmp_path, rate=80, lateness_ms=0.2)
    summary = summarize(settings(rate=100), run, cpu_percent=[20.0], interrupted=False)
    assert not summary.valid
    reason = "arrival rate 80.0/s is more than 5% below the target 100/s"
    assert any(reason in r for r in summary.invalid_reasons)


def test_load_json_is_written_with_its_schema(tmp_path) -> None:
    summary = summarize(
        settings(), write_run(tmp_path, rate=100, lateness_ms=0.2), cpu_percent=[1.0], interrupted=False
    )
    text = summary.write(tmp_path / "load.json").read_text()
    assert text.lstrip().startswith('{\n  "schema": "inferload.load"')
