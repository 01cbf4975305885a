"""All six server × protocol combinations answer with the NumPy reference class ids, single and batched."""

from __future__ import annotations

import numpy as np
import pytest
from serving_clients import CLIENTS

from serving import Stack

pytestmark = pytest.mark.servers


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize(("server", "protocol"), sorted(CLIENTS))
def test_answers_match_the_reference(
    both_servers: Stack, inputs: np.ndarray, expected: list[int], server: str, protocol: str, batch: int
) -> None:
    class_ids = CLIENTS[server, protocol](both_servers.ports, inputs[:batch])
    assert class_ids == expected[:batch]


def test_the_stack_says_which_tf_serving_ran(both_servers: Stack) -> None:
    assert both_servers.tfserving_kind in ("tensorflow_model_server", "tfs-compat")
    assert both_servers.info["tfserving_kind"] == both_servers.tfserving_kind
    assert (both_servers.state_dir / "servers.json").exists()


@pytest.mark.parametrize("server", ["tfserving", "torchserve"])
def test_servers_are_alive_and_healthy(both_servers: Stack, server: str) -> None:
    assert both_servers.alive(server)
    assert both_servers.healthy(server)
