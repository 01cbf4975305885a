"""Fixtures: a running tfs-compat on the small model, its reference inputs and class ids."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from tfs_compat_server import RunningServer, start_tfs_compat, stop

from models.artifacts import ArtifactLayout
from models.linear import make_inputs, predict


@pytest.fixture(scope="package")
def tfs_compat(
    small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server without batching, shared by the test modules of this package (start-up costs seconds)."""
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
