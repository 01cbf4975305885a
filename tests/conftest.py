"""Shared fixtures for every test area: one session-wide small export and one running server stack per
kind on it (add nothing area-specific here).

- `small_stack`: TF Serving (tfs-compat here), TorchServe and Triton, default settings, free loopback
  ports;
  tests/tfs_compat use its tfs-compat too. A test that only sends requests uses the shared stack; one
  that stops, restarts or reconfigures a server starts its own (tests/serving/serving_stacks.py).
- A fixture that starts (or hands out) a server belongs in tests/lanes.py's SERVER_FIXTURES, and a test
  that starts a server carries @pytest.mark.servers (and `slow` over ~20 s): `make test-fast` runs the
  rest. A test that needs something the machine may lack asks tests/capabilities.py (`needs` marker).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from models.artifacts import ArtifactLayout
from models.export import export_all
from models.linear import LinearSpec

pytest_plugins = ["lanes"]  # the lanes' rules: markers kept honest, capabilities (tests/lanes.py)


@pytest.fixture(scope="session")
def small_artifacts(tmp_path_factory: pytest.TempPathFactory) -> ArtifactLayout:
    """The small model (64 classes x 1,024 features, seed 0) exported once: SavedModel, .mar, model.json."""
    return export_all(LinearSpec(classes=64, features=1024, seed=0), tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def small_stack(small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """TF Serving (real or tfs-compat), TorchServe and Triton on the small model, default settings, free
    loopback ports: one start (seconds each on 2 cores) shared by every module whose tests leave the
    servers as they found them. Tests that stop, restart or reconfigure a server start their own."""
    from serving import Ports, ServerSettings, up

    stack = up(
        small_artifacts,
        servers=("tfserving", "torchserve", "triton"),
        settings=ServerSettings(),
        ports=Ports.free(),
        state_dir=tmp_path_factory.mktemp("small-stack"),
        timeout_s=240,
    )
    try:
        yield stack
    finally:
        stack.down()
