"""TLS as a matrix axis, for real: the runner starts TF Serving (tfs-compat) once in plaintext and once
with gRPC over TLS (certificates made for this machine, never in the results), loads both lines the
same way, and the report gives the same line with and without TLS side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.artifacts import ArtifactLayout

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.servers, pytest.mark.slow]

MATRIX = """
name: tls-axis
model: {classes: 64, features: 1024, seed: 0}
servers: [tfserving]
protocols: [grpc]
load: {mode: open, rates: [25]}
batch_sizes: [1]
server_configs:
  - name: plain
  - name: tls
    tls: true
warmup_s: 0.5
duration_s: 3
calibration: {enabled: false}       # drift checks are tested in tests/experiments/test_drift_is_measured.py;
server_warmup: {enabled: false}     # here they would only add their seconds
lateness_limit_ms: 10000
cpus: {servers: all, load: all}
"""


def _inferload(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferload", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=400)


def test_the_same_line_with_and_without_tls_in_the_report(small_artifacts: ArtifactLayout,
                                                          tmp_path: Path) -> None:
    matrix = tmp_path / "tls-axis.yaml"
    matrix.write_text(MATRIX)
    out = tmp_path / "results"
    run = _inferload("run", str(matrix), "--out", str(out), "--no-floor", "--free-ports",
                     "--artifacts", str(small_artifacts.root))
    assert run.returncode == 0, run.stdout + run.stderr
    plain, tls = (json.loads((out / "cells" / f"tfserving-grpc-b1-{name}-r25-rep0" / "cell.json").read_text())
                  for name in ("plain", "tls"))
    for cell in (plain, tls):
        load = json.loads((out / "cells" / cell["cell_id"] / "load.json").read_text())
        assert load["counts"]["ok"] > 50 and load["counts"]["error"] == 0
    header = (out / "cells" / tls["cell_id"] / "requests.0.jsonl").read_text().splitlines()[0]
    assert json.loads(header)["settings"]["security"]["tls"] is True
    assert not list(out.rglob("*.key")), "no key file in the results"

    report = _inferload("report", str(out))
    assert report.returncode == 0, report.stdout + report.stderr
    summary = json.loads((out / "summary.json").read_text())
    (row,) = summary["topology"]["tls_added_latency"]
    assert (row["server"], row["protocol"], row["plain_config"], row["tls_config"]) == (
        "tfserving", "grpc", "plain", "tls")
    assert row["p50_without_ms"] > 0 and row["p50_with_ms"] > 0
    assert "The cost of TLS" in (out / "summary.md").read_text()
