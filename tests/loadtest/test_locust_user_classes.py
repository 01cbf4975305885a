"""`locust -f loadtest/` offers one user class per server x protocol, with our options in its CLI/UI."""

from __future__ import annotations

import subprocess
import sys

import pytest
from locust_runs import LOADTEST_DIR, NINE_USER_CLASSES

import loadtest.locustfile
from loadtest._locust_options import default_host
from loadtest._settings import split_host


def test_locust_lists_the_nine_user_classes(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOADTEST_DIR, "--list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    listed = [line.strip() for line in result.stdout.splitlines() if line.startswith("    ")]
    assert sorted(listed) == NINE_USER_CLASSES


def test_our_options_parse_and_show_in_the_web_ui(tmp_path) -> None:
    """In a subprocess: importing locust monkey-patches the interpreter."""
    code = (
        "import loadtest.locustfile\n"
        "from locust import argument_parser\n"
        "parser = argument_parser.get_parser()\n"
        "options = parser.parse_args(['--rate', '7', '--mode', 'closed', '--batch', '4'])\n"
        "print(options.rate, options.mode, options.batch)\n"
        "print(' '.join(sorted(parser.args_included_in_web_ui)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    parsed, in_web_ui = result.stdout.splitlines()[-2:]
    assert parsed == "7.0 closed 4"
    for option in (
        "rate",
        "mode",
        "batch",
        "features",
        "artifacts",
        "metadata_url",
        "fail_fast",
        "max_in_flight",
        "records_dir",
        "seed",
        "grpc_service",
    ):
        assert option in in_web_ui.split()


@pytest.mark.parametrize(
    ("name", "server", "protocol"),
    [
        ("TFServingRestJson", "tfserving", "rest-json"),
        ("TFServingRestBinary", "tfserving", "rest-binary"),
        ("TFServingGrpc", "tfserving", "grpc"),
        ("TorchServeRestJson", "torchserve", "rest-json"),
        ("TorchServeRestBinary", "torchserve", "rest-binary"),
        ("TorchServeGrpc", "torchserve", "grpc"),
        ("TritonRestJson", "triton", "rest-json"),
        ("TritonRestBinary", "triton", "rest-binary"),
        ("TritonGrpc", "triton", "grpc"),
    ],
)
def test_each_generated_class_sends_its_server_and_protocol(name: str, server: str, protocol: str) -> None:
    user_class = getattr(loadtest.locustfile, name)
    assert (user_class.server, user_class.protocol) == (server, protocol)
    assert user_class.__module__ == loadtest.locustfile.__name__ and not user_class.abstract
    assert user_class.host == default_host(server, protocol)


@pytest.mark.parametrize(
    ("server", "protocol", "env", "expected"),
    [
        ("tfserving", "rest-json", {}, "http://127.0.0.1:8501"),
        ("tfserving", "grpc", {}, "grpc://127.0.0.1:8500"),
        ("torchserve", "rest-binary", {}, "http://127.0.0.1:8080"),
        ("torchserve", "grpc", {"INFERLOAD_TORCHSERVE_GRPC_PORT": "17070"}, "grpc://127.0.0.1:17070"),
        ("tfserving", "rest-json", {"INFERLOAD_TFSERVING_HOST": "127.0.0.2"}, "http://127.0.0.2:8501"),
        ("triton", "rest-binary", {}, "http://127.0.0.1:8000"),
        ("triton", "grpc", {"INFERLOAD_TRITON_GRPC_PORT": "18001"}, "grpc://127.0.0.1:18001"),
    ],
)
def test_hosts_default_to_the_standard_ports_and_follow_env_vars(
    monkeypatch, server: str, protocol: str, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert default_host(server, protocol) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://127.0.0.1:8501", ("127.0.0.1", 8501)),
        ("grpc://[::1]:8500", ("::1", 8500)),
        ("127.0.0.1:7070", ("127.0.0.1", 7070)),
    ],
)
def test_host_strings_are_split_into_address_and_port(host: str, expected: tuple[str, int]) -> None:
    assert split_host(host) == expected
