"""Rendered deploy/kubernetes manifests for the tests of this folder (no cluster, no kubectl needed)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from k8s_render import JOB, KUBERNETES, ROOT, render


def _repository_packages_first() -> None:
    """pytest puts tests/ on sys.path, where tests/loadtest, tests/serving, ... are folders without
    __init__.py: a plain `import loadtest` then finds a namespace package there before the editable
    install's finder, and loadtest/__init__.py never runs (`from loadtest import split_host`, as
    inferload.experiments does, fails). The repository root first on the path fixes that."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for name in ("loadtest", "serving", "models", "analysis", "inferload"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None) is None:
            del sys.modules[name]  # a namespace stand-in: import the real package next time


_repository_packages_first()


@pytest.fixture(scope="session")
def stack_docs() -> list[dict[str, Any]]:
    """deploy/kubernetes: the servers, Locust, their ConfigMaps."""
    return render(KUBERNETES)


@pytest.fixture(scope="session")
def job_docs() -> list[dict[str, Any]]:
    """deploy/kubernetes/inferload-job: `inferload run` in the cluster."""
    return render(JOB)
