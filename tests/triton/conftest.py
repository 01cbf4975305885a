"""Triton's own tests: the session's shared Triton (tests/conftest.py `small_stack`, default settings) and
one more, started once, with the server configs that change what Triton does: dynamic batching (a
50 ms queue delay, preferred batch 8) and the local response cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.artifacts import ArtifactLayout
from serving import Ports, ServerSettings, Stack, up

CONFIGURED = ServerSettings(
    triton_dynamic_batching=True,
    triton_max_queue_delay_us=50_000,
    triton_preferred_batch_sizes=(8,),
    triton_response_cache=True,
    triton_cache_mb=16,
)


@pytest.fixture(scope="session")
def configured_triton(
    small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = up(small_artifacts, servers=["triton"], settings=CONFIGURED, ports=Ports.free(),
               state_dir=tmp_path_factory.mktemp("configured-triton"), timeout_s=240)
    try:
        yield stack
    finally:
        stack.down()
