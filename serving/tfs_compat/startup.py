"""What tensorflow_model_server checks and decides at start-up, before it loads anything, in its order.

Mirrors `Server::BuildAndStart` (tensorflow_serving/model_servers/server.cc): the flag combinations it
refuses (with its error text), `--model_config_file` replacing `--model_name`/`--model_base_path`, the
batching file only with `--enable_batching`, the thread-pool flags, REST on the gRPC port skipped, and
the monitoring config deciding whether and where Prometheus metrics are served. Flags the real binary
accepts but tfs-compat does not implement are refused by name when set, never silently ignored.
No TensorFlow here: this runs (and is tested) without loading a model.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message

from serving.tfs_compat.batching_config import (
    BatchingConfigError,
    BatchingParameters,
    load_batching_parameters,
)
from serving.tfs_compat.flags import ServerFlags

__all__ = [
    "SslConfig", "StartError", "StartupPlan", "plan_startup", "find_latest_version", "DEFAULT_PROMETHEUS_PATH"
]

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath
_log = logging.getLogger("tfs_compat")

# Flags tfs-compat takes (the real binary does) but does not implement: refused when set, by name.
_NOT_IMPLEMENTED = {
    "grpc_socket_path": "gRPC on a UNIX socket",
    "use_alts_credentials": "ALTS credentials",
    "platform_config_file": "platform configs",
    "tensorflow_session_config_file": "session config files",
    "thread_pool_factory_config_file": "thread pool factories",
    "enable_per_model_batching_parameters": "per-model batching parameters",
    "rest_api_enable_cors_support": "CORS headers",
    "enable_grpc_healthcheck_service": "the gRPC health service",
    "grpc_channel_arguments": "gRPC channel arguments",
    "prefer_tflite_model": "TensorFlow Lite models",
    "saved_model_tags": "meta graphs other than `serve`",
    "mixed_precision": "mixed precision",
}


class StartError(RuntimeError):
    """The server does not start; printed as the real binary prints it: `Failed to start server. Error:
    CODE: message`, exit status 255."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SslConfig:
    """tensorflow.serving.SSLConfig (ssl_config.proto): PEM contents, not file names."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


@dataclass(frozen=True)
class StartupPlan:
    """What to load and serve, decided from the flags before anything starts."""

    model_name: str
    base_path: Path
    batching: BatchingParameters | None
    intra_op_threads: int  # 0 = TensorFlow's default
    inter_op_threads: int
    rest: bool  # False: no REST port, or it equals the gRPC port (skipped, as the real binary does)
    metrics_path: str | None  # None: Prometheus metrics not exported (no monitoring config enabling them)
    notes: tuple[str, ...] = field(default=())  # errors/warnings the real binary logs and starts anyway
    ssl: SslConfig | None = None  # gRPC over TLS (--ssl_config_file); REST stays plaintext, as in the binary


def _invalid(message: str) -> StartError:
    return StartError("INVALID_ARGUMENT", message)


def _read(path: Path) -> str:
    """Env::NewReadOnlyMemoryRegionFromFile's failure reads `NOT_FOUND: <file>; No such file or directory`."""
    try:
        return path.read_text()
    except FileNotFoundError:
        raise StartError("NOT_FOUND", f"{path}; No such file or directory") from None
    except OSError as exc:
        raise StartError("FAILED_PRECONDITION", f"{path}; {exc.strerror}") from None


def _parse_text_proto(path: Path, message: Message) -> Message:
    """ParseProtoTextFile: any syntax or field error reads `Invalid protobuf file: '<file>'`."""
    try:
        text_format.Parse(_read(path), message)
    except text_format.ParseError as exc:
        raise _invalid(f"Invalid protobuf file: '{path}' (tfs-compat: {exc})") from None
    return message


def _monitoring_config_class() -> type[Message]:
    """tensorflow.serving.MonitoringConfig (monitoring_config.proto): not shipped in the API wheel."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfs_compat/monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(
        name="enable", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL, label=optional
    )
    prometheus.field.add(
        name="path", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING, label=optional
    )
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=optional,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def _ssl_config_class() -> type[Message]:
    """tensorflow.serving.SSLConfig (tensorflow_serving/config/ssl_config.proto): not shipped in the API
    wheel. Fields: server_key = 1, server_cert = 2, custom_ca = 3 (strings), client_verify = 4 (bool)."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfs_compat/ssl_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    message = proto.message_type.add(name="SSLConfig")
    for number, name in enumerate(("server_key", "server_cert", "custom_ca"), start=1):
        message.field.add(
            name=name, number=number, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING, label=optional
        )
    message.field.add(
        name="client_verify", number=4, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL, label=optional
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.SSLConfig"))


def _ssl(flags: ServerFlags) -> SslConfig | None:
    """BuildServerCredentialsFromSSLConfigFile (server.cc): no file, an insecure port; else the parsed
    SSLConfig, whose client_verify requires and verifies a client certificate (against custom_ca).
    The real binary parses it with TF_CHECK_OK (a bad file aborts the process); tfs-compat reports it
    as a start failure naming the file."""
    path = flags.values.get("ssl_config_file") or ""
    if not path:
        return None
    config = _parse_text_proto(Path(path), _ssl_config_class()())
    return SslConfig(
        server_key=config.server_key,  # type: ignore[attr-defined]
        server_cert=config.server_cert,  # type: ignore[attr-defined]
        custom_ca=config.custom_ca,  # type: ignore[attr-defined]
        client_verify=config.client_verify,  # type: ignore[attr-defined]
    )


def _model(flags: ServerFlags) -> tuple[str, Path]:
    """--model_config_file when given (then --model_name/--model_base_path are ignored), else those two."""
    if flags.model_config_file is None:
        _log.info(
            "Building single TensorFlow model file config:  model_name: %s model_base_path: %s",
            flags.model_name,
            flags.model_base_path,
        )
        assert flags.model_base_path is not None  # checked by the caller, as BuildAndStart does
        return flags.model_name, flags.model_base_path
    from tensorflow_serving.config import model_server_config_pb2  # the API wheel ships this one

    config = _parse_text_proto(flags.model_config_file, model_server_config_pb2.ModelServerConfig())
    if config.WhichOneof("config") == "custom_model_config":
        raise StartError("INTERNAL", "ModelServer does not yet support custom model config.")  # LOG(FATAL)
    models = list(config.model_config_list.config)
    if len(models) != 1:
        raise StartError(
            "UNIMPLEMENTED",
            f"tfs-compat serves exactly one model; {flags.model_config_file} lists {len(models)}: "
            "use the real tensorflow_model_server for several",
        )
    (model,) = models
    if not model.model_platform:
        raise _invalid(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            "ModelServerConfig::model_platform."
        )
    if model.model_platform != "tensorflow":
        raise _invalid(f"Model platform {model.model_platform} not found in platform config map")
    if model.HasField("model_version_policy"):
        raise StartError(
            "UNIMPLEMENTED", "tfs-compat serves the latest version only: remove model_version_policy"
        )
    return model.name, Path(model.base_path).resolve()


def _batching(flags: ServerFlags) -> BatchingParameters | None:
    if not flags.enable_batching:
        if flags.batching_parameters_file is not None:
            raise _invalid(
                "server_options.batching_parameters_file is set without setting "
                "server_options.enable_batching to true."
            )
        return None
    if flags.batching_parameters_file is None:
        return BatchingParameters()
    _read(flags.batching_parameters_file)  # NOT_FOUND first, as ParseProtoTextFile reports it
    try:
        return load_batching_parameters(flags.batching_parameters_file)
    except BatchingConfigError as exc:
        raise _invalid(
            f"Invalid protobuf file: '{flags.batching_parameters_file}' (tfs-compat: {exc})"
        ) from None


def _threads(flags: ServerFlags) -> tuple[int, int]:
    intra, inter = flags.tensorflow_intra_op_parallelism, flags.tensorflow_inter_op_parallelism
    session = flags.tensorflow_session_parallelism
    if intra > 0 and inter > 0 and session > 0:
        raise _invalid(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all."
        )
    if intra > 0 or inter > 0:
        return max(intra, 0), max(inter, 0)
    return max(session, 0), max(session, 0)


def _metrics_path(flags: ServerFlags) -> str | None:
    if flags.monitoring_config_file is None:
        return None
    config = _parse_text_proto(flags.monitoring_config_file, _monitoring_config_class()())
    prometheus = config.prometheus_config  # type: ignore[attr-defined]
    if not prometheus.enable:
        return None
    return prometheus.path or DEFAULT_PROMETHEUS_PATH


def plan_startup(flags: ServerFlags) -> StartupPlan:
    """BuildAndStart's checks in its order; raises StartError with the real binary's text."""
    if flags.port == 0 and not flags.values.get("grpc_socket_path"):
        raise _invalid(
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set."
        )
    if flags.values.get("use_alts_credentials") and flags.values.get("ssl_config_file"):
        raise _invalid("Either use_alts_credentials must be false or ssl_config_file must be empty.")
    if flags.model_base_path is None and flags.model_config_file is None:
        raise _invalid("Both server_options.model_base_path and server_options.model_config_file are empty!")
    for name, what in _NOT_IMPLEMENTED.items():
        if flags.given(name):
            raise StartError(
                "UNIMPLEMENTED",
                f"tfs-compat does not implement --{name} ({what}): remove it, or use the real "
                "tensorflow_model_server",
            )
    ssl = _ssl(flags)
    model_name, base_path = _model(flags)
    batching = _batching(flags)
    intra, inter = _threads(flags)
    notes: list[str] = []
    rest = flags.rest_api_port != 0
    metrics_path = None
    if rest and flags.rest_api_port == flags.port:
        rest = False
        notes.append(
            "server_options.http_port cannot be same as grpc_port. Please use a different port for "
            "HTTP/REST API. Skipped exporting HTTP/REST API."
        )
    elif rest:
        metrics_path = _metrics_path(flags)
    return StartupPlan(
        model_name=model_name,
        base_path=base_path,
        batching=batching,
        intra_op_threads=intra,
        inter_op_threads=inter,
        rest=rest,
        metrics_path=metrics_path,
        notes=tuple(notes),
        ssl=ssl,
    )


def find_latest_version(base_path: Path) -> int:
    """The highest numeric version directory under base_path, as TF Serving's default policy picks.

    Where the real binary would keep polling for a missing directory, tfs-compat fails with the reason
    (before TensorFlow loads, from `python -m serving.tfs_compat`)."""
    if not base_path.is_dir():
        raise FileNotFoundError(
            f"--model_base_path {base_path} is not a directory: export the model first "
            "(inferload export --out DIR, then pass DIR/tfserving/linear)"
        )
    versions = [int(p.name) for p in base_path.iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name)]
    if not versions:
        raise FileNotFoundError(
            f"no numeric version directory (e.g. {base_path}/1/) with a SavedModel under "
            f"--model_base_path {base_path}"
        )
    return max(versions)
