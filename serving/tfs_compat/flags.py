"""tensorflow_model_server's command line, parsed the way its binary parses it.

The real binary (tensorflow_serving/model_servers/main.cc) uses TensorFlow's `Flags::Parse`
(tensorflow/core/util/command_line_flags.cc), whose rules differ from argparse's and matter for
fidelity:
- a flag is `--name=value` only (`--port 8500` is two unknown arguments); a bool is `--name`,
  `--name=true` or `--name=false` (not 1/0/yes); an int must be a whole decimal number;
- a value it cannot interpret logs `Couldn't interpret value V for flag F.`, prints the usage and
  exits with status 255 (main returns -1);
- an unknown argument is NOT an error: it prints `unknown argument: X` and the usage, then starts;
- `--help` prints the usage and exits 255; `--version` prints the version and exits 0.
tfs-compat takes every flag of the real binary (defaults as in server.h) plus its own `--host`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["CommandLine", "FlagError", "ServerFlags", "parse_command_line", "parse_flags", "usage"]

_CPUS = len(os.sched_getaffinity(0))  # TF Serving: port::NumSchedulableCPUs() (affinity-aware)
_DEFAULT_THREADS = 4 * _CPUS  # TF Serving: 4 x schedulable CPUs
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

Kind = Literal["int32", "int64", "bool", "string", "float"]


@dataclass(frozen=True)
class _Flag:
    name: str
    kind: Kind
    default: Any
    usage: str = ""


# main.cc's flag list, in its order (defaults from server.h's Server::Options), then tfs-compat's own.
FLAGS: tuple[_Flag, ...] = (
    _Flag("port", "int32", 8500, "TCP port to listen on for gRPC/HTTP API. Disabled if port set to zero."),
    _Flag("grpc_socket_path", "string", ""),
    _Flag("rest_api_port", "int32", 0, "Port to listen on for HTTP/REST API. 0: REST is not exported."),
    _Flag("rest_api_num_threads", "int32", _DEFAULT_THREADS),
    _Flag("rest_api_timeout_in_ms", "int32", 30000),
    _Flag("rest_api_enable_cors_support", "bool", False),
    _Flag("enable_batching", "bool", False),
    _Flag("allow_version_labels_for_unavailable_models", "bool", False),
    _Flag("batching_parameters_file", "string", ""),
    _Flag("enable_per_model_batching_parameters", "bool", False),
    _Flag("model_config_file", "string", "", "If used, --model_name, --model_base_path are ignored."),
    _Flag("model_config_file_poll_wait_seconds", "int32", 0),
    _Flag("model_name", "string", "default"),
    _Flag("model_base_path", "string", ""),
    _Flag("num_load_threads", "int32", 0),
    _Flag("num_unload_threads", "int32", 0),
    _Flag("max_num_load_retries", "int32", 5),
    _Flag("load_retry_interval_micros", "int64", 60_000_000),
    _Flag("file_system_poll_wait_seconds", "int32", 1),
    _Flag("flush_filesystem_caches", "bool", True),
    _Flag("tensorflow_session_parallelism", "int64", 0),
    _Flag("tensorflow_session_config_file", "string", ""),
    _Flag("tensorflow_intra_op_parallelism", "int64", 0),
    _Flag("tensorflow_inter_op_parallelism", "int64", 0),
    _Flag("use_alts_credentials", "bool", False),
    _Flag("ssl_config_file", "string", ""),
    _Flag("platform_config_file", "string", ""),
    _Flag("per_process_gpu_memory_fraction", "float", 0.0),
    _Flag("saved_model_tags", "string", "serve"),
    _Flag("grpc_channel_arguments", "string", ""),
    _Flag("grpc_max_threads", "int32", _DEFAULT_THREADS),
    _Flag("enable_model_warmup", "bool", True),
    _Flag("num_request_iterations_for_warmup", "int32", 0),
    _Flag("version", "bool", False, "Display version"),
    _Flag("monitoring_config_file", "string", ""),
    _Flag("remove_unused_fields_from_bundle_metagraph", "bool", True),
    _Flag("prefer_tflite_model", "bool", False),
    _Flag("num_tflite_pools", "int32", _CPUS),
    _Flag("num_tflite_interpreters_per_pool", "int32", 1),
    _Flag("enable_signature_method_name_check", "bool", False),
    _Flag("xla_cpu_compilation_enabled", "bool", False),
    _Flag("xla_gpu_compilation_enabled", "bool", False),
    _Flag("enable_profiler", "bool", True),
    _Flag("thread_pool_factory_config_file", "string", ""),
    _Flag("mixed_precision", "string", ""),
    _Flag("skip_initialize_tpu", "bool", False),
    _Flag("enable_grpc_healthcheck_service", "bool", False),
    _Flag("enable_serialization_as_tensor_content", "bool", False),
    _Flag("host", "string", "127.0.0.1", "tfs-compat only: address to bind (the real binary binds 0.0.0.0)"),
)
_BY_NAME = {flag.name: flag for flag in FLAGS}


class FlagError(ValueError):
    """A flag value the real binary could not interpret either: it prints the usage and exits 255."""


@dataclass(frozen=True)
class ServerFlags:
    """Resolved settings of one tfs-compat server; `values` holds every flag by its real name."""

    port: int
    rest_api_port: int
    model_name: str
    model_base_path: Path | None
    host: str = "127.0.0.1"
    rest_api_num_threads: int = _DEFAULT_THREADS
    grpc_max_threads: int = _DEFAULT_THREADS
    enable_batching: bool = False
    batching_parameters_file: Path | None = None
    enable_serialization_as_tensor_content: bool = False
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    tensorflow_session_parallelism: int = 0
    monitoring_config_file: Path | None = None
    model_config_file: Path | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def given(self, name: str) -> bool:
        """True when the flag differs from the real binary's default."""
        return self.values.get(name, _BY_NAME[name].default) != _BY_NAME[name].default


@dataclass(frozen=True)
class CommandLine:
    """What `Flags::Parse` leaves: the flags, the arguments it did not know, and --help/--version."""

    flags: ServerFlags
    unknown: tuple[str, ...] = ()
    help: bool = False
    version: bool = False


_INT = re.compile(r"[ \t\n\r\f\v]*[+-]?\d+")  # sscanf("%d%c") == 1: leading spaces, digits, nothing after


def _value(flag: _Flag, text: str | None) -> Any:
    """The value of `--name=text` (text None: a bare `--name`), or FlagError as the binary logs it."""
    # Bools report the text after the name (`=1`), the others the text after `=` (`abc`), as TF does.
    shown = ("" if text is None else "=" + text) if flag.kind == "bool" else text
    problem = FlagError(f"Couldn't interpret value {shown} for flag {flag.name}.")
    if flag.kind == "bool":
        if text is None or text == "true":
            return True
        if text == "false":
            return False
        raise problem
    if text is None:
        raise problem
    if flag.kind == "string":
        return text
    if flag.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise problem from None
    if not _INT.fullmatch(text):
        raise problem
    value = int(text)
    low, high = _INT32 if flag.kind == "int32" else _INT64
    if not low <= value <= high:
        raise problem
    return value


def _match(arg: str) -> tuple[_Flag, str | None] | None:
    """The flag `arg` sets, as Flags::Parse matches it: `--` + exact name + (`=value` | nothing for bools)."""
    if not arg.startswith("--"):
        return None
    body = arg[2:]
    name, sep, text = body.partition("=")
    flag = _BY_NAME.get(name)
    if flag is not None:
        if sep:
            return flag, text
        return (flag, None) if flag.kind == "bool" else None  # `--port` alone matches no flag
    # A bool flag consumes any suffix (`--enable_batchingX` -> "Couldn't interpret value X").
    for candidate in FLAGS:
        if candidate.kind == "bool" and body.startswith(candidate.name) and body != candidate.name:
            return candidate, "\0" + body[len(candidate.name) :]
    return None


def parse_command_line(argv: list[str]) -> CommandLine:
    """Parse like Flags::Parse; raises FlagError (listing every bad value) when the binary would exit."""
    values: dict[str, Any] = {}
    unknown: list[str] = []
    errors: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            unknown.extend(argv[index:])
            break
        matched = _match(arg)
        if matched is None:
            unknown.append(arg)
            continue
        flag, text = matched
        try:
            if text is not None and text.startswith("\0"):
                raise FlagError(f"Couldn't interpret value {text[1:]} for flag {flag.name}.")
            values[flag.name] = _value(flag, text)
        except FlagError as exc:
            errors.append(str(exc))
    if errors:
        raise FlagError("\n".join(errors))
    help_requested = bool(unknown) and unknown[0] == "--help"
    return CommandLine(
        flags=_resolve(values),
        unknown=tuple(unknown),
        help=help_requested,
        version=values.get("version", False),
    )


def _resolve(values: dict[str, Any]) -> ServerFlags:
    full = {flag.name: values.get(flag.name, flag.default) for flag in FLAGS}

    def path(name: str) -> Path | None:
        return Path(full[name]) if full[name] else None

    base = path("model_base_path")
    return ServerFlags(
        port=full["port"],
        rest_api_port=full["rest_api_port"],
        model_name=full["model_name"],
        model_base_path=base.resolve() if base else None,
        host=full["host"],
        rest_api_num_threads=full["rest_api_num_threads"],
        grpc_max_threads=full["grpc_max_threads"],
        enable_batching=full["enable_batching"],
        batching_parameters_file=path("batching_parameters_file"),
        enable_serialization_as_tensor_content=full["enable_serialization_as_tensor_content"],
        tensorflow_intra_op_parallelism=full["tensorflow_intra_op_parallelism"],
        tensorflow_inter_op_parallelism=full["tensorflow_inter_op_parallelism"],
        tensorflow_session_parallelism=full["tensorflow_session_parallelism"],
        monitoring_config_file=path("monitoring_config_file"),
        model_config_file=path("model_config_file"),
        values=full,
    )


def parse_flags(argv: list[str]) -> ServerFlags:
    """The flags alone (unknown arguments ignored, as the real binary ignores them after warning)."""
    return parse_command_line(argv).flags


def usage(program: str = "tensorflow_model_server") -> str:
    """The usage text in Flags::Usage's layout."""
    lines = [f"usage: {program}", "Flags:"]
    for flag in FLAGS:
        if flag.kind == "bool":
            shown = f"--{flag.name}={'true' if flag.default else 'false'}"
        elif flag.kind == "string":
            shown = f'--{flag.name}="{flag.default}"'
        elif flag.kind == "float":
            shown = f"--{flag.name}={flag.default:f}"
        else:
            shown = f"--{flag.name}={flag.default}"
        lines.append(f"\t{shown:<33}\t{flag.kind}\t{flag.usage}")
    return "\n".join(lines) + "\n"
