"""A matrix with a balancer on a machine without nginx stops before anything is exported or started,
naming the package to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.experiments import ExperimentError, parse_experiment
from inferload.runner import run_experiment
from serving import balancer
from serving.ports import Ports

MATRIX = """\
name: no-nginx
model: {classes: 64, features: 1024, seed: 0}
servers: [tfserving]
protocols: [grpc]
load: {mode: open, rates: [10]}
batch_sizes: [1]
server_configs:
  - name: rr_1
    balancer: {kind: nginx}
warmup_s: 0
duration_s: 1
"""


def test_missing_nginx_is_a_clear_error_before_any_start(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setattr(balancer.shutil, "which", lambda name: None)
    monkeypatch.setattr(balancer, "NGINX_LOCATIONS", ())
    expected = r"tfserving-grpc-b1-rr_1-r10-rep0.*nginx not found.*apt-get install nginx"
    with pytest.raises(ExperimentError, match=expected):
        run_experiment(parse_experiment(MATRIX), tmp_path / "out", progress=False, measure_floor=False,
                       artifacts_dir=tmp_path / "never-exported", ports=Ports.free())
    assert not (tmp_path / "never-exported").exists()
