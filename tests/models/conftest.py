"""Fixtures of the models/ tests: the small model's weights and the handler loaded from the real .mar."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from torchserve_batch import make_context, unpack_mar

from models.artifacts import ArtifactLayout
from models.linear import LinearSpec

SMALL = LinearSpec(classes=64, features=1024, seed=0)


@pytest.fixture(scope="session")
def small_weights() -> np.ndarray:
    return SMALL.weights()


@pytest.fixture(scope="session")
def mar_dir(small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small .mar unpacked, as TorchServe unpacks it into the worker's model_dir."""
    return unpack_mar(small_artifacts.mar, tmp_path_factory.mktemp("mar"))


@pytest.fixture(scope="session")
def handler_module(mar_dir: Path) -> ModuleType:
    """The handler file from inside the archive, imported as a bare module like TorchServe's worker does."""
    spec = importlib.util.spec_from_file_location(
        "torchserve_handler_under_test", mar_dir / "torchserve_handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(handler_module: ModuleType, mar_dir: Path):
    """A freshly initialized handler instance (initialize() reads weights.npy from the model dir)."""
    instance = handler_module.LinearHandler()
    instance.initialize(make_context(mar_dir))
    return instance
