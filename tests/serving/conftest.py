"""Fixtures for the server tests: real servers on free loopback ports, always stopped again."""

from __future__ import annotations

import numpy as np
import pytest
from serving_stacks import SMALL

from models.linear import make_inputs, predict
from serving import Stack


@pytest.fixture(scope="session")
def both_servers(small_stack: Stack) -> Stack:
    """TF Serving (real or tfs-compat) and TorchServe with default settings: the session's shared pair."""
    return small_stack


@pytest.fixture(scope="session")
def inputs() -> np.ndarray:
    """Four distinct small-model inputs."""
    return make_inputs(SMALL.features, 4, seed=7)


@pytest.fixture(scope="session")
def expected(inputs: np.ndarray) -> list[int]:
    """The NumPy reference class ids of `inputs`."""
    return predict(SMALL.weights(), inputs).tolist()
