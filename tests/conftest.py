"""Shared fixtures for every test area (one session-wide small export; add nothing area-specific here)."""

from __future__ import annotations

import pytest

from models.artifacts import ArtifactLayout
from models.export import export_all
from models.linear import LinearSpec


@pytest.fixture(scope="session")
def small_artifacts(tmp_path_factory: pytest.TempPathFactory) -> ArtifactLayout:
    """The small model (64 classes x 1,024 features, seed 0) exported once: SavedModel, .mar, model.json."""
    return export_all(LinearSpec(classes=64, features=1024, seed=0), tmp_path_factory.mktemp("artifacts"))
