"""The experiment matrix: a YAML file validated into one typed, frozen object.

Everything a matrix can get wrong is caught here, before any model is exported or any server
starts, and every error names the field and the line of the YAML file it came from (a typo in a
25-minute matrix should cost seconds, not the whole run).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inferload_formats import (  # the matrix's `slo:` is the format's SLO, as the manifest records it
    PROTOCOLS,
    SERVERS,
    Protocol,
    Server,
    Slo,
    TfServingKind,
)
from loadtest._security import Security

__all__ = [
    "SERVERS",
    "PROTOCOLS",
    "ExperimentError",
    "Experiment",
    "CpuSets",
    "EarlyStopConfig",
    "AaConfig",
    "CalibrationConfig",
    "RoundsConfig",
    "ServerWarmup",
    "ModelSpec",
    "LoadMatrix",
    "RateSearch",
    "ServerConfig",
    "BalancerConfig",
    "CacheConfig",
    "TorchServeConfig",
    "TFServingConfig",
    "TritonConfig",
    "TritonDynamicBatching",
    "TritonResponseCache",
    "Slo",
    "LocalTarget",
    "ComposeTarget",
    "ExternalTarget",
    "ExternalEndpoints",
    "Target",
    "load_experiment",
    "parse_experiment",
]

TFServingKind = TfServingKind  # the matrix's name for it

Path_ = tuple[str | int, ...]
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


class ExperimentError(ValueError):
    """A matrix that cannot run; the message lists every problem as `file:line: field: what to do`."""


class FieldProblem(ValueError):
    """Raised by whole-object checks to point the error at one sub-field (e.g. `rates`) and its line."""

    def __init__(self, field: str | int | tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.field: tuple[str | int, ...] = field if isinstance(field, tuple) else (field,)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """Size and seed of the linear classifier; tests and smoke runs use a small one."""

    classes: int = Field(ge=2, le=4096)
    features: int = Field(ge=1, le=16_777_216)
    seed: int = Field(ge=0)


class RateSearch(_Strict):
    """Search each sweep line's max Poisson rate under the SLO (inferload/search.py), perf_analyzer-style.

    Step up from `start` by `factor` until a step misses the SLO (or the generator cannot keep up:
    an upper bound, not a miss) or `max` is reached; a `start` that already misses steps down to `min`.
    Then `bisect_steps` bisections between the last rate met and the first not met.
    """

    start: float = Field(gt=0, description="first rate offered, req/s")
    factor: float = Field(default=2.0, gt=1, le=16, description="geometric step between rates")
    max: float = Field(gt=0, description="never offer more than this, req/s")
    min: float | None = Field(default=None, gt=0, description="lowest rate when stepping down "
                              "(default start / factor^2)")
    bisect_steps: int = Field(default=3, ge=0, le=10)
    inflation: float = Field(
        default=1.0, ge=1, le=1000,
        description="the variance inflation each step is sized for: a step at rate r lasts long enough "
        "for 1.2 x requests_needed(SLO percentile, inflation) requests (inferload/search.py). Requests in "
        "a queue are correlated and worth fewer independent ones (loadtest/_percentiles.py); 1 sizes "
        "the steps for independent requests (which the interval still counts as worth n / 2.16)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RateSearch:
        if self.max < self.start:
            raise FieldProblem("max", f"max {self.max:g} is below start {self.start:g}: raise max")
        if self.min is not None and self.min > self.start:
            raise FieldProblem("min", f"min {self.min:g} is above start {self.start:g}: lower min")
        return self

    @property
    def floor(self) -> float:
        return self.min if self.min is not None else self.start / self.factor**2


class LoadMatrix(_Strict):
    """Open loop (Poisson rates, req/s, or a max-rate `search`) or closed loop (fixed concurrencies)."""

    mode: Literal["open", "closed"]
    rates: tuple[float, ...] | None = None
    concurrencies: tuple[int, ...] | None = None
    search: RateSearch | None = None

    @model_validator(mode="after")
    def _one_list_per_mode(self) -> LoadMatrix:
        if self.search is not None:
            if self.mode != "open":
                raise FieldProblem("search", "the max-rate search offers Poisson rates: set `mode: open`")
            if self.rates is not None:
                raise FieldProblem("rates", "give exactly one of `rates` (a fixed list) and `search`: "
                                            "remove one")
            if self.concurrencies is not None:
                raise FieldProblem("concurrencies", "open mode takes `search`, not `concurrencies`: "
                                                    "remove `concurrencies`")
            return self
        wanted, unwanted = ("rates", "concurrencies") if self.mode == "open" else ("concurrencies", "rates")
        hint = "rates: [10, 20, 40]" if self.mode == "open" else "concurrencies: [1, 4]"
        values = getattr(self, wanted)
        if getattr(self, unwanted) is not None:
            raise FieldProblem(
                unwanted, f"{self.mode} mode takes `{wanted}`, not `{unwanted}`: remove `{unwanted}`"
            )
        if values is None:
            extra = " or `search: {start: 10, max: 640}`" if self.mode == "open" else ""
            raise FieldProblem((), f"{self.mode} mode needs `{wanted}` (e.g. `{hint}`){extra}")
        _check_list(wanted, values, positive=True, at=(wanted,))
        return self

    @property
    def levels(self) -> tuple[float, ...] | tuple[int, ...]:
        """The load levels of this matrix: rates (open) or concurrencies (closed); a search's first rate."""
        if self.search is not None:
            return (self.search.start,)
        return (self.rates if self.mode == "open" else self.concurrencies) or ()


class TorchServeConfig(_Strict):
    """TorchServe's model registration: workers and its server-side batching (batch 1 = none)."""

    workers: int = Field(default=1, ge=1, le=64)
    batch_size: int = Field(default=1, ge=1, le=4096)
    max_batch_delay_ms: int = Field(default=5, ge=0, le=60_000)


class TFServingConfig(_Strict):
    """TF Serving's `--enable_batching` and its batching parameters file."""

    batching: bool = False
    max_batch_size: int = Field(default=32, ge=1, le=4096)
    batch_timeout_us: int = Field(default=1000, ge=0, le=60_000_000)
    num_batch_threads: int = Field(default=2, ge=1, le=256)


class TritonDynamicBatching(_Strict):
    """Triton's dynamic batcher: requests queued up to `max_queue_delay_us` merge into one execution."""

    max_queue_delay_us: int = Field(default=0, ge=0, le=60_000_000)
    preferred_batch_sizes: tuple[int, ...] = ()

    @field_validator("preferred_batch_sizes")
    @classmethod
    def _sizes(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        if sizes:
            _check_list("preferred_batch_sizes", sizes, positive=True)
        return sizes


class TritonResponseCache(_Strict):
    """Triton's local response cache (`response_cache { enable: true }`, `--cache-config local,size=`)."""

    size_mb: int = Field(default=256, ge=1, le=65_536)


class TritonConfig(_Strict):
    """Triton's model configuration (config.pbtxt): instances, batch limit, dynamic batching, response cache.

    `dynamic_batching` and `response_cache` absent: off.
    """

    instances: int = Field(default=1, ge=1, le=64)
    max_batch_size: int = Field(default=1024, ge=1, le=4096)
    dynamic_batching: TritonDynamicBatching | None = None
    response_cache: TritonResponseCache | None = None

    @model_validator(mode="after")
    def _preferred_fit(self) -> TritonConfig:
        batching = self.dynamic_batching
        if batching is None:
            return self
        for index, size in enumerate(batching.preferred_batch_sizes):
            if size > self.max_batch_size:
                raise FieldProblem(("dynamic_batching", "preferred_batch_sizes", index), (
                    f"preferred batch size {size} is over max_batch_size {self.max_batch_size}: Triton "
                    "refuses "
                    "the model; lower it or raise max_batch_size"))
        return self


class BalancerConfig(_Strict):
    """What sits in front of the server's replicas: nothing, or a real nginx with a balancing policy."""

    kind: Literal["none", "nginx"] = "none"
    policy: Literal["round_robin", "least_conn"] = "round_robin"
    tls: bool = Field(default=False, description="nginx terminates TLS on REST and gRPC (certificates made "
                      "for this machine, serving/certs.py); the replicas behind it stay plaintext")


class CacheConfig(_Strict):
    """nginx proxy_cache in front of REST, keyed on the request body (serving/balancer.py).

    `body_buffer_mb` is nginx's client_body_buffer_size: only a body that fits is in `$request_body`
    (the cache key), so the matrix refuses REST bodies larger than it.
    """

    kind: Literal["none", "nginx"] = "none"
    body_buffer_mb: float = Field(default=8.0, gt=0, le=1024)


MAX_REPLICAS = 16  # each replica takes 7 ports and, where there are enough, its own CPUs


class ServerConfig(_Strict):
    """One named server configuration; servers restart when the matrix moves to the next one.

    `replicas`, `balancer` and `cache` make it a topology: N instances of each server behind nginx.
    """

    name: str
    torchserve: TorchServeConfig = TorchServeConfig()
    tfserving: TFServingConfig = TFServingConfig()
    triton: TritonConfig = TritonConfig()
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    balancer: BalancerConfig = BalancerConfig()
    cache: CacheConfig = CacheConfig()
    tls: bool = Field(default=False, description="the servers' own TLS: TorchServe's REST and gRPC, TF "
                      "Serving's gRPC (its REST API has none: use `balancer: {kind: nginx, tls: true}`)")

    @property
    def tls_on(self) -> bool:
        """Whether the load reaches this config over TLS (the servers' own, or nginx's)."""
        return self.tls or self.balancer.tls

    @model_validator(mode="after")
    def _tls_in_one_place(self) -> ServerConfig:
        if self.balancer.tls and self.balancer.kind != "nginx":
            raise FieldProblem(("balancer", "tls"), "TLS on the balancer needs one: `balancer: {kind: nginx, "
                                                    "tls: true}`")
        if self.tls and self.balancer.kind == "nginx":
            raise FieldProblem("tls", "with nginx in front, TLS ends at nginx: set `balancer.tls: true` "
                                      "instead of `tls` (the replicas behind it stay plaintext)")
        return self

    @model_validator(mode="after")
    def _topology_holds(self) -> ServerConfig:
        if self.replicas > 1 and self.balancer.kind == "none":
            raise FieldProblem("balancer", f"{self.replicas} replicas need a balancer in front: "
                                           "`balancer: {kind: nginx, policy: round_robin}`")
        if self.cache.kind == "nginx" and self.balancer.kind != "nginx":
            raise FieldProblem(("cache", "kind"), "the cache is nginx's: set `balancer: {kind: nginx}` too")
        if self.replicas > 1:
            from serving.cpusets import available_cpus

            have = len(available_cpus())
            if self.replicas > have:
                raise FieldProblem("replicas", (
                    f"{self.replicas} replicas on a machine with {have} CPU(s): every replica needs at "
                    f"least one CPU of its own; use at most {have}"))
        return self

    @property
    def topology_label(self) -> str:
        """`1x`, `2x nginx round_robin`, `1x nginx least_conn + cache`: for reports."""
        text = f"{self.replicas}x"
        if self.balancer.kind == "nginx":
            text += f" nginx {self.balancer.policy}"
        if self.cache.kind == "nginx":
            text += " + cache"
        if self.tls_on:
            text += " + TLS"
        return text

    @field_validator("name")
    @classmethod
    def _name_fits_a_cell_id(cls, name: str) -> str:
        if not _CONFIG_NAME.match(name):
            raise ValueError(
                f"config name {name!r} must be letters, digits and underscores (it becomes part of "
                "cell ids and directory names), e.g. `batch_8`"
            )
        return name


class CpuSets(_Strict):
    """Disjoint CPU lists ("0-2,5") for the servers and the load processes; "all" leaves a side unpinned.

    Without a `cpus:` section the default split applies (serving/cpusets.py: a quarter of the CPUs for
    the load on machines with at least 4, else unpinned). Checked against this machine before any
    export or server start (inferload/cpus.py).
    """

    servers: str = "all"
    load: str = "all"

    @model_validator(mode="after")
    def _lists_parse_and_do_not_overlap(self) -> CpuSets:
        from serving.cpusets import CpuSetError, parse_cpu_list

        parsed = {}
        for side in ("servers", "load"):
            text = getattr(self, side)
            if text.strip().lower() == "all":
                continue
            try:
                parsed[side] = set(parse_cpu_list(text, what=f"cpus.{side}"))
            except CpuSetError as exc:
                raise FieldProblem(side, str(exc)) from None
        if len(parsed) == 2 and parsed["servers"] & parsed["load"]:
            shared = ",".join(str(c) for c in sorted(parsed["servers"] & parsed["load"]))
            raise FieldProblem(
                "load", f"cpus.load overlaps cpus.servers on CPU(s) {shared}: give them disjoint sets"
            )
        return self


class LocalTarget(_Strict):
    """inferload starts the servers on this machine (127.0.0.1), one server config at a time."""

    kind: Literal["local"] = "local"


class ComposeTarget(_Strict):
    """inferload drives `docker compose` (serving/compose.py): services up per server config, torn down."""

    kind: Literal["compose"]
    file: str = "docker-compose.yml"
    project: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    cpus: int = Field(default=2, ge=1, le=1024, description="CPU limit of each service")
    memory: str = Field(default="4g", pattern=r"^[0-9]+[bkmg]?$", description="memory limit, e.g. 4g")


class ExternalEndpoints(_Strict):
    """Where one of the user's servers answers. `kind` is only a label for the records.

    `https://` / `grpcs://` turn TLS on for that API; `security` holds the CA, client certificate,
    server name and credentials (file paths and variable names only: loadtest/_security.py).
    """

    rest: str = Field(description="base URL of the REST API, e.g. http://10.0.0.5:8501")
    grpc: str = Field(description="gRPC address, e.g. 10.0.0.5:8500")
    management: str | None = Field(
        default=None, description="TorchServe's management API (http://HOST:8081): it describes the model"
    )
    grpc_service: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$",
        description="V2 servers (triton): the gRPC service of ModelInfer, if not "
        "inference.GRPCInferenceService "
        "(TorchServe's OIP: org.pytorch.serve.grpc.openinference.GRPCInferenceService)")
    metrics: str | None = Field(default=None, description="Prometheus endpoint, scraped during each cell")
    kind: str | None = Field(default=None, max_length=64, description='e.g. "tensorflow_model_server"; for '
                             'triton, any V2 server: "v2", "tritonserver", "kserve", "mlserver", "ovms"')
    security: Security = Field(default_factory=Security, description="TLS files and credentials")

    @model_validator(mode="before")
    @classmethod
    def _tls_from_the_urls(cls, data: Any) -> Any:
        """TLS is said by each URL's scheme (security_for); the TLS files are checked as for a TLS API."""
        if not isinstance(data, dict) or not isinstance(data.get("security", {}), dict):
            return data
        data = {**data, "security": data.get("security", {})}
        from loadtest._settings import scheme_tls

        urls = [data.get(key) for key in ("rest", "grpc", "management")]
        tls = any(scheme_tls(url) for url in urls if isinstance(url, str))
        # a `tls` that agrees with the URLs is what this validator itself put there: a manifest's copy
        # of the matrix is read back on resume and must validate again
        if "tls" in data["security"] and data["security"]["tls"] != tls:
            raise FieldProblem(("security", "tls"), "TLS is said by the URLs (https://, grpcs://): "
                                                    "remove tls")
        return {**data, "security": {**data["security"], "tls": tls}}

    def security_for(self, url: str) -> Security:
        """The security of one API: TLS as its URL's scheme says; TLS files only where TLS is on."""
        from loadtest._settings import scheme_tls

        if scheme_tls(url):
            return self.security.model_copy(update={"tls": True})
        return self.security.model_copy(update={"tls": False, "ca_cert": None, "client_cert": None,
                                                "client_key": None, "server_name": None})

    @field_validator("rest", "management", "metrics")
    @classmethod
    def _http_url(cls, url: str | None, info: Any) -> str | None:
        if url is None:
            return None
        from loadtest import split_host, split_http_url

        split_http_url(url, what=info.field_name)
        if info.field_name != "metrics":  # a base URL: inferload adds the API paths itself
            host, port = split_host(url)
            if port is None:
                raise ValueError(f"{info.field_name} {url!r} needs a port, e.g. http://{host}:8501")
        return url.rstrip("/")

    @field_validator("grpc")
    @classmethod
    def _host_port(cls, address: str) -> str:
        from loadtest import split_host

        host, port = split_host(address)
        if port is None:
            raise ValueError(f"grpc {address!r} needs a port, e.g. {host}:8500")
        return address


class ExternalTarget(_Strict):
    """The user's running servers: inferload never starts, restarts or stops them.

    Server configs are labels the user declares for what runs there; before each cell the runner
    checks the server's health and the served model's input width.
    """

    kind: Literal["external"]
    servers: dict[Server, ExternalEndpoints]
    model_name: str = Field(default="linear", min_length=1)

    @model_validator(mode="after")
    def _torchserve_can_describe_its_model(self) -> ExternalTarget:
        for server, endpoints in self.servers.items():
            if endpoints.grpc_service is not None and server != "triton":
                raise FieldProblem(("servers", server, "grpc_service"), (
                    f"grpc_service names a V2 (Open Inference Protocol) service; {server} has its own gRPC "
                    "API: "
                    "remove it, or measure the V2 service under `triton`"))
        torchserve = self.servers.get("torchserve")
        if torchserve is not None and torchserve.management is None:
            raise FieldProblem(
                ("servers", "torchserve"),
                "torchserve needs `management: http://HOST:8081` (its management API): the runner "
                "reads the served model's input width there before each cell",
            )
        return self


Target = Annotated[LocalTarget | ComposeTarget | ExternalTarget, Field(discriminator="kind")]
TARGET_KINDS = ("local", "compose", "external")


class EarlyStopConfig(_Strict):
    """Run each cell past `duration_s` until its SLO percentile is known to ±`interval_within`, at most
    `max_duration_s` (loadtest/_early_stop.py; the rule is stated in the report).

    After the minimum `duration_s`, about once per second, the load process asks whether both ends of
    the exact 95 % order-statistic interval of the SLO percentile of the `ok` latencies so far lie
    within ±`interval_within` of the estimate; the first yes ends the schedule there (no new
    arrivals; requests in flight finish as at any end). Otherwise the cell ends at `max_duration_s`.
    """

    interval_within: float = Field(
        gt=0, lt=1, description="relative half-width: 0.1 = both ends of the interval within ±10 % of it"
    )
    max_duration_s: float = Field(gt=0, description="the longest measuring window of a cell, seconds")


class RoundsConfig(_Strict):
    """How cells are ordered (inferload/rounds.py): in rounds that visit every line of a server config once,
    in a random order drawn from `seed` and the round's index, so a slow minute falls on all lines and
    not on one. A rate sweep's round runs every line at one rate; a max-rate search's round advances
    every line still searching by one step.

    `isolation` makes repetitions independent measurements: `restart` (default) starts the servers
    afresh for every repetition; `rewarm` keeps them running and only warms every line again (faster,
    but a server's state, e.g. its allocator or JIT, carries over from one repetition to the next).
    """

    seed: int | None = Field(default=None, ge=0, description="None: the matrix's `seed`")
    isolation: Literal["restart", "rewarm"] = "restart"


class ServerWarmup(_Strict):
    """Warm every server after it starts (inferload/warmup.py), until it is stable.

    Closed-loop load, one request at a time, in windows of `window_s`; stable when the median service
    times of the last `windows` windows all lie within ±`within` of their mean (perf_analyzer's rule
    is 3 windows within 10 %), at most `max_s` seconds of load (the record says which ended it).
    `per: server` warms each server on one of its lines (gRPC where it has it): the model, its runtime
    and the server's threads are warm after that, and each cell's own `warmup_s` covers the rest of a
    protocol's path; `per: line` warms every line (thorough, a few seconds more per line).
    """

    enabled: bool = True
    per: Literal["server", "line"] = "server"
    window_s: float = Field(default=0.5, gt=0, le=30)
    windows: int = Field(default=3, ge=2, le=20)
    within: float = Field(default=0.10, gt=0, lt=1)
    max_s: float = Field(default=8.0, gt=0, le=600)


class CalibrationConfig(_Strict):
    """The calibration probe (models/probe.py): the model's in-process predict on the servers' CPUs and
    a memory-bandwidth figure before the first round, between rounds and at the end (at most `budget_s`
    of predict calls each), and one timed predict every `probe_interval_s` while a cell runs."""

    enabled: bool = True
    probe_interval_s: float = Field(default=0.5, ge=0.05, le=60)
    budget_s: float = Field(default=1.5, gt=0, le=30)


class AaConfig(_Strict):
    """An A/A check: the lines whose id matches `lines` (a shell pattern such as `*grpc*`; `*`: all) run
    twice in every round, as arms `a` and `b` of the same configuration; how far the arms differ is the
    smallest difference this machine can tell apart now (`inferload aa`)."""

    lines: str = Field(default="*", min_length=1)


class Experiment(_Strict):
    """A whole matrix: servers x protocols x load levels x batch sizes x server configs x repetitions.

    `max_body_mb` skips (and lists) cells whose request body would be absurd; `lateness_limit_ms`
    overrides the generator's validity limit on lateness p99 (None: the load generator's default).
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: ModelSpec
    servers: tuple[Server, ...]
    protocols: tuple[Protocol, ...]
    load: LoadMatrix
    batch_sizes: tuple[int, ...]
    server_configs: tuple[ServerConfig, ...] = (ServerConfig(name="default"),)
    warmup_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    repetitions: int = Field(default=1, ge=1, le=100)
    seed: int = Field(default=0, ge=0)
    slo: Slo = Slo()
    max_in_flight: int = Field(default=256, ge=1)
    processes: int = Field(default=1, ge=1, le=64)
    max_body_mb: float | None = Field(default=None, gt=0)
    lateness_limit_ms: float | None = Field(default=None, gt=0)
    tfserving_kind: TFServingKind | None = None
    target: Target = LocalTarget()
    cpus: CpuSets | None = None
    repeat_shares: tuple[float, ...] | None = Field(
        default=None, description="fractions of requests that reuse an input already sent (None: the "
        "load generator's uniform choice over its pool)")
    time_budget_min: float | None = Field(
        default=None, gt=0, description="the longest the whole matrix may take: a matrix whose dry-run "
        "estimate (repetitions, rates, durations, early_stop caps) is longer is refused when read")
    early_stop: EarlyStopConfig | None = Field(
        default=None, description="cells run >= duration_s and until the SLO percentile's interval is "
        "tight, at most max_duration_s (None: every cell runs exactly duration_s)")
    rounds: RoundsConfig = RoundsConfig()
    server_warmup: ServerWarmup = ServerWarmup()
    calibration: CalibrationConfig = CalibrationConfig()
    aa: AaConfig | None = Field(default=None, description="lines measured twice per round (an A/A check)")

    @property
    def schedule_seed(self) -> int:
        """The seed the rounds' orders are drawn from."""
        return self.rounds.seed if self.rounds.seed is not None else self.seed

    @model_validator(mode="after")
    def _early_stop_fits(self) -> Experiment:
        rule = self.early_stop
        if rule is None:
            return self
        if rule.max_duration_s < self.duration_s:
            raise FieldProblem(("early_stop", "max_duration_s"), (
                f"max_duration_s {rule.max_duration_s:g} is below duration_s {self.duration_s:g}, the "
                f"minimum every cell runs: raise it to at least {self.duration_s:g}"))
        if self.processes > 1:
            raise FieldProblem("early_stop", (
                f"early_stop judges a cell's latencies inside its one load process; with processes "
                f"{self.processes} each process would judge only its share: set `processes: 1`, or remove "
                "early_stop"))
        return self

    @property
    def notes(self) -> tuple[str, ...]:
        """What the matrix as written can and cannot claim, for the user to read before it runs (a note,
        not a refusal: one repetition is a fine quick look)."""
        if self.repetitions > 1:
            return ()
        return (
            f"repetitions: 1 with an SLO (p{self.slo.percentile:g} <= {self.slo.latency_ms:g} ms): every "
            "verdict comes from one measuring "
            "window per rate. It can say how this run went, with each window's own interval, and bracket "
            "the max rate within this run; it cannot say how a rerun would come out (no between-run "
            "interval: the machine and the servers' state move between runs), so no verdict is called "
            "'surely' and no line is said to beat another. For that, set repetitions: 3 or more",
        )

    @property
    def longest_duration_s(self) -> float:
        """The longest measuring window a (non-search) cell can have: max_duration_s with early_stop."""
        return self.early_stop.max_duration_s if self.early_stop is not None else self.duration_s

    @field_validator("servers", "protocols", "batch_sizes")
    @classmethod
    def _non_empty_distinct(cls, values: tuple[Any, ...], info: Any) -> tuple[Any, ...]:
        _check_list(info.field_name, values, positive=info.field_name == "batch_sizes")
        return values

    @field_validator("server_configs")
    @classmethod
    def _distinct_config_names(cls, configs: tuple[ServerConfig, ...]) -> tuple[ServerConfig, ...]:
        if not configs:
            raise ValueError("`server_configs` is empty: give at least one, e.g. `- name: default`")
        seen: set[str] = set()
        for index, config in enumerate(configs):
            if config.name in seen:
                raise FieldProblem(
                    (index, "name"),
                    f"duplicate server config name {config.name!r}: every config needs its own name",
                )
            seen.add(config.name)
        return configs

    @field_validator("repeat_shares")
    @classmethod
    def _shares_are_fractions(cls, shares: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if shares is None:
            return None
        _check_list("repeat_shares", shares, positive=False)
        for index, share in enumerate(shares):
            if not 0.0 <= share <= 1.0:
                raise FieldProblem(index, f"a repeat share is a fraction of requests in [0, 1], got {share}")
        return shares

    @model_validator(mode="after")
    def _topologies_fit(self) -> Experiment:
        for index, config in enumerate(self.server_configs):
            if (config.replicas > 1 or config.balancer.kind != "none") and self.target.kind != "local":
                raise FieldProblem(("server_configs", index, "balancer"), (
                    f"replicas and balancers are started by inferload: they need `target: {{kind: local}}`, "
                    f"not {self.target.kind}"))
            if config.cache.kind != "nginx":
                continue
            from inferload.cells import estimate_body_bytes

            limit = None if self.max_body_mb is None else self.max_body_mb * 1_000_000
            buffer = config.cache.body_buffer_mb * 1_000_000
            for server in self.servers:
                for protocol in (p for p in self.protocols if p != "grpc"):
                    for batch in self.batch_sizes:
                        body = estimate_body_bytes(server, protocol, batch, self.model.features)
                        if body > buffer and (limit is None or body <= limit):
                            raise FieldProblem(("server_configs", index, "cache", "body_buffer_mb"), (
                                f"{server} {protocol} batch {batch} bodies are ~{body / 1e6:,.2f} MB, more "
                                f"than the cache's body buffer ({config.cache.body_buffer_mb:g} MB): nginx "
                                "would key them all on an empty body; raise body_buffer_mb to at least "
                                f"{body / 1e6 * 1.05:.1f}"))
        return self

    @model_validator(mode="after")
    def _tls_configs_fit(self) -> Experiment:
        for index, config in enumerate(self.server_configs):
            if not config.tls_on:
                continue
            field = ("server_configs", index, "tls" if config.tls else "balancer")
            if self.target.kind != "local":
                raise FieldProblem(field, (
                    f"TLS in a server config is set up by inferload on the servers it starts: it needs "
                    f"`target: {{kind: local}}`, not {self.target.kind} (an external target gives https:// "
                    "and grpcs:// URLs and `security:` instead)"))
            rest = [p for p in self.protocols if p != "grpc"]
            if config.tls and "tfserving" in self.servers and rest:
                raise FieldProblem(field, (
                    f"TF Serving's REST API has no TLS (neither has the real binary), but the matrix "
                    "sends it "
                    f"{', '.join(rest)}: put nginx in front (`balancer: {{kind: nginx, tls: true}}`), or "
                    "measure TF Serving over gRPC only"))
            if config.tls and "triton" in self.servers:
                raise FieldProblem(field, (
                    "TLS on Triton is not set up by inferload: put nginx in front (`balancer: {kind: nginx, "
                    "tls: true}`), or measure Triton in a server config without tls"))
        return self

    @model_validator(mode="after")
    def _triton_takes_the_batches(self) -> Experiment:
        if "triton" not in self.servers:
            return self
        for index, config in enumerate(self.server_configs):
            too_big = [batch for batch in self.batch_sizes if batch > config.triton.max_batch_size]
            if too_big and self.target.kind != "external":
                raise FieldProblem(("server_configs", index, "triton", "max_batch_size"), (
                    f"batch size {too_big[0]} is over triton.max_batch_size "
                    f"{config.triton.max_batch_size}: Triton "
                    f"would refuse every request; raise max_batch_size to at least {max(too_big)}"))
        return self

    @model_validator(mode="after")
    def _external_target_names_every_server(self) -> Experiment:
        if isinstance(self.target, ExternalTarget):
            missing = [server for server in self.servers if server not in self.target.servers]
            if missing:
                raise FieldProblem(
                    ("target", "servers"),
                    f"the matrix measures {', '.join(missing)} but the external target gives no address "
                    f"for it: add `{missing[0]}: {{rest: ..., grpc: ...}}` under target.servers",
                )
            if self.tfserving_kind is not None:
                raise FieldProblem(
                    "tfserving_kind",
                    "an external target runs whatever the user started: label it with "
                    "`target.servers.tfserving.kind` instead of `tfserving_kind`",
                )
        return self


def _check_list(field: str, values: Sequence[Any], *, positive: bool, at: Path_ = ()) -> None:
    """Lists of the matrix must be non-empty, distinct (cell ids would collide) and maybe positive.

    `at` is the list's path relative to the validator's own location, so errors point at its line.
    """
    if len(values) == 0:
        raise FieldProblem(at, f"`{field}` is empty: give at least one value")
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if positive and not value > 0:
            raise FieldProblem((*at, index), f"`{field}` values must be > 0, got {value}")
        if value in seen:
            raise FieldProblem((*at, index), f"`{field}` lists {value!r} twice: give each value once")
        seen.add(value)


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate a matrix file; raises `ExperimentError` naming each bad field and its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExperimentError(f"{path}: no such experiment file (see experiments/*.yaml)") from None
    return parse_experiment(text, source=str(path))


def parse_experiment(text: str, *, source: str = "<experiment>") -> Experiment:
    """Validate matrix YAML text; `source` names the file in error messages."""
    try:
        data = yaml.safe_load(text)
        lines = _field_lines(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ExperimentError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ExperimentError(f"{source}:1: an experiment is a YAML mapping (name:, model:, servers:, ...)")
    duplicates = _duplicate_keys(yaml.compose(text))
    if duplicates:
        raise ExperimentError("\n".join(f"{source}:{line}: {'.'.join(map(str, path))}: given twice: keep one"
                                        for path, line in duplicates))
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        raise ExperimentError(_describe(exc, lines, source)) from None
    _check_time_budget(experiment, f"{source}:{lines.get(('time_budget_min',), 1)}")
    return experiment


def _check_time_budget(experiment: Experiment, where: str) -> None:
    """Refuse a matrix whose estimated wall time is over its `time_budget_min`, with the estimate, so
    a matrix asking for more repetitions or samples than it has time for fails before any load."""
    if experiment.time_budget_min is None:
        return
    from inferload.cells import expand_cells  # cells imports this module

    plan = expand_cells(experiment)
    estimate_min = plan.estimated_seconds(experiment) / 60
    if estimate_min <= experiment.time_budget_min:
        return
    cap = (f", early_stop.max_duration_s {experiment.early_stop.max_duration_s:g} s counted per cell"
           if experiment.early_stop is not None else "")
    raise ExperimentError(
        f"{where}: time_budget_min: the matrix needs ~{estimate_min:.1f} min by the dry-run estimate "
        f"({len(plan.cells)} cells, {experiment.repetitions} repetition(s), "
        f"{experiment.warmup_s:g} s warm-up + {experiment.duration_s:g} s per cell{cap}), "
        f"over its budget of {experiment.time_budget_min:g} min: "
        "lower repetitions, rates, batch sizes or duration_s, or raise time_budget_min")


def _field_lines(node: yaml.Node | None, path: Path_ = ()) -> dict[Path_, int]:
    """Map every field path (e.g. ("load", "rates", 2)) to its 1-based line in the file."""
    lines: dict[Path_, int] = {}
    if node is None:
        return lines
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            lines.update({p: n for p, n in _field_lines(value, child).items() if p != child})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_field_lines(item, (*path, index)))
    return lines


def _duplicate_keys(node: yaml.Node | None, path: Path_ = ()) -> list[tuple[Path_, int]]:
    """Keys given twice in one mapping: YAML keeps the last silently, which hides typos."""
    found: list[tuple[Path_, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                found.append(((*path, key.value), key.start_mark.line + 1))
            seen.add(key.value)
            found.extend(_duplicate_keys(value, (*path, key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, (*path, index)))
    return found


def _describe(exc: ValidationError, lines: dict[Path_, int], source: str) -> str:
    problems: list[str] = []
    for error in exc.errors():
        loc: Path_ = tuple(
            part
            for index, part in enumerate(error["loc"])
            if not _is_union_tag(part) and not (index and error["loc"][index - 1] == "target"
                                                and part in TARGET_KINDS)
        )
        message = error["msg"].removeprefix("Value error, ")
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            loc = (*loc, *cause.field)
            message = str(cause)
        elif error["type"] == "extra_forbidden":
            message = "unknown field: remove it or check its spelling"
        elif error["type"] == "missing":
            message = "required field is missing: add it"
        elif "input" in error:
            shown = repr(error["input"])
            message = f"{message} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        line = _line_of(loc, lines)
        field = ".".join(str(part) for part in loc) or "(top level)"
        problems.append(f"{source}:{line}: {field}: {message}")
    return "\n".join(problems)


def _is_union_tag(part: str | int) -> bool:
    """Pydantic adds type names such as `tuple[float, ...]` to locations inside optional fields."""
    return isinstance(part, str) and ("[" in part or part in ("none", "function-after"))


def _line_of(loc: Path_, lines: dict[Path_, int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1
