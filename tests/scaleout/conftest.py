"""The three-host lab (tests/scaleout/lab_network.py) with TF Serving (tfs-compat) running on its server
host, shared by the scale-out tests of one session and always taken down again. The tests load its gRPC
endpoint only, so TorchServe (seconds to start and stop on 2 cores) is not started."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_network import ServerHost, lab
from netns import default_prefix

from models.artifacts import ArtifactLayout

REPO = Path(__file__).resolve().parents[2]
INFERLOAD = [sys.executable, "-m", "inferload"]
PREFIX = default_prefix(os.environ.get("INFERLOAD_NETNS_PREFIX", "h4"))  # and the xdist worker's number


@pytest.fixture(scope="session")
def three_hosts(
    small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerHost]:
    state = tmp_path_factory.mktemp("servers")
    with lab(PREFIX) as net:
        up = net.server.run([*INFERLOAD, "serve", "up", "--servers", "tfserving",
                             "--artifacts", str(small_artifacts.root), "--bind", net.server.address,
                             "--free-ports", "--cpus", "all",
                             "--state-dir", str(state), "--timeout", "240"],
                            capture_output=True, text=True, timeout=400, cwd=REPO)
        try:
            assert up.returncode == 0, up.stdout + up.stderr
            servers = json.loads((state / "servers.json").read_text())
            yield ServerHost(net, int(servers["ports"]["tfserving_grpc"]))
        finally:
            net.server.run([*INFERLOAD, "serve", "down", "--state-dir", str(state)], capture_output=True,
                           timeout=120, cwd=REPO)


