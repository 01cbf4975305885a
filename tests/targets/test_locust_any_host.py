"""`locust -f loadtest/` measures servers on another host: the 6 user classes, headless, against real
servers on the namespace host's address. REST hosts come through `--host`, gRPC ones through the
INFERLOAD_<SERVER>_HOST / _GRPC_PORT environment variables; the feature count is discovered from
the server (no --features), and both Locust's CSV and our records show only successful requests.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from remote_hosts import RemoteServers

import loadtest
from loadtest import read_run

LOADTEST_DIR = str(Path(loadtest.__file__).parent)
CLASS_NAMES = {
    ("tfserving", "rest-json"): "TFServingRestJson",
    ("tfserving", "rest-binary"): "TFServingRestBinary",
    ("tfserving", "grpc"): "TFServingGrpc",
    ("torchserve", "rest-json"): "TorchServeRestJson",
    ("torchserve", "rest-binary"): "TorchServeRestBinary",
    ("torchserve", "grpc"): "TorchServeGrpc",
}
pytestmark = [pytest.mark.servers, pytest.mark.slow]


def target(remote: RemoteServers, server: str, protocol: str) -> tuple[list[str], dict[str, str]]:
    """(--host arguments, environment) that aim a user class at the remote server."""
    port = remote.port(server, protocol)
    prefix = f"INFERLOAD_{server.upper()}"
    env = {f"{prefix}_METADATA_URL": remote.metadata_url(server)}
    if protocol == "grpc":
        env.update({f"{prefix}_HOST": remote.address, f"{prefix}_GRPC_PORT": str(port)})
        return [], env
    return ["--host", f"http://{remote.address}:{port}"], env


@pytest.mark.parametrize(("server", "protocol"), sorted(CLASS_NAMES))
def test_locust_users_load_the_remote_server_and_record_only_successes(
    remote_servers: RemoteServers, small_features: int, tmp_path: Path, server: str, protocol: str
) -> None:
    host_args, env = target(remote_servers, server, protocol)
    command = [
        sys.executable, "-m", "locust", "-f", LOADTEST_DIR, "--headless", "--only-summary",
        "-u", "1", "-r", "1", "-t", "2s", "--rate", "15", *host_args,
        "--csv", str(tmp_path / "run"), "--records-dir", str(tmp_path / "records"),
        CLASS_NAMES[(server, protocol)],
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "run_stats.csv", newline="") as handle:
        row = next(row for row in csv.DictReader(handle) if row["Name"] == server)
    assert row["Type"] == protocol
    assert int(row["Request Count"]) >= 10 and int(row["Failure Count"]) == 0
    run = read_run(tmp_path / "records")
    assert run.header.settings["host"] == remote_servers.address
    assert run.header.settings["features"] == small_features  # discovered from the server
    assert set(run.records["status"]) == {"ok"} and len(run.records) >= 10
