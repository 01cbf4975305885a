"""Topology test fixtures: nginx (skipped only where this machine cannot have it)."""

from __future__ import annotations

import pytest

from serving.balancer import BalancerError, nginx_binary


@pytest.fixture(scope="session")
def nginx() -> str:
    """The nginx binary; `make setup` installs it. Skips only when this machine has none."""
    try:
        return nginx_binary()
    except BalancerError as exc:
        pytest.skip(f"{exc} (`make setup` installs it as root where apt-get exists)")
