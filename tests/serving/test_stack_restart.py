"""A server that dies is seen as not alive, and `Stack.restart` brings it back on the same ports."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from serving_clients import torchserve_rest_binary
from serving_stacks import running_stack

from models.artifacts import ArtifactLayout

pytestmark = pytest.mark.servers


def test_killed_server_is_not_alive_until_restarted(
    small_artifacts: ArtifactLayout, tmp_path: Path, inputs: np.ndarray, expected: list[int]
) -> None:
    with running_stack(small_artifacts, tmp_path / "state", servers=("torchserve",)) as stack:
        old_pid = stack.servers["torchserve"].pid
        os.killpg(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while stack.alive("torchserve") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not stack.alive("torchserve")

        stack.restart("torchserve")

        assert stack.alive("torchserve")
        assert stack.servers["torchserve"].pid != old_pid
        assert torchserve_rest_binary(stack.ports, inputs) == expected
