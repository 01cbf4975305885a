"""tfs-compat refuses the flag combinations tensorflow_model_server refuses, with its error text, and
decides what to serve from the flags as it does (tensorflow_serving/model_servers/main.cc, server.cc
`Server::BuildAndStart`; flag syntax from tensorflow/core/util/command_line_flags.cc).

The decisions are tested on `plan_startup` (no TensorFlow needed); the exit status and output of the
real process are tested in test_command_line.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.tfs_compat.flags import FlagError, parse_command_line, parse_flags
from serving.tfs_compat.startup import DEFAULT_PROMETHEUS_PATH, StartError, plan_startup

BASE = ["--model_base_path=/models/linear", "--port=9000", "--rest_api_port=9001"]


def _plan(*args: str):
    return plan_startup(parse_flags([*BASE, *args]))


# --- Flags::Parse ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("--port=abc", "Couldn't interpret value abc for flag port."),
        ("--port=85x", "Couldn't interpret value 85x for flag port."),
        ("--port=", "Couldn't interpret value  for flag port."),
        ("--rest_api_num_threads=2.5", "Couldn't interpret value 2.5 for flag rest_api_num_threads."),
        ("--enable_batching=1", "Couldn't interpret value =1 for flag enable_batching."),
        ("--enable_batching=yes", "Couldn't interpret value =yes for flag enable_batching."),
        ("--enable_batchingfoo", "Couldn't interpret value foo for flag enable_batching."),
        ("--port=99999999999", "Couldn't interpret value 99999999999 for flag port."),
    ],
)
def test_values_the_real_parser_cannot_interpret_are_errors(arg: str, message: str) -> None:
    with pytest.raises(FlagError) as caught:
        parse_command_line([*BASE, arg])
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("args", "enabled"),
    [(["--enable_batching"], True), (["--enable_batching=true"], True), (["--enable_batching=false"], False)],
)
def test_bool_flags_take_bare_true_or_false(args: list[str], enabled: bool) -> None:
    assert parse_flags([*BASE, *args]).enable_batching is enabled


@pytest.mark.parametrize(
    ("args", "unknown"),
    [
        (["--model_nmae=linear"], ("--model_nmae=linear",)),
        (["--port", "8500"], ("--port", "8500")),  # `--name value` is not TF's syntax: two unknowns
        (["stray", "--", "--port=1"], ("stray", "--", "--port=1")),  # nothing after `--` is parsed
    ],
)
def test_unknown_arguments_are_left_over_not_errors(args: list[str], unknown: tuple[str, ...]) -> None:
    command_line = parse_command_line([*BASE, *args])
    assert command_line.unknown == unknown
    assert command_line.flags.port == 9000


def test_help_and_version_are_recognised() -> None:
    assert parse_command_line(["--help"]).help
    assert parse_command_line(["--version"]).flags.values["version"] is True


def test_later_flags_override_earlier_ones() -> None:
    assert parse_flags([*BASE, "--port=9100"]).port == 9100


def test_defaults_are_the_real_binarys() -> None:
    flags = parse_flags(["--model_base_path=/m"])
    assert (flags.port, flags.rest_api_port, flags.model_name) == (8500, 0, "default")
    assert flags.values["file_system_poll_wait_seconds"] == 1 and flags.values["enable_model_warmup"] is True


# --- BuildAndStart's refusals, in its order --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--port=0"],
            "INVALID_ARGUMENT",
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set.",
        ),
        (
            ["--use_alts_credentials", "--ssl_config_file=/ssl.config"],
            "INVALID_ARGUMENT",
            "Either use_alts_credentials must be false or ssl_config_file must be empty.",
        ),
        (
            ["--batching_parameters_file=/b.txt"],
            "INVALID_ARGUMENT",
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.",
        ),
        (
            ["--enable_batching=false", "--batching_parameters_file=/b.txt"],
            "INVALID_ARGUMENT",
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.",
        ),
        (
            [
                "--tensorflow_session_parallelism=2",
                "--tensorflow_intra_op_parallelism=2",
                "--tensorflow_inter_op_parallelism=2",
            ],
            "INVALID_ARGUMENT",
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all.",
        ),
        (
            ["--enable_batching", "--batching_parameters_file=/no/such/file.txt"],
            "NOT_FOUND",
            "/no/such/file.txt; No such file or directory",
        ),
    ],
    ids=[
        "no-grpc-port",
        "alts-and-ssl",
        "batching-file-alone",
        "batching-file-batching-off",
        "all-three-parallelisms",
        "missing-batching-file",
    ],
)
def test_refused_like_build_and_start(args: list[str], code: str, message: str) -> None:
    with pytest.raises(StartError) as caught:
        _plan(*args)
    assert (caught.value.code, caught.value.message) == (code, message)
    assert str(caught.value) == f"{code}: {message}"  # printed after "Failed to start server. Error: "


def test_no_model_at_all_is_refused() -> None:
    with pytest.raises(
        StartError,
        match=r"^INVALID_ARGUMENT: Both server_options.model_base_path and "
        r"server_options.model_config_file are empty!$",
    ):
        plan_startup(parse_flags(["--port=9000"]))


def test_an_invalid_batching_file_reads_invalid_protobuf_file(tmp_path: Path) -> None:
    bad = tmp_path / "b.txt"
    bad.write_text("max_batch_size { value: lots }\n")
    with pytest.raises(StartError, match=rf"^INVALID_ARGUMENT: Invalid protobuf file: '{bad}'"):
        _plan("--enable_batching", f"--batching_parameters_file={bad}")


def test_batching_on_without_a_file_uses_the_defaults() -> None:
    plan = _plan("--enable_batching")
    assert plan.batching is not None and plan.batching.max_batch_size == 1000


@pytest.mark.parametrize(
    ("args", "threads"),
    [
        ([], (0, 0)),
        (["--tensorflow_session_parallelism=3"], (3, 3)),
        (["--tensorflow_intra_op_parallelism=2"], (2, 0)),  # inter stays TF's default
        (["--tensorflow_intra_op_parallelism=2", "--tensorflow_inter_op_parallelism=1"], (2, 1)),
        (["--tensorflow_session_parallelism=4", "--tensorflow_inter_op_parallelism=1"], (0, 1)),
    ],
)
def test_thread_pools_follow_server_cc(args: list[str], threads: tuple[int, int]) -> None:
    plan = _plan(*args)
    assert (plan.intra_op_threads, plan.inter_op_threads) == threads


@pytest.mark.parametrize(
    "arg",
    [
        "--grpc_socket_path=/tmp/s",
        "--platform_config_file=/p.config",
        "--rest_api_enable_cors_support",
        "--saved_model_tags=serve,gpu",
        "--enable_grpc_healthcheck_service=true",
    ],
)
def test_flags_tfs_compat_does_not_implement_are_refused_by_name(arg: str) -> None:
    name = arg[2:].split("=")[0]
    with pytest.raises(StartError, match=rf"^UNIMPLEMENTED: tfs-compat does not implement --{name} "):
        _plan(arg)


# --- what to serve ----------------------------------------------------------------------------------


def test_model_config_file_replaces_model_name_and_base_path(tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n  config {\n    name: 'other'\n    base_path: '/models/other'\n"
        "    model_platform: 'tensorflow'\n  }\n}\n"
    )
    plan = _plan("--model_name=linear", f"--model_config_file={config}")
    assert (plan.model_name, plan.base_path) == ("other", Path("/models/other"))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "model_config_list { config { name: 'a' base_path: '/a' } }",
            "neither ModelServerConfig::model_type",
        ),
        ("model_config_list { config { nmae: 'a' } }", "Invalid protobuf file"),
        (
            "model_config_list { config { name: 'a' base_path: '/a' model_platform: 'tensorflow' } "
            "config { name: 'b' base_path: '/b' model_platform: 'tensorflow' } }",
            "serves exactly one model",
        ),
    ],
)
def test_model_config_files_it_cannot_serve_are_refused(tmp_path: Path, text: str, match: str) -> None:
    config = tmp_path / "models.config"
    config.write_text(text)
    with pytest.raises(StartError, match=match):
        _plan(f"--model_config_file={config}")


def test_metrics_are_served_only_when_the_monitoring_config_enables_them(tmp_path: Path) -> None:
    assert _plan().metrics_path is None  # no --monitoring_config_file: no Prometheus endpoint
    enabled = tmp_path / "on.config"
    enabled.write_text("prometheus_config {\n  enable: true,\n  path: '/custom/metrics'\n}\n")
    assert _plan(f"--monitoring_config_file={enabled}").metrics_path == "/custom/metrics"
    default_path = tmp_path / "default.config"
    default_path.write_text("prometheus_config { enable: true }")
    assert _plan(f"--monitoring_config_file={default_path}").metrics_path == DEFAULT_PROMETHEUS_PATH
    disabled = tmp_path / "off.config"
    disabled.write_text("prometheus_config { enable: false }")
    assert _plan(f"--monitoring_config_file={disabled}").metrics_path is None


def test_an_invalid_monitoring_config_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "m.config"
    bad.write_text("prometheus_config { enabled: true }")
    with pytest.raises(StartError, match=rf"^INVALID_ARGUMENT: Invalid protobuf file: '{bad}'"):
        _plan(f"--monitoring_config_file={bad}")


def test_rest_on_the_grpc_port_is_skipped_with_the_real_error_line() -> None:
    plan = plan_startup(parse_flags(["--model_base_path=/m", "--port=9000", "--rest_api_port=9000"]))
    assert plan.rest is False
    assert plan.notes == (
        "server_options.http_port cannot be same as grpc_port. Please use a different port for "
        "HTTP/REST API. Skipped exporting HTTP/REST API.",
    )


def test_no_rest_port_means_no_rest() -> None:
    assert plan_startup(parse_flags(["--model_base_path=/m"])).rest is False
