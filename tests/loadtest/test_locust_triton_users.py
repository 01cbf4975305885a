"""The three Triton user classes run under `locust -f loadtest/` against a real Triton, each over its own
protocol, with the input width asked from Triton itself (V2 model metadata over REST and gRPC)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from locust_runs import run_locust

pytestmark = pytest.mark.servers

CLASSES = {"TritonRestJson": "rest-json", "TritonRestBinary": "rest-binary", "TritonGrpc": "grpc"}


def test_every_triton_class_sends_its_protocol_without_a_failure(servers, tmp_path: Path) -> None:
    ports = servers["triton"].ports
    env = {  # each class's default host follows these (no --host: it would apply to all three)
        "INFERLOAD_TRITON_REST_PORT": str(ports.triton_http),
        "INFERLOAD_TRITON_GRPC_PORT": str(ports.triton_grpc),
    }
    result = run_locust(
        tmp_path, "--headless", "--only-summary", "-u", "3", "-r", "3", "-t", "4s", "--rate", "60",
        "--csv", str(tmp_path / "run"), *CLASSES, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "run_stats.csv", newline="") as handle:
        rows = {row["Type"]: row for row in csv.DictReader(handle) if row["Name"] == "triton"}
    assert set(rows) == set(CLASSES.values())
    for protocol, row in rows.items():
        assert int(row["Request Count"]) > 10, (protocol, row)  # 20/s each for 4 s, on shared cores
        assert int(row["Failure Count"]) == 0, (protocol, row)
    # the width came from Triton's own description, over REST for the REST classes and gRPC for gRPC
    assert "triton grpc: 1024 features per instance, from the server's description" in result.stderr
    assert f"grpc://127.0.0.1:{ports.triton_grpc}" in result.stderr
    assert f"http://127.0.0.1:{ports.triton_http}" in result.stderr
