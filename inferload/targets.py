"""Where the servers of a matrix are: started here (`local`), by docker compose, or the user's own.

The runner talks to one `TargetDriver` per matrix; it decides how a group of cells gets its running
servers, where each cell's load goes, and what is checked before any load and before each cell:
- `local`: `Stages.start_server` starts them on 127.0.0.1 (today's behaviour), restarted if one dies.
- `compose`: serving/compose.py's `ComposeStack` brings the services up with each server config.
- `external`: the user's URLs. Nothing is ever started, restarted or stopped: `ExternalServers`
  only checks health and the served model (via loadtest's discovery) and names the metrics URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from inferload.cells import Cell
from inferload.experiments import (
    ComposeTarget,
    Experiment,
    ExperimentError,
    ExternalEndpoints,
    ExternalTarget,
    LocalTarget,
    ServerConfig,
)
from inferload.stages import RunningServers, Stages, server_settings_for

__all__ = [
    "ComposeDriver",
    "Endpoint",
    "ExternalDriver",
    "ExternalServers",
    "LocalDriver",
    "TargetDriver",
    "TargetError",
    "driver_for",
]

HEALTH_TIMEOUT_S = 5.0
# What serves there when the user does not say: TorchServe is TorchServe; TF Serving may be the real
# binary or tfs-compat, which only the user knows; `triton` may be any V2 server (KServe, MLServer, ...).
_UNLABELLED_KIND = {"torchserve": "torchserve", "tfserving": "external", "triton": "v2"}
LOOPBACK = "127.0.0.1"


class TargetError(ExperimentError):
    """The target cannot be measured (unreachable, another model or input width): fix it, then rerun."""


@dataclass(frozen=True)
class Endpoint:
    """Where one server x protocol of a target answers, where its model is described, and how it is
    secured (loadtest.Security: TLS files and where the credentials are; None: plaintext, none)."""

    host: str
    port: int
    metadata_url: str | None
    security: Any = None
    grpc_service: str | None = None  # a V2 server's gRPC service, when not Triton's

    def describe(self) -> dict[str, Any]:
        """For manifests and cell files: credentials by presence and fingerprint, never a value."""
        data = asdict(self)
        data.pop("security")
        if self.security is not None and not self.security.plain:
            data["security"] = self.security.describe()
        if self.grpc_service is None:
            del data["grpc_service"]
        return data


class TargetDriver(Protocol):
    """What the runner needs of a target."""

    kind: str
    needs_artifacts: bool  # local and compose serve our export; an external target serves its own

    def describe(self) -> dict[str, Any]: ...

    def check(self, experiment: Experiment) -> None: ...

    def bring_up(self, server: str, config: ServerConfig, *, stages: Stages, experiment: Experiment,
                 ports: Any, artifacts: Path, state_dir: Path,
                 cpus: tuple[int, ...] | None = None) -> RunningServers: ...

    def endpoint(self, server: str, protocol: str, ports: Any) -> Endpoint: ...

    def before_cell(self, servers: RunningServers, cell: Cell, experiment: Experiment) -> str | None: ...

    def start_failure(self, server: str, error: Exception) -> str: ...


def _local_endpoint(server: str, protocol: str, ports: Any) -> Endpoint:
    metadata = f"http://{LOOPBACK}:{ports.metadata_port(server)}"
    return Endpoint(LOOPBACK, ports.serving_port(server, protocol), metadata)


class LocalDriver:
    """Servers started on this machine by the runner (through `Stages.start_server`)."""

    kind = "local"
    needs_artifacts = True

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": LOOPBACK}

    def check(self, experiment: Experiment) -> None:
        """Nothing runs yet: the stack's own preflight checks artifacts and ports when it starts."""

    def bring_up(self, server: str, config: ServerConfig, *, stages: Stages, experiment: Experiment,
                 ports: Any, artifacts: Path, state_dir: Path,
                 cpus: tuple[int, ...] | None = None) -> RunningServers:
        return stages.start_server(server, config, tfserving_kind=experiment.tfserving_kind, ports=ports,
                                   artifacts=artifacts, state_dir=state_dir, cpus=cpus)

    def endpoint(self, server: str, protocol: str, ports: Any) -> Endpoint:
        return _local_endpoint(server, protocol, ports)

    def before_cell(self, servers: RunningServers, cell: Cell, experiment: Experiment) -> str | None:
        return None  # the load's own preflight checks the served model

    def start_failure(self, server: str, error: Exception) -> str:
        return f"{server} did not start: {error}"


ComposeFactory = Callable[..., Any]


class ComposeDriver:
    """docker compose services (serving/compose.py), brought up per server config and torn down after.

    `stack_factory` builds the `ComposeStack` (a fake in the runner's unit test).
    """

    kind = "compose"
    needs_artifacts = True

    def __init__(self, spec: ComposeTarget, stack_factory: ComposeFactory | None = None) -> None:
        self.spec = spec
        self._factory = stack_factory

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.spec.model_dump(mode="json")}

    def check(self, experiment: Experiment) -> None:
        if not Path(self.spec.file).exists():
            raise TargetError(f"target.file {self.spec.file}: no such compose file")

    def bring_up(self, server: str, config: ServerConfig, *, stages: Stages, experiment: Experiment,
                 ports: Any, artifacts: Path, state_dir: Path,
                 cpus: tuple[int, ...] | None = None) -> RunningServers:
        from serving.settings import ServerSettings

        factory = self._factory
        if factory is None:
            from serving.compose import ComposeStack

            factory = ComposeStack
        limits = _compose_limits(self.spec)
        # The containers run under the compose CPU limit (target.cpus), not a host CPU set.
        settings = ServerSettings(**server_settings_for(config, None))
        stack = factory(state_dir=state_dir, settings=settings, servers=[server], limits=limits, ports=ports,
                        artifacts=artifacts, compose_file=self.spec.file, project=self.spec.project)
        return stack.up()  # type: ignore[no-any-return]

    def endpoint(self, server: str, protocol: str, ports: Any) -> Endpoint:
        return _local_endpoint(server, protocol, ports)  # compose publishes the ports on 127.0.0.1

    def before_cell(self, servers: RunningServers, cell: Cell, experiment: Experiment) -> str | None:
        return None

    def start_failure(self, server: str, error: Exception) -> str:
        return f"{server} (docker compose) did not come up: {error}"


def _compose_limits(spec: ComposeTarget) -> Any:
    from serving.compose_override import ComposeLimits

    return ComposeLimits(cpus=spec.cpus, memory=spec.memory)


class ExternalServers:
    """The user's running servers, as the runner and the monitor see them; never started or stopped."""

    def __init__(self, spec: ExternalTarget, servers: Iterable[str]) -> None:
        self.spec = spec
        self.servers = tuple(servers)

    @property
    def tfserving_kind(self) -> str | None:
        """The label the user gave TF Serving (None: not said)."""
        endpoints = self.spec.servers.get("tfserving")  # type: ignore[call-overload]
        return endpoints.kind if endpoints is not None and "tfserving" in self.servers else None

    @property
    def triton_kind(self) -> str | None:
        """What serves the V2 protocol there: the user's label, else `v2`."""
        endpoints = self.spec.servers.get("triton")  # type: ignore[call-overload]
        if endpoints is None or "triton" not in self.servers:
            return None
        return endpoints.kind or _UNLABELLED_KIND["triton"]

    def alive(self, server: str) -> bool:
        return server in self.servers and self.problem(server) is None

    def problem(self, server: str) -> str | None:
        """None when the server answers its health check; else what is wrong, naming the URL."""
        return health_problem(server, self._endpoints(server), self.spec.model_name)

    def down(self) -> list[str]:
        """Never stops anything: the servers are the user's."""
        return []

    def monitored(self) -> list[Any]:
        """Metrics URLs only (pid None): their processes are not ours to sample."""
        from serving.metrics_file import MonitoredServer

        return [
            MonitoredServer(name=server, kind=self._endpoints(server).kind or _UNLABELLED_KIND[server],
                            metrics_url=self._endpoints(server).metrics, pid=None)
            for server in self.servers
        ]

    def _endpoints(self, server: str) -> ExternalEndpoints:
        return self.spec.servers[server]  # type: ignore[index]


def health_problem(server: str, endpoints: ExternalEndpoints, model_name: str) -> str | None:
    """TF Serving: the model has a version AVAILABLE. TorchServe: /ping says Healthy. A V2 server: its
    model metadata and ready endpoints answer. Over TLS and with the credentials the endpoints name (a
    refusal or a TLS failure is named as such)."""
    import ssl

    from loadtest._discovery import is_refusal
    from loadtest._security import CredentialError, Credentials, describe_tls_failure, open_url

    if server == "triton":
        from loadtest import v2_ready_problem

        security = endpoints.security_for(endpoints.rest)
        try:
            credentials = Credentials.load(security)
        except CredentialError as exc:
            return f"{server} at {endpoints.rest}: {exc}"
        return v2_ready_problem(endpoints.rest, model_name, timeout_s=HEALTH_TIMEOUT_S, security=security,
                                credentials=credentials)
    if server == "tfserving":
        url = f"{endpoints.rest}/v1/models/{model_name}"
    else:
        url = f"{endpoints.rest}/ping"
    security = endpoints.security_for(endpoints.rest)
    try:
        credentials = Credentials.load(security)
        with open_url(url, security=security, credentials=credentials,
                      timeout_s=HEALTH_TIMEOUT_S) as response:
            document = json.loads(response.read())
    except CredentialError as exc:
        return f"{server} at {url}: {exc}"
    except urllib.error.HTTPError as exc:
        text = credentials.redact(exc.read()[:300].decode("utf-8", "replace"))
        if is_refusal(exc.code, text):
            return (f"{server} at {url} refused the credentials (HTTP {exc.code}: {' '.join(text.split())}); "
                    f"sent: {credentials.describe()}")
        if server == "tfserving" and exc.code == 404:
            return f"tfserving at {endpoints.rest} serves no model named {model_name!r} ({url}: HTTP 404)"
        return f"{server} at {url} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            return describe_tls_failure(reason, url)
        return f"{server} does not answer at {url} ({reason})"
    if server == "tfserving":
        states = [v.get("state") for v in document.get("model_version_status", [])] \
            if isinstance(document, dict) else []
        if "AVAILABLE" not in states:
            return f"tfserving at {url}: model {model_name!r} is not AVAILABLE (states: {states or 'none'})"
        return None
    if not isinstance(document, dict) or document.get("status") != "Healthy":
        return f"torchserve at {url} is not Healthy (it said {document!r})"
    return None


class ExternalDriver:
    """The user's servers at the URLs of `target.servers`; checked, never restarted."""

    kind = "external"
    needs_artifacts = False

    def __init__(self, spec: ExternalTarget) -> None:
        self.spec = spec

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.spec.model_dump(mode="json", exclude={"kind"})}

    def check(self, experiment: Experiment) -> None:
        """Before any load: every server answers and serves the model at the matrix's input width."""
        problems = []
        for server in experiment.servers:
            problem = health_problem(server, self.spec.servers[server], self.spec.model_name)  # type: ignore[index]
            problem = problem or self._model_problem(server, experiment.model.features)
            if problem:
                problems.append(problem)
        if problems:
            raise TargetError(
                "the external target cannot be measured (nothing was sent):\n  - " + "\n  - ".join(problems)
                + "\n  fix the addresses under target.servers, or start the servers, then rerun"
            )

    def bring_up(self, server: str, config: ServerConfig, *, stages: Stages, experiment: Experiment,
                 ports: Any, artifacts: Path, state_dir: Path,
                 cpus: tuple[int, ...] | None = None) -> RunningServers:
        servers = ExternalServers(self.spec, [server])
        problem = servers.problem(server)
        if problem:
            raise TargetError(problem)
        return servers

    def endpoint(self, server: str, protocol: str, ports: Any) -> Endpoint:
        from loadtest import split_host

        endpoints: ExternalEndpoints = self.spec.servers[server]  # type: ignore[index]
        url = endpoints.grpc if protocol == "grpc" else endpoints.rest
        host, port = split_host(url)
        assert port is not None  # the schema requires ports
        metadata = endpoints.management if server == "torchserve" else endpoints.rest
        return Endpoint(host, port, metadata, endpoints.security_for(url), endpoints.grpc_service)

    def before_cell(self, servers: RunningServers, cell: Cell, experiment: Experiment) -> str | None:
        """The server may have been redeployed since the last cell: check the served model again."""
        return self._model_problem(cell.server, experiment.model.features)

    def start_failure(self, server: str, error: Exception) -> str:
        return f"{server} is not healthy (the runner never restarts an external server): {error}"

    def _model_problem(self, server: str, features: int) -> str | None:
        from loadtest import DiscoveryError, describe_served_model, v2_tensor_problem
        from loadtest._security import CredentialError, Credentials

        endpoints: ExternalEndpoints = self.spec.servers[server]  # type: ignore[index]
        url = endpoints.management if server == "torchserve" else endpoints.rest
        assert url is not None  # the schema requires TorchServe's management URL
        security = endpoints.security_for(url)
        try:
            served = describe_served_model(server, url, self.spec.model_name, security=security,
                                           credentials=Credentials.load(security))
        except (DiscoveryError, CredentialError) as exc:
            return str(exc)
        tensor_problem = v2_tensor_problem(served)
        if tensor_problem is not None:
            return f"{server} at {served.source}: {tensor_problem}"
        if served.features is None:
            return (f"{server} at {served.source} does not say the input width of model "
                    f"{self.spec.model_name!r}: serve the model exported by `inferload export`")
        if served.features != features:
            return (f"{server} at {served.source} serves model {self.spec.model_name!r} with "
                    f"{served.features} input features, but the matrix's model has {features}: set "
                    f"model.features to {served.features}, or point target.servers.{server} at the "
                    "right server")
        return None


def driver_for(experiment: Experiment, *, compose_factory: ComposeFactory | None = None) -> TargetDriver:
    """The driver of the matrix's `target:` section."""
    target = experiment.target
    if isinstance(target, ExternalTarget):
        return ExternalDriver(target)
    if isinstance(target, ComposeTarget):
        return ComposeDriver(target, compose_factory)
    assert isinstance(target, LocalTarget)
    return LocalDriver()
