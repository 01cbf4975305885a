"""TorchServe: its generated config.properties, command line and health check.

TorchServe keeps a pid file in the temp dir and its worker sockets in `java.io.tmpdir`, so each instance
gets its own temp dir (TMPDIR/TEMP) and its own log dir: several instances can then run side by side.
"""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from models.artifacts import MODEL_NAME, MODEL_VERSION, ArtifactLayout
from serving.ports import LOOPBACK, Ports, connect_host, url_host
from serving.processes import LaunchSpec
from serving.settings import ServerSettings

# One full-size instance is 5.3 MB of JSON, 1 MiB binary: 513 MiB takes a binary or gRPC batch of 512
# (with framing) and a JSON batch of 96. TorchServe's own ceiling is 2 GiB - 1 (Java int sizes, and its
# worker protocol's signed 32-bit lengths), but its frontend holds a body about three times (Netty's
# aggregated direct buffer, the heap copy it hands to the worker, the buffer it writes to the worker
# socket) and the worker a fourth: 513 MiB keeps that under compose's 4 GiB memory limit.
MAX_MESSAGE_BYTES = 513 * 1024 * 1024
# Heap and direct memory (which defaults to the heap size) must both hold two copies of the largest body.
JAVA_HEAP = "-Xmx2g -XX:MaxDirectMemorySize=2g"
RESPONSE_TIMEOUT_S = 120


def mar_version(mar: Path) -> str:
    """The model version in the archive's manifest: the per-model settings only apply under that key."""
    try:
        with zipfile.ZipFile(mar) as archive:
            manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
        return str(manifest["model"]["modelVersion"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return str(MODEL_VERSION)


def config_properties(
    *,
    ports: Ports,
    settings: ServerSettings,
    model_store: Path,
    host: str = LOOPBACK,
    model_version: str = str(MODEL_VERSION),
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> dict[str, str]:
    """The config.properties entries, in file order (host 0.0.0.0 only inside a container).

    `model_version` must equal the .mar's modelVersion, or TorchServe silently ignores the workers and
    batching given in `models`. `max_message_bytes` other than the default is for tests: the same
    refusal on a body of a few MiB instead of 513.
    """
    model = {
        MODEL_NAME: {
            model_version: {
                "marName": f"{MODEL_NAME}.mar",
                "minWorkers": settings.torchserve_workers,
                "maxWorkers": settings.torchserve_workers,
                "batchSize": settings.torchserve_batch_size,
                "maxBatchDelay": settings.torchserve_max_batch_delay_ms,
                "responseTimeout": RESPONSE_TIMEOUT_S,
            }
        }
    }
    address = url_host(host)
    scheme = "https" if settings.tls is not None else "http"
    return {
        "inference_address": f"{scheme}://{address}:{ports.torchserve_inference}",
        "management_address": f"{scheme}://{address}:{ports.torchserve_management}",
        "metrics_address": f"http://{address}:{ports.torchserve_metrics}",
        "grpc_inference_address": host,
        "grpc_inference_port": str(ports.torchserve_grpc),
        "grpc_management_address": host,
        "grpc_management_port": str(ports.torchserve_grpc_management),
        # Token auth (key_file.json in the working directory) only when asked: bound to loopback
        # by default, and a benchmark's requests should not pay for a check nobody needs.
        "disable_token_authorization": str(not settings.torchserve_token_auth).lower(),
        **token_settings(settings),
        **tls_settings(settings),
        "enable_model_api": "false",
        "max_request_size": str(max_message_bytes),
        "max_response_size": str(max_message_bytes),
        "default_workers_per_model": str(settings.torchserve_workers),
        "job_queue_size": str(settings.torchserve_job_queue_size),
        "default_response_timeout": str(RESPONSE_TIMEOUT_S),
        "model_store": str(model_store),
        "load_models": f"{MODEL_NAME}.mar",
        "models": json.dumps(model),
        # The default metrics config is enough for the server-side view: its counters
        # ts_queue_latency_microseconds / ts_inference_latency_microseconds (REST jobs only in 0.12)
        # and ts_inference_requests_total (REST and gRPC) on the metrics port (analysis/server_side.py).
        "metrics_mode": "prometheus",
        "decode_input_request": str(settings.torchserve_decode_input_request).lower(),
        # The periodic system-metrics collector forks a Python process every minute: noise under load.
        "disable_system_metrics": "true",
        # Access and metrics log lines are written per request: off the request threads (log4j's
        # async logger) they cost the frontend no wait on the log file.
        "async_logging": "true",
        "install_py_dep_per_model": "false",
        "vmargs": f"{JAVA_HEAP} -XX:+UseG1GC",
        **pinned_threads(settings),
    }


KEY_FILE = "key_file.json"
TOKEN_EXPIRATION_MIN = 24 * 60  # TorchServe's default is 60 minutes: a long matrix would see its keys expire


def token_settings(settings: ServerSettings) -> dict[str, str]:
    if not settings.torchserve_token_auth:
        return {}
    return {"token_expiration_min": str(TOKEN_EXPIRATION_MIN)}


def tls_settings(settings: ServerSettings) -> dict[str, str]:
    """HTTPS for inference and management, TLS for gRPC (the same certificate); metrics stay plain."""
    if settings.tls is None:
        return {}
    return {
        "certificate_file": str(Path(settings.tls.cert_file).resolve()),
        "private_key_file": str(Path(settings.tls.key_file).resolve()),
        "enable_grpc_ssl": "true",
    }


def key_file(workdir: Path) -> Path:
    """Where TorchServe writes its keys: key_file.json in its working directory (`user.dir`)."""
    return workdir / KEY_FILE


def pinned_threads(settings: ServerSettings) -> dict[str, str]:
    """Pinned to n CPUs: Netty's frontend and backend pools get n threads (default: every core)."""
    if settings.cpus is None:
        return {}
    n = str(len(settings.cpus))
    return {"number_of_netty_threads": n, "netty_client_threads": n}


def worker_threads(settings: ServerSettings) -> int | None:
    """Pinned: each Python worker's torch/OpenMP pool shares the set with the other workers."""
    if settings.cpus is None:
        return None
    return max(1, len(settings.cpus) // settings.torchserve_workers)


def write_config(path: Path, entries: dict[str, str]) -> Path:
    """Write `config_properties` entries as TorchServe reads them (key=value lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# generated by inferload (serving/torchserve.py)"] + [f"{k}={v}" for k, v in entries.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def launch_spec(
    artifacts: ArtifactLayout,
    *,
    settings: ServerSettings,
    ports: Ports,
    workdir: Path,
    tmpdir: Path,
    host: str = LOOPBACK,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> LaunchSpec:
    """`torchserve --start --foreground` with its config, temp dir and log dir under `workdir`."""
    entries = config_properties(
        ports=ports,
        settings=settings,
        model_store=artifacts.model_store.resolve(),
        model_version=mar_version(artifacts.mar),
        host=host,
        max_message_bytes=max_message_bytes,
    )
    config = write_config(workdir / "config.properties", entries)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    tmpdir.mkdir(parents=True, exist_ok=True)
    argv = (
        sys.executable, "-m", "ts.model_server",
        "--start", "--foreground", "--ncs",
        "--model-store", str(artifacts.model_store.resolve()),
        "--ts-config", str(config),
    )  # fmt: skip
    env = {
        "TMPDIR": str(tmpdir),
        "TEMP": str(tmpdir),  # becomes java.io.tmpdir: worker sockets and the unpacked .mar go there
        "TMP": str(tmpdir),
        "LOG_LOCATION": str(logs),
        "METRICS_LOCATION": str(logs),
        "PYTHONUNBUFFERED": "1",
    }
    threads = worker_threads(settings)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return LaunchSpec(
        name="torchserve",
        argv=argv,
        log_path=workdir / "server.log",
        env=env,
        cwd=workdir,
        cpus=settings.cpus,
    )


def health(
    ports: Ports,
    workers: int,
    timeout_s: float = 2.0,
    host: str = LOOPBACK,
    *,
    tls_ca_file: str | None = None,
    workdir: Path | None = None,
) -> str | None:
    """None when /ping says Healthy and all `workers` of the model are READY; else what is missing.

    `tls_ca_file`: the server speaks HTTPS, verified with this CA. `workdir`: token auth is on, and
    the management API takes the management key of the key file TorchServe wrote there."""
    scheme = "https" if tls_ca_file is not None else "http"
    base = f"{scheme}://{url_host(connect_host(host))}"
    keys: dict[str, dict[str, str]] = {"inference": {}, "management": {}}
    if workdir is not None:  # every API but metrics takes its own key (a wrong or none: HTTP 400)
        try:
            document = json.loads(key_file(workdir).read_text())
            keys = {api: {"Authorization": f"Bearer {document[api]['key']}"} for api in keys}
        except (OSError, ValueError, KeyError, TypeError):
            return f"its key file {key_file(workdir)} (token authorization is on)"
    try:
        ping = _get_json(f"{base}:{ports.torchserve_inference}/ping", timeout_s, tls_ca_file,
                         keys["inference"])
    except OSError as exc:
        return f"GET /ping on port {ports.torchserve_inference} ({_reason(exc)})"
    if not isinstance(ping, dict) or ping.get("status") != "Healthy":
        return f"GET /ping to say Healthy (it said {ping!r})"
    try:
        described = _get_json(f"{base}:{ports.torchserve_management}/models/{MODEL_NAME}", timeout_s,
                              tls_ca_file, keys["management"])
    except OSError as exc:
        return f"model {MODEL_NAME!r} to be registered ({_reason(exc)})"
    ready = sum(
        1
        for version in (described if isinstance(described, list) else [])
        for worker in version.get("workers", [])
        if worker.get("status") == "READY"
    )
    if ready < workers:
        return f"{workers} READY worker(s) of model {MODEL_NAME!r} (have {ready})"
    return None


def _get_json(url: str, timeout_s: float, tls_ca_file: str | None = None,
              headers: dict[str, str] | None = None) -> object:
    context = ssl.create_default_context(cafile=tls_ca_file) if tls_ca_file is not None else None
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
        return json.loads(response.read())


def _reason(exc: OSError) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    reason = getattr(exc, "reason", exc)
    return f"not answering: {reason}"
