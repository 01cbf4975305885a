"""Fixtures: a running tfs-compat on the small model, its reference inputs and class ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tfs_compat_server import RunningServer, start_tfs_compat, stop

from models.artifacts import ArtifactLayout
from models.linear import make_inputs, predict


@pytest.fixture(scope="package")
def tfs_compat(
    small_artifacts: ArtifactLayout, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """tfs-compat without batching, metrics on: the session's shared one (tests/conftest.py small_stack,
    one tfs-compat per session), or, where a real tensorflow_model_server runs there, one of our own.
    The tests only send requests: they leave it as they found it."""
    stack = request.getfixturevalue("small_stack")
    if stack.tfserving_kind == "tfs-compat":
        info = stack.servers["tfserving"]
        yield RunningServer(None, stack.ports.tfserving_rest, stack.ports.tfserving_grpc, Path(info.log_file))
        return
    server = start_tfs_compat(small_artifacts.tf_base_path, tmp_path_factory.mktemp("tfs_compat_logs"))
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture(scope="session")
def weights(small_artifacts: ArtifactLayout) -> np.ndarray:
    return small_artifacts.spec().weights()


@pytest.fixture(scope="session")
def inputs(small_artifacts: ArtifactLayout) -> np.ndarray:
    """Five distinct instances of the small model's width."""
    return make_inputs(small_artifacts.spec().features, 5, seed=7)


@pytest.fixture(scope="session")
def expected_ids(weights: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    return predict(weights, inputs)
