"""The stages the runner drives, and how one cell becomes their settings.

`Stages` is the seam: the runner's bookkeeping is unit-tested with a fake, and `RealStages` wires
the real models/ (export, floor), serving/ (stack, monitor) and loadtest/ (run_load). Heavy
TensorFlow/torch work runs in a fresh interpreter, so the runner process stays light.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from inferload.calibration import Calibration, CalibrationProbe
from inferload.cells import Cell
from inferload.experiments import CalibrationConfig, Experiment, ModelSpec, ServerConfig

__all__ = [
    "RunError",
    "RunningServers",
    "Stages",
    "RealStages",
    "load_settings_for",
    "server_settings_for",
    "topology_for",
]

FLOOR_BUDGET_S = 3.0  # timed calls per framework x batch size of the in-process floor


class RunError(RuntimeError):
    """The matrix cannot run at all (e.g. the model export failed); cell failures are not RunErrors."""


class RunningServers(Protocol):
    """What the runner needs of `serving.stack.Stack`."""

    def alive(self, server: str) -> bool: ...

    def down(self) -> object: ...

    def monitored(self) -> list[Any]: ...  # serving.monitor.MonitoredServer entries


class Stages(Protocol):
    """The heavy work the runner delegates; `RealStages` wires the real packages."""

    def prepare_artifacts(self, spec: ModelSpec, root: Path) -> None: ...

    def measure_floor(self, root: Path, batches: tuple[int, ...], out_path: Path) -> None: ...

    def start_server(self, server: str, config: ServerConfig, *, tfserving_kind: str | None,
                     ports: Any, artifacts: Path, state_dir: Path,
                     cpus: tuple[int, ...] | None = None) -> RunningServers: ...

    def server_kind(self, servers: RunningServers, server: str) -> str | None: ...

    def monitor(self, servers: RunningServers, out_path: Path) -> AbstractContextManager[Any]: ...

    def run_load(self, settings: Any, out_dir: Path) -> Any: ...

    def make_load_settings(self, **fields: Any) -> Any: ...

    def check_server_settings(self, config: ServerConfig, tfserving_kind: str | None) -> None: ...

    def calibration(self, artifacts: Path, batches: tuple[int, ...], out_path: Path,
                    cpus: tuple[int, ...] | None, config: CalibrationConfig,
                    warn: Callable[[str], None]) -> Calibration: ...

    def warmup_chunk(self, settings: Any, out_dir: Path) -> list[tuple[int, float]]: ...


def server_settings_for(config: ServerConfig, tfserving_kind: str | None,
                        cpus: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The experiment's named config as `serving.ServerSettings` fields (`cpus`: where they run)."""
    return {
        "cpus": cpus,
        "torchserve_workers": config.torchserve.workers,
        "torchserve_batch_size": config.torchserve.batch_size,
        "torchserve_max_batch_delay_ms": config.torchserve.max_batch_delay_ms,
        "tfserving_batching": config.tfserving.batching,
        "tfserving_max_batch_size": config.tfserving.max_batch_size,
        "tfserving_batch_timeout_us": config.tfserving.batch_timeout_us,
        "tfserving_num_batch_threads": config.tfserving.num_batch_threads,
        "tfserving_kind": tfserving_kind or "auto",
        **({"tls": _local_tls()} if config.tls else {}),
        "triton_instances": config.triton.instances,
        "triton_max_batch_size": config.triton.max_batch_size,
        "triton_dynamic_batching": config.triton.dynamic_batching is not None,
        "triton_max_queue_delay_us": (config.triton.dynamic_batching.max_queue_delay_us
                                      if config.triton.dynamic_batching else 0),
        "triton_preferred_batch_sizes": (config.triton.dynamic_batching.preferred_batch_sizes
                                         if config.triton.dynamic_batching else ()),
        "triton_response_cache": config.triton.response_cache is not None,
        "triton_cache_mb": config.triton.response_cache.size_mb if config.triton.response_cache else 256,
    }


def _local_tls() -> dict[str, str]:
    """The servers' TLS files: this machine's local CA and certificate (serving/certs.py: made once per
    user in the temp dir, never in a results directory)."""
    from serving.certs import local_material

    material = local_material()
    return {"cert_file": str(material.server.cert), "key_file": str(material.server.key),
            "ca_file": str(material.ca_cert)}


def topology_for(config: ServerConfig) -> Any:
    """The config's replicas, balancer and cache as `serving.replicas.Topology`."""
    from serving.balancer import BalancerTls, CacheSettings
    from serving.replicas import Topology

    cache = None
    if config.cache.kind == "nginx":
        cache = CacheSettings(body_buffer_bytes=int(config.cache.body_buffer_mb * 1_000_000))
    tls = None
    if config.balancer.tls:
        files = _local_tls()
        tls = BalancerTls(cert_file=files["cert_file"], key_file=files["key_file"])
    return Topology(replicas=config.replicas, balancer=config.balancer.kind, policy=config.balancer.policy,
                    cache=cache, tls=tls)


def load_settings_for(cell: Cell, experiment: Experiment, ports: Any, *,
                      server_kind: str | None, cpus: tuple[int, ...] | None = None,
                      endpoint: Any = None) -> dict[str, Any]:
    """The cell as `loadtest.LoadSettings` fields.

    `endpoint` (inferload.targets.Endpoint: host, port, metadata_url) is where the target serves this
    server x protocol; None: 127.0.0.1 at `ports`.

    The arrival seed depends on the repetition only, so every server and protocol at one rate sees
    the very same schedule (common random numbers make the comparison sharper).
    """
    fields: dict[str, Any] = {
        "server": cell.server,
        "protocol": cell.protocol,
        "host": "127.0.0.1",
        "port": ports.serving_port(cell.server, cell.protocol) if endpoint is None else endpoint.port,
        "mode": cell.mode,
        "rate": cell.rate,
        "concurrency": cell.concurrency,
        "duration_s": cell.duration_s if cell.duration_s is not None else experiment.duration_s,
        "warmup_s": experiment.warmup_s,
        "batch": cell.batch,
        "features": experiment.model.features,
        "seed": experiment.seed + cell.repetition,
        "payload_seed": experiment.seed + 1_000 + cell.repetition,
        "max_in_flight": experiment.max_in_flight,
        "processes": experiment.processes,
        "run": cell.cell_id,
        "server_kind": server_kind,
        "cpus": cpus,
    }
    if endpoint is not None:
        fields.update(host=endpoint.host, port=endpoint.port, metadata_url=endpoint.metadata_url)
        if endpoint.security is not None:
            fields["security"] = endpoint.security
        if getattr(endpoint, "grpc_service", None) is not None:
            fields["grpc_service"] = endpoint.grpc_service
    if cell.server_config.tls_on:  # servers started here with TLS: trust this machine's local CA
        fields["security"] = {"tls": True, "ca_cert": _local_tls()["ca_file"]}
        # where the model is described speaks TLS too: TorchServe's own management API, or nginx's
        # front of TF Serving's REST API (TorchServe's management port and TF Serving's own REST stay plain)
        tls_description = cell.server == ("torchserve" if cell.server_config.tls else "tfserving")
        if endpoint is not None and endpoint.metadata_url and tls_description:
            fields["metadata_url"] = endpoint.metadata_url.replace("http://", "https://", 1)
    model_name = getattr(experiment.target, "model_name", None)
    if model_name is not None:  # an external target names the model it serves
        fields["model_name"] = model_name
    if experiment.lateness_limit_ms is not None:
        fields["lateness_p99_limit_ms"] = experiment.lateness_limit_ms
    if cell.repeat_share is not None:
        fields["repeat_share"] = cell.repeat_share
    if experiment.early_stop is not None:  # a search step longer than the cap keeps its own length
        fields["early_stop"] = {
            "percentile": experiment.slo.percentile,
            "interval_within": experiment.early_stop.interval_within,
            "max_duration_s": max(experiment.early_stop.max_duration_s, fields["duration_s"]),
        }
    return fields


def _export_in_child(classes: int, features: int, seed: int, root: str) -> None:
    from models.export import export_all
    from models.linear import LinearSpec

    export_all(LinearSpec(classes=classes, features=features, seed=seed), root)


def _floor_in_child(root: str, batches: list[int], out_path: str) -> None:
    from models.artifacts import ArtifactLayout

    floor = importlib.import_module("models.floor")
    layout = ArtifactLayout(Path(root))
    # A short budget per framework x batch: big full-size batches take seconds per call.
    records = floor.measure_floor(layout, batches, repeats=30, budget_s=FLOOR_BUDGET_S)
    floor.write_floor(records, out_path, spec=layout.spec())


# TensorFlow's C++ start-up log (and absl's) belongs in a log file, not on the console.
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "GRPC_VERBOSITY": "ERROR"}
LOG_TAIL_LINES = 40


def _in_child(target: Callable[..., None], *args: Any, log_path: Path | None = None) -> None:
    """Run heavy TensorFlow/torch work in a fresh interpreter: the runner stays light and fork-safe.

    With `log_path` its output goes to that file and is shown (its tail) only when the step fails.
    """
    code = (f"import sys, json; from inferload.stages import {target.__name__} as f; "
            "f(*json.loads(sys.argv[1]))")
    step = target.__name__.strip("_").removesuffix("_in_child")
    command = [sys.executable, "-c", code, json.dumps(list(args))]
    env = {**os.environ, **QUIET_TF}
    if log_path is None:
        done = subprocess.run(command, check=False, env=env)
        if done.returncode != 0:
            raise RunError(f"{step} failed (exit code {done.returncode}); see the output above")
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"--- {step} ---\n")
        log.flush()
        done = subprocess.run(command, check=False, env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
        raise RunError(f"{step} failed (exit code {done.returncode}); the end of {log_path}:\n"
                       + "\n".join(lines))


class RealStages:
    """The real models/, serving/ and loadtest/ behind the runner."""

    def __init__(self, *, start_timeout_s: float = 180.0, monitor_interval_s: float = 0.5,
                 log_dir: Path | None = None) -> None:
        self.start_timeout_s = start_timeout_s
        self.monitor_interval_s = monitor_interval_s
        self.log_dir = log_dir  # export and floor output go to log_dir/{export,floor}.log (None: console)

    def _log(self, step: str) -> Path | None:
        return None if self.log_dir is None else self.log_dir / f"{step}.log"

    def prepare_artifacts(self, spec: ModelSpec, root: Path) -> None:
        from models.artifacts import ArtifactLayout
        from models.export import is_current
        from models.linear import LinearSpec

        if is_current(ArtifactLayout(root), LinearSpec(spec.classes, spec.features, spec.seed)):
            return
        _in_child(_export_in_child, spec.classes, spec.features, spec.seed, str(root),
                  log_path=self._log("export"))

    def measure_floor(self, root: Path, batches: tuple[int, ...], out_path: Path) -> None:
        _in_child(_floor_in_child, str(root), list(batches), str(out_path), log_path=self._log("floor"))

    def start_server(self, server: str, config: ServerConfig, *, tfserving_kind: str | None,
                     ports: Any, artifacts: Path, state_dir: Path,
                     cpus: tuple[int, ...] | None = None) -> RunningServers:
        from serving import stack
        from serving.settings import ServerSettings

        settings = ServerSettings(**server_settings_for(config, tfserving_kind, cpus))
        # Servers left behind by a run that was killed (not interrupted) hold the ports: stop them.
        with contextlib.suppress(Exception):
            stack.down(state_dir)
        topology = topology_for(config)
        if not topology.plain:  # N replicas behind nginx (serving/replicas.py)
            from serving.replicas import up_replicated

            return up_replicated(artifacts, server=server, settings=settings, ports=ports,
                                 state_dir=state_dir, topology=topology, timeout_s=self.start_timeout_s)
        return stack.up(artifacts, servers=[server], settings=settings, ports=ports,
                        state_dir=state_dir, timeout_s=self.start_timeout_s)

    def server_kind(self, servers: RunningServers, server: str) -> str | None:
        if server not in ("tfserving", "triton"):
            return None
        kind = getattr(servers, f"{server}_kind", None)
        return str(kind) if kind else None

    def monitor(self, servers: RunningServers, out_path: Path) -> AbstractContextManager[Any]:
        from serving.monitor import ServerMonitor

        return ServerMonitor(servers.monitored(), out_path, self.monitor_interval_s)

    def check_server_settings(self, config: ServerConfig, tfserving_kind: str | None) -> None:
        from serving.settings import ServerSettings

        ServerSettings(**server_settings_for(config, tfserving_kind))

    def make_load_settings(self, **fields: Any) -> Any:
        loadtest = importlib.import_module("loadtest")
        return loadtest.LoadSettings(**fields)

    def run_load(self, settings: Any, out_dir: Path) -> Any:
        loadtest = importlib.import_module("loadtest")
        return loadtest.run_load(settings, out_dir, progress=False)  # the runner shows its own

    def calibration(self, artifacts: Path, batches: tuple[int, ...], out_path: Path,
                    cpus: tuple[int, ...] | None, config: CalibrationConfig,
                    warn: Callable[[str], None]) -> Calibration:
        return CalibrationProbe(artifacts=artifacts, batches=batches, out_path=out_path,
                                log_path=(self.log_dir or out_path.parent) / "calibration.log", cpus=cpus,
                                probe_interval_s=config.probe_interval_s, budget_s=config.budget_s, warn=warn)

    def warmup_chunk(self, settings: Any, out_dir: Path) -> list[tuple[int, float]]:
        """One chunk of closed-loop warm-up load: (sent_ns, service ms) of its ok requests, in order."""
        loadtest = importlib.import_module("loadtest")
        loadtest.run_load(settings, out_dir, progress=False)
        records = loadtest.read_run(out_dir).records
        ok = records[records.status == "ok"].sort_values("sent_ns")
        return list(zip(ok.sent_ns.astype(int).tolist(), ok.service_ms.astype(float).tolist(), strict=True))
