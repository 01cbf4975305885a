"""TF Serving: which kind runs (the real binary or tfs-compat), its command line, batching file and health.

The real `tensorflow_model_server` binds 0.0.0.0 (it has no address flag); tfs-compat gets `--host
127.0.0.1`. Both take the same flags otherwise, so the rest of inferload does not care which one runs.
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

from inferload_formats import TFSERVING_KINDS, TfServingKind
from models.artifacts import MODEL_NAME, ArtifactLayout
from serving.ports import LOOPBACK, Ports, connect_host, url_host
from serving.processes import LaunchSpec
from serving.settings import ServerSettings

REAL_BINARY: Final = "tensorflow_model_server"
COMPAT: Final = "tfs-compat"
ResolvedKind = TfServingKind  # what `auto` resolves to (inferload_formats.kinds)
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
COMPAT_MAIN = Path(__file__).resolve().parent / "tfs_compat" / "__main__.py"


class TfServingUnavailableError(RuntimeError):
    """The requested TF Serving kind cannot run on this machine."""


def resolve_kind(requested: str) -> ResolvedKind:
    """`auto` picks the real binary when it is on PATH, else tfs-compat."""
    on_path = shutil.which(REAL_BINARY) is not None
    if requested == "auto":
        return "tensorflow_model_server" if on_path else "tfs-compat"
    if requested == REAL_BINARY and not on_path:
        raise TfServingUnavailableError(
            f"{REAL_BINARY} is not on PATH: install it (https://www.tensorflow.org/tfx/serving/setup) "
            f"or use tfserving_kind 'auto' / '{COMPAT}'"
        )
    if requested not in TFSERVING_KINDS:
        expected = " or ".join(TFSERVING_KINDS)
        raise ValueError(f"unknown TF Serving kind {requested!r}: expected auto, {expected}")
    return requested  # type: ignore[return-value]


def batching_parameters(settings: ServerSettings) -> str:
    """TF Serving's batching parameters file (text-format BatchingParameters proto)."""
    return (
        f"max_batch_size {{ value: {settings.tfserving_max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {settings.tfserving_batch_timeout_us} }}\n"
        f"num_batch_threads {{ value: {settings.tfserving_num_batch_threads} }}\n"
        f"max_enqueued_batches {{ value: {settings.tfserving_max_enqueued_batches} }}\n"
    )


def ssl_config(settings: ServerSettings) -> str:
    """TF Serving's --ssl_config_file (text-format tensorflow.serving.SSLConfig): the PEM *contents* of
    the server key and certificate, the client CA, and whether a client certificate is required."""
    tls = settings.tls
    assert tls is not None

    def pem(path: str) -> str:
        text = Path(path).read_text()
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"server_key: {pem(tls.key_file)}", f"server_cert: {pem(tls.cert_file)}"]
    if tls.client_ca_file is not None:
        lines += [f"custom_ca: {pem(tls.client_ca_file)}", "client_verify: true"]
    return "\n".join(lines) + "\n"


def monitoring_config() -> str:
    """Turns on the Prometheus endpoint (both kinds serve it only when this file enables it)."""
    return f'prometheus_config {{\n  enable: true,\n  path: "{PROMETHEUS_PATH}"\n}}\n'


def command(
    kind: ResolvedKind,
    *,
    base_path: Path,
    ports: Ports,
    batching_file: Path | None,
    monitoring_file: Path | None,
    cpus: tuple[int, ...] | None = None,
    host: str = LOOPBACK,
    ssl_config_file: Path | None = None,
) -> tuple[str, ...]:
    """The server's argv; `batching_file` None means batching off."""
    program: tuple[str, ...] = (
        (shutil.which(REAL_BINARY) or REAL_BINARY,)
        if kind == REAL_BINARY
        else (sys.executable, "-m", "serving.tfs_compat")
    )
    argv = [
        *program,
        f"--port={ports.tfserving_grpc}",
        f"--rest_api_port={ports.tfserving_rest}",
        f"--model_name={MODEL_NAME}",
        f"--model_base_path={base_path.resolve()}",
    ]
    if batching_file is not None:
        argv += ["--enable_batching=true", f"--batching_parameters_file={batching_file.resolve()}"]
    if cpus is not None:  # pinned: TensorFlow's pools sized to the set, not to the whole machine
        argv += [
            f"--tensorflow_intra_op_parallelism={len(cpus)}",
            f"--tensorflow_inter_op_parallelism={len(cpus)}",
        ]
    if kind == COMPAT:
        argv.append(f"--host={host}")
    if monitoring_file is not None:  # both kinds export Prometheus metrics only when it enables them
        argv.append(f"--monitoring_config_file={monitoring_file.resolve()}")
    if ssl_config_file is not None:  # gRPC over TLS (REST stays plaintext: neither kind has TLS there)
        argv.append(f"--ssl_config_file={ssl_config_file.resolve()}")
    return tuple(argv)


def launch_spec(
    artifacts: ArtifactLayout,
    *,
    kind: ResolvedKind,
    settings: ServerSettings,
    ports: Ports,
    workdir: Path,
    host: str = LOOPBACK,
) -> LaunchSpec:
    """Write the batching/monitoring files into `workdir` and build the launch of the chosen kind."""
    workdir.mkdir(parents=True, exist_ok=True)
    batching_file = None
    if settings.tfserving_batching:
        batching_file = workdir / "batching_parameters.txt"
        batching_file.write_text(batching_parameters(settings))
    monitoring_file = workdir / "monitoring.config"
    monitoring_file.write_text(monitoring_config())
    ssl_config_file = None
    if settings.tls is not None:  # it holds the server's key: readable by this user only
        ssl_config_file = workdir / "ssl.config"
        ssl_config_file.touch(mode=0o600)
        ssl_config_file.chmod(0o600)
        ssl_config_file.write_text(ssl_config(settings))
    argv = command(
        kind,
        base_path=artifacts.tf_base_path,
        ports=ports,
        batching_file=batching_file,
        monitoring_file=monitoring_file,
        cpus=settings.cpus,
        host=host,
        ssl_config_file=ssl_config_file,
    )
    env = {"PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "1"}
    return LaunchSpec(
        name="tfserving",
        argv=argv,
        log_path=workdir / "server.log",
        env=env,
        cwd=_repo_root(),
        cpus=settings.cpus,
    )


def health(ports: Ports, timeout_s: float = 2.0, host: str = LOOPBACK) -> str | None:
    """None when GET /v1/models/linear reports a version AVAILABLE; else what is missing."""
    url = f"http://{url_host(connect_host(host))}:{ports.tfserving_rest}/v1/models/{MODEL_NAME}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return f"GET /v1/models/{MODEL_NAME} on port {ports.tfserving_rest} (HTTP {exc.code})"
    except (OSError, ValueError) as exc:
        return f"GET /v1/models/{MODEL_NAME} on port {ports.tfserving_rest} (not answering: {exc})"
    states = (
        [v.get("state") for v in status.get("model_version_status", [])] if isinstance(status, dict) else []
    )
    if "AVAILABLE" not in states:
        return f"model {MODEL_NAME!r} to be AVAILABLE (states: {states or 'none'})"
    return None


def _repo_root() -> Path:
    """tfs-compat runs as `python -m serving.tfs_compat`: start it where `serving` is importable."""
    return Path(__file__).resolve().parent.parent
