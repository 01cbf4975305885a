"""Triton Inference Server: which binary runs, its runtime directory, model repository, command line, health.

Two kinds, recorded like TF Serving's: a `tritonserver` on PATH wins (`tritonserver`, e.g. inside
NVIDIA's image); otherwise the binary of the nvidia-pytriton wheel (`pytriton`: Triton 2.51 with its
Python backend and local response cache). The wheel keeps the Python backend's stubs per Python
version apart from the backend, so each start builds a backend directory in its work dir
(`backends/python/`: the wheel's libtriton_python.so and utils, and the stub for this Python),
and a model repository of its own (`repository/linear/`: config.pbtxt rendered from the server
settings, `1/` linked to the exported version directory), so server configurations never touch the
exported artifacts.

The stub reads neither PYTHONPATH nor the caller's virtual environment, and it cannot use NumPy 2
(its pybind11 reads NumPy 1's dtype layout: every output tensor comes back with the wrong byte
size), so the model runs in an environment of its own: `make setup` makes `.venv/triton-env`, a
virtual environment of this Python with NumPy 1.26.4 only (what nvidia-pytriton itself pins), and
config.pbtxt names it as EXECUTION_ENV_PATH (the backend sources its bin/activate before the stub
starts; the stub's Python then finds it through its pyvenv.cfg). The library path holds this
interpreter's libpython (the stub links libpython3.11.so.1.0).

Triton binds 0.0.0.0 unless told: every start passes --http-address, --grpc-address and
--metrics-address (127.0.0.1 unless `serve up --bind`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import Final, Literal

from models.artifacts import MODEL_NAME, MODEL_VERSION, ArtifactLayout
from models.linear import LinearSpec
from models.triton_export import CONFIG_FILE, model_config
from serving.ports import LOOPBACK, Ports, connect_host, url_host
from serving.processes import LaunchSpec
from serving.settings import ServerSettings

ON_PATH: Final = "tritonserver"
WHEEL: Final = "pytriton"
ResolvedKind = Literal["tritonserver", "pytriton"]
WHEEL_PACKAGE = "nvidia-pytriton"
WHEEL_PIN = "nvidia-pytriton==0.7.0"
DESCRIPTION = "Triton 2.51, Python backend"  # what the wheel carries; reports quote it
# Triton reads Content-Length as a signed 32-bit int (http_server.cc GetContentLength) and caps gRPC
# messages at INT32_MAX (common.h MAX_GRPC_MESSAGE_SIZE): the largest body over either protocol.
MAX_MESSAGE_BYTES = 2**31 - 1
PYTHON_STUB = "triton_python_backend_stub"
PYTHON_BACKEND_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")
LIBPYTHON = f"libpython{sys.version_info.major}.{sys.version_info.minor}.so.1.0"
# The Python backend's shared-memory region per instance starts here and grows in 1 MiB steps: a
# full-size request (1 MiB of float32) fits at once instead of growing on the first requests.
SHM_DEFAULT_BYTES = 64 * 2**20
MODEL_ENV = "triton-env"  # under this interpreter's environment (sys.prefix): the model's Python
MODEL_ENV_NUMPY = "numpy==1.26.4"


class TritonUnavailableError(RuntimeError):
    """The requested Triton kind cannot run here; the message says what to install."""


def wheel_root() -> Path | None:
    """The nvidia-pytriton wheel's `pytriton/tritonserver` directory, or None if it is not installed."""
    try:
        files = metadata.distribution(WHEEL_PACKAGE).locate_file("pytriton/tritonserver")
    except metadata.PackageNotFoundError:
        return None
    root = Path(str(files))
    return root if (root / "bin" / "tritonserver").is_file() else None


def wheel_libs() -> Path | None:
    """The wheel's bundled shared libraries (libtritonserver, libcudart, libb64, ...)."""
    root = wheel_root()
    if root is None:
        return None
    libs = root.parent.parent / "nvidia_pytriton.libs"
    return libs if libs.is_dir() else None


def resolve_kind(requested: str) -> ResolvedKind:
    """`auto`: a tritonserver on PATH, else the wheel's. Raises TritonUnavailableError naming the fix."""
    on_path = shutil.which(ON_PATH) is not None
    if requested == "auto":
        if on_path:
            return "tritonserver"
        requested = WHEEL
    if requested == ON_PATH and not on_path:
        raise TritonUnavailableError(
            "tritonserver is not on PATH: install Triton, or use triton kind 'auto' / 'pytriton' (the "
            f"{WHEEL_PACKAGE} wheel's binary)"
        )
    if requested == WHEEL and wheel_root() is None:
        raise TritonUnavailableError(
            f"no tritonserver: none on PATH and the {WHEEL_PACKAGE} wheel is not installed: run `make setup` "
            f"(or `pip install --no-deps '{WHEEL_PIN}'`)"
        )
    if requested not in (ON_PATH, WHEEL):
        raise ValueError(f"unknown Triton kind {requested!r}: expected auto, {ON_PATH} or {WHEEL}")
    return requested  # type: ignore[return-value]


def binary(kind: ResolvedKind) -> str:
    if kind == ON_PATH:
        found = shutil.which(ON_PATH)
        if found is None:
            raise TritonUnavailableError("tritonserver is no longer on PATH")
        return found
    root = wheel_root()
    if root is None:
        raise TritonUnavailableError(f"the {WHEEL_PACKAGE} wheel is not installed: run `make setup`")
    return str(root / "bin" / "tritonserver")


def libpython_dir() -> Path | None:
    """Where this interpreter's shared libpython is (the stub needs it), or None when nowhere known."""
    candidates = [sysconfig.get_config_var("LIBDIR"), "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"]
    for directory in candidates:
        if directory and (Path(directory) / LIBPYTHON).exists():
            return Path(directory)
    return None


def environment_problems(kind: ResolvedKind) -> list[str]:
    """What keeps this kind from running a Python-backend model here, each with its fix."""
    problems = []
    if kind == WHEEL:
        root = wheel_root()
        stub = root / "python_backend_stubs" / _python_version() / PYTHON_STUB if root else None
        if stub is not None and not stub.is_file():
            problems.append(
                f"the {WHEEL_PACKAGE} wheel has no Python-backend stub for Python {_python_version()} "
                f"({stub}): run inferload with Python 3.8-3.13"
            )
        if libpython_dir() is None:
            problems.append(
                f"{LIBPYTHON} not found (Triton's Python-backend stub links it): install the shared "
                f"library, e.g. `apt-get install libpython{_python_version()}`"
            )
    env = model_env()
    version = MODEL_ENV_NUMPY.split("==")[1]
    has_numpy = list(env.glob(f"lib/python*/site-packages/numpy-{version}.dist-info"))
    if not (env / "bin" / "activate").is_file() or not has_numpy:
        problems.append(
            f"the model's Python environment {env} (a virtual environment with {MODEL_ENV_NUMPY}) is "
            "missing: "
            f"run `make setup`, or `{sys.executable} -m venv {env} && {env}/bin/pip install "
            f"'{MODEL_ENV_NUMPY}'`"
        )
    return problems


def model_env() -> Path:
    """The Python environment Triton's Python backend runs the model in (its EXECUTION_ENV_PATH)."""
    return Path(sys.prefix) / MODEL_ENV


def _python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def threads(settings: ServerSettings) -> int | None:
    """Pinned to n CPUs: each model instance's BLAS threads share them; None: unpinned (library default)."""
    if settings.cpus is None:
        return None
    return max(1, len(settings.cpus) // settings.triton_instances)


def render_config(spec: LinearSpec, settings: ServerSettings, *, execution_env: str | None) -> str:
    return model_config(
        classes=spec.classes,
        features=spec.features,
        max_batch_size=settings.triton_max_batch_size,
        instances=settings.triton_instances,
        dynamic_batching=settings.triton_dynamic_batching,
        max_queue_delay_us=settings.triton_max_queue_delay_us,
        preferred_batch_sizes=settings.triton_preferred_batch_sizes,
        response_cache=settings.triton_response_cache,
        execution_env=execution_env,
    )


def write_repository(artifacts: ArtifactLayout, settings: ServerSettings, repository: Path) -> Path:
    """`repository/linear/`: config.pbtxt for these settings, `1/` a link to the exported version dir."""
    model_dir = repository / MODEL_NAME
    shutil.rmtree(repository, ignore_errors=True)
    model_dir.mkdir(parents=True)
    version_dir = artifacts.triton_version_dir.resolve()
    (model_dir / str(MODEL_VERSION)).symlink_to(version_dir, target_is_directory=True)
    config = render_config(artifacts.spec(), settings, execution_env=str(model_env()))
    (model_dir / CONFIG_FILE).write_text(config)
    return repository


def write_backends(kind: ResolvedKind, runtime: Path) -> Path | None:
    """The wheel's Python backend with this Python's stub beside it, under `runtime/backends`.

    None for a tritonserver on PATH: it brings its own backends directory.
    """
    if kind != WHEEL:
        return None
    root = wheel_root()
    assert root is not None  # resolve_kind checked
    backends = runtime / "backends"
    python = backends / "python"
    shutil.rmtree(backends, ignore_errors=True)
    python.mkdir(parents=True)
    for name in PYTHON_BACKEND_FILES:
        (python / name).symlink_to(root / "backends" / "python" / name)
    (python / PYTHON_STUB).symlink_to(root / "python_backend_stubs" / _python_version() / PYTHON_STUB)
    return backends


def command(
    kind: ResolvedKind,
    *,
    repository: Path,
    backends: Path | None,
    ports: Ports,
    settings: ServerSettings,
    host: str = LOOPBACK,
) -> tuple[str, ...]:
    """tritonserver's argv: every listener on `host`, thread pools sized to the CPU set when pinned."""
    argv = [
        binary(kind),
        f"--model-repository={repository.resolve()}",
        f"--http-address={host}",
        f"--http-port={ports.triton_http}",
        f"--grpc-address={host}",
        f"--grpc-port={ports.triton_grpc}",
        f"--metrics-address={host}",
        f"--metrics-port={ports.triton_metrics}",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        "--exit-on-error=true",
        "--log-verbose=0",
        f"--backend-config=python,shm-default-byte-size={SHM_DEFAULT_BYTES}",
    ]
    if backends is not None:
        argv.append(f"--backend-directory={backends.resolve()}")
        root = wheel_root()
        assert root is not None
        argv.append(f"--cache-directory={root / 'caches'}")
    if settings.triton_response_cache:
        argv.append(f"--cache-config=local,size={settings.triton_cache_mb * 2**20}")
    if settings.cpus is not None:  # pinned: the HTTP front end's threads sized to the set (default 8)
        argv.append(f"--http-thread-count={max(2, len(settings.cpus))}")
    return tuple(argv)


def environment(kind: ResolvedKind, settings: ServerSettings) -> dict[str, str]:
    """The server's environment: the wheel's libraries and libpython on the library path; BLAS threads."""
    env = {}
    if kind == WHEEL:
        paths = [str(p) for p in (wheel_libs(), libpython_dir()) if p is not None]
        inherited = os.environ.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*paths, *([inherited] if inherited else [])])
    count = threads(settings)
    if count is not None:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(count)
    return env


def launch_spec(
    artifacts: ArtifactLayout,
    *,
    kind: ResolvedKind,
    settings: ServerSettings,
    ports: Ports,
    workdir: Path,
    host: str = LOOPBACK,
) -> LaunchSpec:
    """Write the repository (and the wheel's backend directory) into `workdir`; the launch of `kind`."""
    workdir.mkdir(parents=True, exist_ok=True)
    repository = write_repository(artifacts, settings, workdir / "repository")
    backends = write_backends(kind, workdir / "runtime")
    argv = command(kind, repository=repository, backends=backends, ports=ports, settings=settings, host=host)
    return LaunchSpec(
        name="triton",
        argv=argv,
        log_path=workdir / "server.log",
        env=environment(kind, settings),
        cwd=workdir,
        cpus=settings.cpus,
    )


def health(ports: Ports, timeout_s: float = 2.0, host: str = LOOPBACK) -> str | None:
    """None when GET /v2/models/linear/ready answers 200 (the model loaded and ready); else what is "
    "missing."""
    base = f"http://{url_host(connect_host(host))}:{ports.triton_http}"
    try:
        with urllib.request.urlopen(f"{base}/v2/models/{MODEL_NAME}/ready", timeout=timeout_s) as response:
            response.read()
        return None
    except urllib.error.HTTPError as exc:
        return f"model {MODEL_NAME!r} to be ready (GET /v2/models/{MODEL_NAME}/ready: HTTP {exc.code})"
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        return f"GET /v2/models/{MODEL_NAME}/ready on port {ports.triton_http} (not answering: {reason})"


def server_version(ports: Ports, timeout_s: float = 2.0, host: str = LOOPBACK) -> str | None:
    """Triton's own version from GET /v2 (e.g. "2.51.0"), None when it does not answer."""
    url = f"http://{url_host(connect_host(host))}:{ports.triton_http}/v2"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            document = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return str(document.get("version")) if isinstance(document, dict) and document.get("version") else None
