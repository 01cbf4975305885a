"""Command-line flags named as `tensorflow_model_server`'s, so serving/ launches either the same way."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerFlags", "parse_flags"]

_DEFAULT_THREADS = 4 * len(os.sched_getaffinity(0))  # TF Serving: 4 x schedulable CPUs (affinity-aware)


@dataclass(frozen=True)
class ServerFlags:
    """Resolved settings of one tfs-compat server."""

    port: int
    rest_api_port: int
    model_name: str
    model_base_path: Path
    host: str = "127.0.0.1"
    rest_api_num_threads: int = _DEFAULT_THREADS
    grpc_max_threads: int = _DEFAULT_THREADS
    enable_batching: bool = False
    batching_parameters_file: Path | None = None
    enable_serialization_as_tensor_content: bool = False
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    monitoring_config_file: Path | None = None


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving.tfs_compat",
        description="tfs-compat: TF Serving's REST and gRPC predict APIs on the TF SavedModel runtime. "
        "Flags follow tensorflow_model_server.",
    )
    add = parser.add_argument
    add("--port", type=_port, default=8500, help="gRPC port (default 8500)")
    add("--rest_api_port", type=_port, default=0, help="REST port; 0 disables REST, as in TF Serving")
    add("--model_name", default="default", help="name the model is served under (default: default)")
    add(
        "--model_base_path", type=Path, required=True, help="directory holding numeric version subdirectories"
    )
    add("--host", default="127.0.0.1", help="address to bind (tfs-compat only; default 127.0.0.1)")
    add("--rest_api_num_threads", type=_positive, default=_DEFAULT_THREADS)
    add("--grpc_max_threads", type=_positive, default=_DEFAULT_THREADS)
    add("--rest_api_timeout_in_ms", type=int, default=30000, help="accepted for compatibility; not enforced")
    add("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    add("--batching_parameters_file", type=Path, default=None)
    add("--enable_serialization_as_tensor_content", type=_bool, nargs="?", const=True, default=False)
    add("--tensorflow_intra_op_parallelism", type=int, default=0)
    add("--tensorflow_inter_op_parallelism", type=int, default=0)
    add(
        "--monitoring_config_file",
        type=Path,
        default=None,
        help="accepted; metrics are always at /monitoring/prometheus/metrics on the REST port",
    )
    add(
        "--file_system_poll_wait_seconds",
        type=int,
        default=1,
        help="accepted; versions are read once at start",
    )
    return parser


def parse_flags(argv: list[str] | None = None) -> ServerFlags:
    args = _parser().parse_args(argv)
    return ServerFlags(
        port=args.port,
        rest_api_port=args.rest_api_port,
        model_name=args.model_name,
        model_base_path=args.model_base_path.resolve(),
        host=args.host,
        rest_api_num_threads=args.rest_api_num_threads,
        grpc_max_threads=args.grpc_max_threads,
        enable_batching=args.enable_batching,
        batching_parameters_file=args.batching_parameters_file,
        enable_serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
        tensorflow_intra_op_parallelism=args.tensorflow_intra_op_parallelism,
        tensorflow_inter_op_parallelism=args.tensorflow_inter_op_parallelism,
        monitoring_config_file=args.monitoring_config_file,
    )
