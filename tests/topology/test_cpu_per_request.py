"""Server CPU per ok request and per prediction, by hand on known runs written through the formats' own
definitions (loadtest's RecordWriter, serving.metrics_file's header and ServerSample), and the gRPC-vs-REST
CPU verdict on known rows."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from analysis.stats import Slo, summarize_run
from analysis.topology import CpuRow, cpu_cost, cpu_verdicts
from loadtest import RecordWriter, RequestRecord, RunHeader
from serving.metrics_file import METRICS_FILE, MonitoredServer, ServerSample, header

S = 1_000_000_000
START, END = 10 * S, 20 * S  # the measuring window


def write_run(run_dir: Path, cpu: dict[str, tuple[float, float]], *, batch: int = 4) -> Path:
    """100 ok requests done inside the window (one every 0.1 s, 5 ms each); CPU samples 0.5 s before
    the window and 0.5 s after it, per monitored name: (cpu_seconds before, cpu_seconds after)."""
    run_dir.mkdir(parents=True)
    settings = {"server": "tfserving", "protocol": "grpc", "batch": batch, "mode": "open", "rate": 10.0}
    run_header = RunHeader(run="r", stream=0, settings=settings, measure_start_ns=START, measure_end_ns=END)
    with RecordWriter(run_dir / "requests.0.jsonl", run_header) as writer:
        for seq in range(100):
            t = START + seq * S // 10
            writer.add(RequestRecord(seq, 0, "tfserving", "grpc", batch, t, t, t + 5_000_000, 100, 50,
                                     "ok", 0, None))
    servers = [MonitoredServer(name, "tfs-compat", None, pid=1) for name in cpu]
    lines = [json.dumps(header(servers, 0.5))]
    for t_ns, index in ((START - S // 2, 0), (END + S // 2, 1)):
        for name, seconds in cpu.items():
            sample = ServerSample(t_ns, name, "nginx" if name == "nginx" else "tfs-compat", "psutil", 50.0,
                                  seconds[index], 10**8)
            lines.append(json.dumps(asdict(sample)))
    (run_dir / METRICS_FILE).write_text("\n".join(lines) + "\n")
    return run_dir


@pytest.mark.parametrize(
    ("cpu", "ms_per_ok", "ms_per_prediction", "replicas", "balancer_ms"),
    [
        # one server: 103.3 - 100.0 = 3.3 s of CPU for 100 ok requests = 33 ms each; batch 4: 8.25 ms
        ({"tfserving": (100.0, 103.3)}, 33.0, 8.25, 1, None),
        # two replicas add up: (3.3 + 1.1) s / 100 = 44 ms; nginx apart: 0.5 s / 100 = 5 ms
        ({"tfserving-1": (100.0, 103.3), "tfserving-2": (50.0, 51.1), "nginx": (2.0, 2.5)},
         44.0, 11.0, 2, 5.0),
        # one replica behind nginx: its CPU only, 2.2 s / 100 = 22 ms; nginx 0.3 s / 100 = 3 ms
        ({"tfserving": (7.0, 9.2), "nginx": (1.0, 1.3)}, 22.0, 5.5, 1, 3.0),
    ],
)
def test_cpu_per_request_by_hand(tmp_path: Path, cpu: dict[str, tuple[float, float]], ms_per_ok: float,
                                 ms_per_prediction: float, replicas: int, balancer_ms: float | None) -> None:
    run = summarize_run(write_run(tmp_path / "run", cpu), Slo())
    cost = cpu_cost(run)
    assert cost is not None and cost.ok == 100 and cost.replicas == replicas
    assert cost.ms_per_ok == pytest.approx(ms_per_ok)
    assert cost.ms_per_prediction == pytest.approx(ms_per_prediction)
    if balancer_ms is None:
        assert cost.balancer_ms_per_ok is None
    else:
        assert cost.balancer_ms_per_ok == pytest.approx(balancer_ms)
    if replicas == 1:  # the same figure as the server-side view's (computed there once)
        assert run.server_side is not None and run.server_side.cpu_seconds_per_ok is not None
        assert 1000 * run.server_side.cpu_seconds_per_ok == pytest.approx(ms_per_ok)


def row(protocol: str, rate: float, *ms: float) -> CpuRow:
    return CpuRow("tfserving", protocol, "default", 1, rate, ms, ms, ())


def test_the_verdict_says_more_or_less_only_where_repetitions_separate() -> None:
    rows = [row("grpc", 10, 2.0, 2.2), row("grpc", 100, 4.0, 4.4),
            row("rest-binary", 10, 3.0, 3.1), row("rest-binary", 100, 3.9, 4.5),
            row("rest-json", 10, 9.0, 9.5), row("rest-json", 100, 9.0, 9.4)]
    lines = cpu_verdicts(rows)
    assert len(lines) == 2
    binary, json_line = lines
    assert binary == ("tfserving [default] batch 1, server CPU ms per request, gRPC vs rest-binary: "
                      "10/s 2.1 vs 3.05 (less); 100/s 4.2 vs 4.2 (about the same (repetitions overlap))"
                      " — gRPC's share grows with the rate")
    assert "gRPC vs rest-json: 10/s 2.1 vs 9.25 (less); 100/s 4.2 vs 9.2 (less)" in json_line


def test_one_repetition_is_said_to_have_no_interval() -> None:
    lines = cpu_verdicts([row("grpc", 10, 5.0), row("rest-json", 10, 4.0)])
    assert lines == ["tfserving [default] batch 1, server CPU ms per request, gRPC vs rest-json: "
                     "10/s 5 vs 4 (more (one repetition: no interval))"]
