"""An external target's matrix reads back from the manifest's copy of it: resuming a killed or
interrupted run compares the two (inferload/runner.py), so a copy that no longer validates made every
external matrix unresumable ("its manifest.json is not one this version can read")."""

from __future__ import annotations

import pytest

from inferload.experiments import Experiment, ExperimentError, parse_experiment

MATRIX = """\
name: round-trip
model: {{classes: 64, features: 1024, seed: 0}}
servers: [torchserve]
protocols: [rest-json, grpc]
load: {{mode: open, rates: [20]}}
batch_sizes: [1]
warmup_s: 0
duration_s: 1
calibration: {{enabled: false}}   # drift checks are tested in tests/experiments/test_drift_is_measured.py;
server_warmup: {{enabled: false}} # here they would only add their seconds
target:
  kind: external
  model_name: linear
  servers:
    torchserve:
      rest: {scheme}://serving-box:8080
      grpc: {grpc}serving-box:7070
      management: {scheme}://serving-box:8081
{security}"""


@pytest.mark.parametrize("scheme, grpc", [("http", ""), ("https", "grpcs://")])
def test_the_manifests_copy_of_an_external_matrix_validates_again(scheme: str, grpc: str) -> None:
    experiment = parse_experiment(MATRIX.format(scheme=scheme, grpc=grpc, security=""))
    copy = experiment.model_dump(mode="json")  # what manifest.json keeps
    assert Experiment.model_validate(copy) == experiment


def test_a_tls_setting_that_contradicts_the_urls_is_still_refused() -> None:
    security = "      security: {tls: true}\n"
    with pytest.raises(ExperimentError, match="TLS is said by the URLs"):
        parse_experiment(MATRIX.format(scheme="http", grpc="", security=security))
