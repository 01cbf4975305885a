"""Without --features or --artifacts, the Locust users ask the server how wide the model's input is.

TF Serving describes it in its model metadata (REST API), TorchServe through its management API
(our handler's describe_handle). The users print where the number came from.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from locust_runs import requests_and_failures, run_locust, users

from serving.ports import Ports

pytestmark = pytest.mark.servers


def locust(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return run_locust(cwd, "--headless", "--json", *args, env=env, timeout=timeout)


def description_url(servers, server: str) -> str:
    """TF Serving's REST API, or TorchServe's management API, of the test server."""
    ports = servers[server].ports
    port = ports.tfserving_rest if server == "tfserving" else ports.torchserve_management
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("user_class", "server", "protocol", "described_at"),
    [
        ("TFServingRestJson", "tfserving", "rest-json", "the target itself"),
        ("TFServingRestBinary", "tfserving", "rest-binary", "the target itself"),
        ("TFServingGrpc", "tfserving", "grpc", "--metadata-url"),
        ("TorchServeRestJson", "torchserve", "rest-json", "--metadata-url"),
        ("TorchServeRestBinary", "torchserve", "rest-binary", "--metadata-url"),
        ("TorchServeGrpc", "torchserve", "grpc", "INFERLOAD_TORCHSERVE_METADATA_URL"),
    ],
)
def test_the_feature_count_comes_from_the_server(
    servers, port_of, small_features, tmp_path, user_class: str, server: str, protocol: str, described_at: str
) -> None:
    url = description_url(servers, server)
    args = ["--metadata-url", url] if described_at == "--metadata-url" else []
    env = {"INFERLOAD_TORCHSERVE_METADATA_URL": url} if described_at.startswith("INFERLOAD_") else {}
    result = locust(
        tmp_path,
        # 3 s: in 1 s a starved Locust (make test runs this lane under SCHED_IDLE) once finished none
        *users(1, run_time="3s", rate=20),
        "--host",
        f"127.0.0.1:{port_of(server, protocol)}",
        *args,
        user_class,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"{server} {protocol}: {small_features} features per instance, "
        f"from the server's description of model 'linear' ({url})"
    ) in result.stderr
    requests, failures = requests_and_failures(result.stdout)
    assert requests > 0 and failures == 0  # the discovered width is the one the server takes


@pytest.mark.parametrize(
    ("option", "source"),
    [("--features", "from --features"), ("--artifacts", "from --artifacts (")],
)
def test_features_or_artifacts_given_win_over_the_server(
    port_of, small_artifacts, small_features, tmp_path, option: str, source: str
) -> None:
    value = str(small_features) if option == "--features" else str(small_artifacts.root)
    result = locust(
        tmp_path,
        *users(1, run_time="1s", rate=20),
        option,
        value,
        "--host",
        f"127.0.0.1:{port_of('torchserve', 'rest-binary')}",
        "TorchServeRestBinary",  # no --metadata-url: the server is never asked
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"torchserve rest-binary: {small_features} features per instance, {source}" in result.stderr


@pytest.mark.parametrize("features_given", [False, True], ids=["asked", "given"])
def test_a_model_the_server_does_not_serve_stops_the_run_before_load(
    servers, port_of, small_features, tmp_path, features_given: bool
) -> None:
    result = locust(
        tmp_path,
        *users(2, run_time="600s"),  # never reached
        "--model-name",
        "nope",
        *(["--features", str(small_features)] if features_given else []),
        "--metadata-url",
        description_url(servers, "torchserve"),
        "--host",
        f"127.0.0.1:{port_of('torchserve', 'grpc')}",
        "TorchServeGrpc",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    error = next(line for line in result.stderr.splitlines() if "Cannot start TorchServeGrpc" in line)
    assert "serves no model named 'nope'" in error and "--model-name" in error
    assert requests_and_failures(result.stdout) == (0, 0)  # not one request sent


@pytest.mark.parametrize(
    ("user_class", "server", "protocol", "described_by"),
    [
        ("TFServingRestJson", "tfserving", "rest-json", "the target itself"),
        ("TorchServeRestBinary", "torchserve", "rest-binary", "--metadata-url"),
    ],
)
def test_a_feature_count_the_server_contradicts_stops_the_run_before_load(
    servers,
    port_of,
    small_features,
    tmp_path,
    user_class: str,
    server: str,
    protocol: str,
    described_by: str,
) -> None:
    wrong = small_features - 24
    asked_at = description_url(servers, server)
    metadata = ["--metadata-url", asked_at] if described_by == "--metadata-url" else []
    result = locust(
        tmp_path,
        *users(1, run_time="600s"),
        "--features",
        str(wrong),
        *metadata,
        "--host",
        f"127.0.0.1:{port_of(server, protocol)}",
        user_class,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    error = next(line for line in result.stderr.splitlines() if f"Cannot start {user_class}" in line)
    assert f"with {small_features} input features, but --features gives {wrong}" in error
    assert f"--features {small_features}" in error
    assert requests_and_failures(result.stdout) == (0, 0)


def test_an_unreadable_description_does_not_block_a_given_feature_count(
    port_of, small_features, tmp_path
) -> None:
    """The load itself may still be right: warn, and leave the verdict to the requests (fail-fast)."""
    closed_port = Ports.free().torchserve_management  # nothing listens there
    result = locust(
        tmp_path,
        *users(1, run_time="1s", rate=20),
        "--features",
        str(small_features),
        "--metadata-url",
        f"http://127.0.0.1:{closed_port}",
        "--host",
        f"127.0.0.1:{port_of('torchserve', 'rest-json')}",
        "TorchServeRestJson",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torchserve rest-json: cannot check --features against the server" in result.stderr
    requests, failures = requests_and_failures(result.stdout)
    assert requests > 0 and failures == 0


def test_an_unknown_description_api_stops_the_run_naming_the_options(port_of, tmp_path) -> None:
    """TorchServe's management API has a port of its own: at non-standard ports it must be named."""
    result = locust(
        tmp_path,
        *users(1, run_time="600s"),
        "--host",
        f"127.0.0.1:{port_of('torchserve', 'rest-json')}",
        "TorchServeRestJson",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    error = next(line for line in result.stderr.splitlines() if "Cannot start TorchServeRestJson" in line)
    assert "--metadata-url" in error and "--features" in error
