"""Fixtures for the fault tests: a namespace "server host" whose link the tests damage, with a real
TorchServe on it (small model), and the CLI as a user runs it from the load side.

The host is this area's own (prefix `<INFERLOAD_NETNS_PREFIX>f`), so a loss rule, a shaped or a cut
link never reaches another area's servers. TorchServe serves REST and gRPC, so one server start
covers both transports. Its address is in 198.18.0.0/15; everything is removed at the end of the
session, also on failure (tests/netns.py), and each fault is undone by the test that made it
(hostile_link.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
from capabilities import need
from fault_host import REPO, START_TIMEOUT_S, FaultHost, inferload
from netns import default_prefix, netns_host


@pytest.fixture(scope="session")
def fault_host(small_artifacts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultHost]:
    need("netns", "tc")
    state_dir = tmp_path_factory.mktemp("fault-host")
    with netns_host(f"{default_prefix()}f") as host:
        up = host.run(
            [sys.executable, "-m", "inferload", "serve", "up", "--servers", "torchserve",
             "--artifacts", str(small_artifacts.root), "--bind", host.address, "--free-ports",
             "--state-dir", str(state_dir), "--timeout", str(START_TIMEOUT_S - 60), "--cpus", "all"],
            cwd=REPO, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        try:
            assert up.returncode == 0, f"serve up in the namespace failed:\n{up.stdout}\n{up.stderr}"
            state = json.loads((state_dir / "servers.json").read_text())
            features = json.loads((small_artifacts.root / "model.json").read_text())["features"]
            fault_host = FaultHost(host=host, ports=state["ports"], features=int(features))
            for protocol in ("rest-json", "grpc"):  # a fresh server's first answers are slow: not in a test
                warm = inferload("load", *fault_host.load_args(protocol), "--concurrency", "2",
                                 "--duration", "1", "--warmup", "0", "--quiet",
                                 "--out", str(state_dir / f"warm-{protocol}"))
                assert warm.returncode == 0, warm.stdout + warm.stderr
            yield fault_host
        finally:
            host.run([sys.executable, "-m", "inferload", "serve", "down", "--state-dir", str(state_dir)],
                     cwd=REPO, capture_output=True, timeout=120, check=False)
