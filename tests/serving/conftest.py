"""Fixtures for the server tests: real servers on free loopback ports, always stopped again."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from serving_stacks import SMALL, running_stack

from models.artifacts import ArtifactLayout
from models.linear import make_inputs, predict
from serving import Stack


@pytest.fixture(scope="session")
def both_servers(
    small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """TF Serving (real or tfs-compat) and TorchServe with default settings, shared by the session."""
    with running_stack(
        small_artifacts, tmp_path_factory.mktemp("both"), servers=("tfserving", "torchserve")
    ) as stack:
        yield stack


@pytest.fixture(scope="session")
def inputs() -> np.ndarray:
    """Four distinct small-model inputs."""
    return make_inputs(SMALL.features, 4, seed=7)


@pytest.fixture(scope="session")
def expected(inputs: np.ndarray) -> list[int]:
    """The NumPy reference class ids of `inputs`."""
    return predict(SMALL.weights(), inputs).tolist()
