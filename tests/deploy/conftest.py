"""Rendered deploy/kubernetes manifests for the tests of this folder (no cluster, no kubectl needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from k8s_render import render

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
JOB = KUBERNETES / "inferload-job"


@pytest.fixture(scope="session")
def stack_docs() -> list[dict[str, Any]]:
    """deploy/kubernetes: the servers, Locust, their ConfigMaps."""
    return render(KUBERNETES)


@pytest.fixture(scope="session")
def job_docs() -> list[dict[str, Any]]:
    """deploy/kubernetes/inferload-job: `inferload run` in the cluster."""
    return render(JOB)
