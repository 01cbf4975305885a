"""Fixtures for the analysis tests: synthetic results directories (see synthetic_results.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_results import ResultsBuilder


@pytest.fixture
def results(tmp_path: Path) -> ResultsBuilder:
    """An empty experiment directory with a manifest (SLO: p99 <= 100 ms)."""
    return ResultsBuilder(tmp_path / "experiment")
