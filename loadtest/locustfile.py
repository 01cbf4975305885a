"""Locust users for the nine server x protocol combinations, open loop by default.

    locust -f loadtest/                      # web UI: pick a class in the class picker, set --rate etc.
    locust -f loadtest/ --headless -u 4 -r 4 -t 30s --rate 200 TorchServeGrpc

Why not stock Locust behaviour: a Locust user waits for its response before its next request
(closed loop), so a stalled server receives less load and its stall vanishes from the
percentiles (coordinated omission). Here, in open mode, every user runs our open-loop scheduler
at rate / total users (a sum of independent Poisson streams is Poisson at the total rate, also
across `--processes N` and `--master/--worker`), and the response time Locust shows is measured
from each request's *scheduled* time. `--mode closed` gives the stock behaviour for comparison.
`--records-dir DIR` also writes our lossless per-request records (Locust's own stats are bucketed).

Hosts default to the standard local / docker-compose ports (TF Serving 8501 REST, 8500 gRPC;
TorchServe 8080 REST, 7070 gRPC; Triton 8000 REST, 8001 gRPC), overridable with `--host` or
INFERLOAD_<SERVER>_HOST, INFERLOAD_<SERVER>_REST_PORT, INFERLOAD_<SERVER>_GRPC_PORT (SERVER:
TFSERVING, TORCHSERVE, TRITON).

The class picker is on by default (the nine classes are generated from the server x protocol
table). Features per instance: `--features`, else `--artifacts`' model.json, else asked from the
server (TF Serving's model metadata; TorchServe's management API, `--metadata-url` or
INFERLOAD_<SERVER>_METADATA_URL where it is not at the standard port; a V2 server's own model
metadata, over REST or gRPC); the log says which. The Triton classes speak the Open Inference
Protocol to any V2 server (`--grpc-service` where its gRPC service is not Triton's). Where
the server can be asked, a given count it contradicts, or a model it does not serve, stops the
run before load.
Fail-fast: when the first `--fail-fast` (5) completed requests to a target all fail, the run stops
with the server's error text (headless: exit code 1; web UI: the test stops, the UI stays up).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import grpc.experimental.gevent as grpc_gevent
from locust import User, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC
from pydantic import ValidationError

from loadtest._arrivals import make_arrivals, stream_seed
from loadtest._discovery import (
    AccessRefused,
    DiscoveryError,
    ModelNotReady,
    ModelNotServed,
    describe_served_model,
    served_features,
)
from loadtest._engine import Engine
from loadtest._health import v2_tensor_problem
from loadtest._master import DEFAULT_MASTER_TIMEOUT_S, MasterUnreachable, master_of_worker, wait_for_master
from loadtest._payloads import PayloadPool, build_pool
from loadtest._schema import RecordWriter, RequestRecord, RunHeader, stream_path
from loadtest._security import Credentials, RefusalWatch, Security, security_fields
from loadtest._settings import (
    PROTOCOLS,
    SERVERS,
    STANDARD_PORTS,
    LoadSettings,
    describe_validation_error,
    metadata_url_for,
    split_host,
)
from loadtest._transports import Transport, make_transport
from loadtest._versions import versions

grpc_gevent.init_gevent()  # blocking gRPC calls must yield to other greenlets (Locust's gRPC example)

TOTAL_USERS_OPTION = "inferload_total_users"  # set on the master, travels to workers with the spawn message
FOREVER_NS = 2**62
FAIL_FAST_REQUESTS = 5  # the first N completed requests to a target all failed: stop the run
FAIL_FAST_MESSAGE = "inferload_fail_fast"  # worker -> master: stop the run, with the reason
FAIL_FAST_EXIT_CODE = 1

logger = logging.getLogger("inferload")


class RequestFailure(Exception):
    """What Locust shows as the failure of a request (status and server message)."""


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    # parser.add_argument itself, not an argument group: only then do the options show in the web UI
    parser.add_argument(
        "--rate", type=float, default=10.0, help="open loop: total arrivals per second, all users"
    )
    parser.add_argument(
        "--mode",
        choices=["open", "closed"],
        default="open",
        help="open: Poisson arrivals on a schedule; closed: each user sends back to back",
    )
    parser.add_argument("--batch", type=int, default=1, help="instances per request")
    parser.add_argument(
        "--features",
        type=int,
        default=0,
        help="features per instance (default: --artifacts' model.json, else asked from the server)",
    )
    parser.add_argument("--artifacts", default="", help="artifacts dir: read features from its model.json")
    parser.add_argument(
        "--metadata-url",
        default="",
        help="where the server describes its model, for the feature count: TF Serving's REST API "
        "(http://HOST:8501) or TorchServe's management API (http://HOST:8081); default: from the host",
    )
    parser.add_argument("--max-in-flight", type=int, default=512, help="open loop: in-flight bound per user")
    parser.add_argument("--records-dir", default="", help="also write lossless per-request records here")
    parser.add_argument("--seed", type=int, default=0, help="arrival schedule seed")
    parser.add_argument("--payload-seed", type=int, default=1, help="input values / payload choice seed")
    parser.add_argument("--pool-size", type=int, default=16, help="distinct inputs encoded before the load")
    parser.add_argument(
        "--request-timeout", type=float, default=30.0, help="seconds before a request times out"
    )
    parser.add_argument("--model-name", default="linear", help="model name on the server")
    parser.add_argument(
        "--grpc-service",
        default="",
        help="V2 (Triton) classes over gRPC: the service of ModelInfer "
        "(default inference.GRPCInferenceService)",
    )
    parser.add_argument(
        "--fail-fast",
        type=int,
        default=FAIL_FAST_REQUESTS,
        help="stop the run when the first N requests to a server all fail (0: never stop)",
    )
    parser.add_argument(
        "--master-timeout",
        type=float,
        default=DEFAULT_MASTER_TIMEOUT_S,
        help="worker: seconds to wait for the master's port before stopping with a clear error",
    )
    # TLS and credentials (loadtest/_security.py): secrets come from the environment or files, never
    # from an option value (it would show in `ps`); an https:// or grpcs:// --host turns TLS on.
    parser.add_argument("--ca-cert", default="", env_var="INFERLOAD_CA_CERT",
                        help="TLS: CA certificate(s) to verify the servers with (default: the system's)")
    parser.add_argument("--client-cert", default="", env_var="INFERLOAD_CLIENT_CERT",
                        help="mutual TLS: client certificate (PEM)")
    parser.add_argument("--client-key", default="", env_var="INFERLOAD_CLIENT_KEY",
                        help="mutual TLS: key of --client-cert (PEM)")
    parser.add_argument("--server-name", default="", env_var="INFERLOAD_SERVER_NAME",
                        help="TLS: name to verify in the server's certificate, when not the host's")
    parser.add_argument("--token", default="", env_var="INFERLOAD_TOKEN",
                        help="bearer token, as env:VARIABLE or file:PATH (never the token itself)")
    parser.add_argument("--torchserve-key-file", default="", env_var="INFERLOAD_TORCHSERVE_KEY_FILE",
                        help="TorchServe's key_file.json (inference key for requests, management key to "
                        "describe the model)")
    parser.add_argument("--header", default="", env_var="INFERLOAD_HEADERS",
                        help="more headers / gRPC metadata: NAME=env:VAR or NAME=file:PATH, comma-separated")
    # The web UI offers the six user classes in its class picker without `--class-picker` on the
    # command line (a config file, LOCUST_USERCLASS_PICKER or the flag still decide when given).
    parser.set_defaults(class_picker=True)
    # The web UI starts runs against any host typed into it: it listens on this machine only unless told
    # (--web-host), and `--web-login` protects it with a password read from a file or the environment
    # (Locust's own login page; loadtest/_web_login.py).
    parser.set_defaults(web_host=os.environ.get("LOCUST_WEB_HOST", "127.0.0.1"))
    parser.add_argument("--web-password-file", default="", env_var="INFERLOAD_WEB_PASSWORD_FILE",
                        help="with --web-login: file holding the web UI's password (or "
                             "INFERLOAD_WEB_PASSWORD)")
    parser.add_argument("--web-user", default="locust", env_var="INFERLOAD_WEB_USER",
                        help="with --web-login: the web UI's user name")


def _worker_reaches_master() -> None:
    """A worker whose master cannot be reached stops now, saying what to check (loadtest/_master.py)."""
    master = master_of_worker(sys.argv[1:], os.environ)
    if master is None:
        return
    try:
        wait_for_master(*master)
    except MasterUnreachable as exc:
        sys.stderr.write(f"inferload: {exc}\n")
        raise SystemExit(2) from None


_worker_reaches_master()


@events.init.add_listener
def _guard_web_ui(environment: Environment, **_: Any) -> None:
    """--web-login: our password login (loadtest/_web_login.py); an exposed UI without it: a warning."""
    from loadtest._web_login import WebLoginError, install_login, warn_if_exposed

    options = environment.parsed_options
    if environment.web_ui is None or options is None:
        return
    if not getattr(options, "web_login", False):
        warn_if_exposed(str(getattr(options, "web_host", "") or ""), logger)
        return
    try:
        install_login(environment, password_file=getattr(options, "web_password_file", "") or None,
                      user=str(getattr(options, "web_user", "locust")))
    except WebLoginError as exc:
        sys.stderr.write(f"inferload: {exc}\n")
        raise SystemExit(2) from None


@events.init.add_listener
def _refresh_loop_clock(**_: Any) -> None:
    """libev caches "now" until the loop runs; start-up (imports) left it stale, which made
    `--run-time` timers (spawn_later) fire early by the start-up time. Refresh it."""
    gevent.get_hub().loop.update_now()


@events.test_start.add_listener
def _share_total_users(environment: Environment, **_: Any) -> None:
    """Workers only know their own share of users; the master tells them the total."""
    runner = environment.runner
    if isinstance(runner, MasterRunner) and environment.parsed_options is not None:
        setattr(environment.parsed_options, TOTAL_USERS_OPTION, runner.target_user_count)


def total_users(environment: Environment) -> int:
    """All users of the test across every worker (the rate is split between them)."""
    options = environment.parsed_options
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        shared = getattr(options, TOTAL_USERS_OPTION, None)
        if shared:
            return int(shared)
    if runner is not None and runner.target_user_count:
        return int(runner.target_user_count)
    return max(1, int(getattr(options, "num_users", 1) or 1))


@dataclass(frozen=True)
class FeatureCount:
    """Features per instance, and where that number came from (printed, so a user can tell)."""

    features: int
    source: str
    given: bool = True  # by the user (--features / --artifacts), not read from the server


def security_of(options: Any, host_text: str) -> Security:
    """The TLS and credential options as one Security (raises ValueError for a secret given as a value)."""
    headers = [h for h in str(getattr(options, "header", "") or "").split(",") if h.strip()]
    fields = security_fields(
        host=host_text,
        ca_cert=getattr(options, "ca_cert", "") or None,
        client_cert=getattr(options, "client_cert", "") or None,
        client_key=getattr(options, "client_key", "") or None,
        server_name=getattr(options, "server_name", "") or None,
        token=getattr(options, "token", "") or None,
        torchserve_key_file=getattr(options, "torchserve_key_file", "") or None,
        headers=headers,
    ) or {}
    from loadtest._settings import scheme_tls

    if scheme_tls(host_text):
        fields["tls"] = True
    return Security.model_validate(fields)


def metadata_url(options: Any, server: str) -> str | None:
    """--metadata-url, else INFERLOAD_<SERVER>_METADATA_URL, else None (derived from the target)."""
    given = getattr(options, "metadata_url", "")
    return given or os.environ.get(f"INFERLOAD_{server.upper()}_METADATA_URL") or None


def resolve_features(
    options: Any, server: str, protocol: str, host: str, port: int | None, security: Security | None = None
) -> FeatureCount:
    """--features, else --artifacts' model.json, else ask the server (raises DiscoveryError)."""
    if getattr(options, "features", 0):
        return FeatureCount(int(options.features), "--features")
    artifacts = getattr(options, "artifacts", "")
    if artifacts:
        path = Path(artifacts) / "model.json"
        try:
            return FeatureCount(int(json.loads(path.read_text())["features"]), f"--artifacts ({path})")
        except (OSError, KeyError, ValueError) as exc:
            raise DiscoveryError(
                f"--artifacts {artifacts}: cannot read features from {path} ({exc})"
            ) from exc
    url = metadata_url(options, server)
    model_name = getattr(options, "model_name", "linear")
    try:
        features = served_features(
            server, host=host, port=port, protocol=protocol, model_name=model_name, metadata_url=url,
            security=security, credentials=Credentials.load(security),
            grpc_service=_grpc_service(options, server),
        )
    except DiscoveryError as exc:
        raise DiscoveryError(
            f"{exc}. (Neither --features nor --artifacts was given, so the feature count was asked "
            "from the server; --metadata-url names where it describes its model.)"
        ) from exc
    tls = security is not None and security.tls
    described_at = url or metadata_url_for(server, protocol, host, port, tls=tls)
    source = f"the server's description of model {model_name!r} ({described_at})"
    return FeatureCount(features, source, given=False)


def check_against_server(
    options: Any, server: str, protocol: str, host: str, port: int | None, given: FeatureCount,
    security: Security | None = None,
) -> None:
    """A feature count given by the user must be the served model's, where the server can tell.

    Raises DiscoveryError (before any load) when the server serves no such model or another
    width; when its description API cannot be read, warns and leaves it to the fail-fast check.
    """
    tls = security is not None and security.tls
    url = metadata_url(options, server) or metadata_url_for(server, protocol, host, port, tls=tls)
    if url is None:
        return  # e.g. TorchServe at non-standard ports without --metadata-url: nothing to ask
    model_name = getattr(options, "model_name", "linear")
    try:
        served = describe_served_model(server, url, model_name, security=security,
                                       credentials=Credentials.load(security),
                                       grpc_service=_grpc_service(options, server))
    except (ModelNotServed, ModelNotReady, AccessRefused):
        raise
    except DiscoveryError as exc:
        logger.warning("%s %s: cannot check %s against the server: %s", server, protocol, given.source, exc)
        return
    if served.features is not None and served.features != given.features:
        raise DiscoveryError(
            f"{server} at {served.source} serves model {model_name!r} with {served.features} input "
            f"features, but {given.source} gives {given.features}: use --features {served.features} "
            "(or leave it out: the server is asked), or point --host at the server that serves this model"
        )
    problem = v2_tensor_problem(served)
    if problem is not None:
        raise DiscoveryError(f"{server} at {host}: {problem}")


def _grpc_service(options: Any, server: str) -> str | None:
    return (getattr(options, "grpc_service", "") or None) if server == "triton" else None


def default_host(server: str, protocol: str) -> str:
    prefix = f"INFERLOAD_{server.upper()}"
    kind = "GRPC" if protocol == "grpc" else "REST"
    host = os.environ.get(f"{prefix}_HOST", "127.0.0.1")
    port = os.environ.get(f"{prefix}_{kind}_PORT", str(STANDARD_PORTS[(server, protocol)]))
    return f"grpc://{host}:{port}" if protocol == "grpc" else f"http://{host}:{port}"


# Feature counts by target, per process and test: resolved once, the source printed once.
_feature_counts: dict[tuple[Any, ...], FeatureCount | DiscoveryError] = {}


def feature_count(
    options: Any, server: str, protocol: str, host: str, port: int | None, security: Security | None = None
) -> FeatureCount:
    """resolve_features, once per target and test in this process; raises DiscoveryError."""
    key = (
        server,
        protocol,
        host,
        port,
        getattr(options, "model_name", "linear"),
        getattr(options, "features", 0),
        getattr(options, "artifacts", ""),
        metadata_url(options, server),
    )
    if key not in _feature_counts:
        try:
            resolved = resolve_features(options, server, protocol, host, port, security)
            if resolved.given or server == "triton":  # a V2 server also says its input's name and datatype
                check_against_server(options, server, protocol, host, port, resolved, security)
        except DiscoveryError as exc:
            _feature_counts[key] = exc
        else:
            _feature_counts[key] = resolved
            message = "%s %s: %d features per instance, from %s"
            logger.info(message, server, protocol, resolved.features, resolved.source)
    found = _feature_counts[key]
    if isinstance(found, DiscoveryError):
        raise found
    return found


@dataclass
class FirstRequests:
    """The first `window` completed requests to one target in this process.

    Why: a misconfigured run (wrong model name, input shape, endpoint) fails every request, and
    Locust would run on at 100 % failures; all of the first few failing means the setup is wrong.
    """

    window: int
    completed: int = 0
    failed: int = 0
    first_error: str | None = None

    def add(self, record: RequestRecord) -> bool:
        """Count one record; True exactly once: when the window has filled with failures only."""
        if record.status == "dropped" or self.completed >= self.window:
            return False  # a drop is the generator's, not the server's; past the window: decided
        self.completed += 1
        if record.status != "ok":
            self.failed += 1
            if self.first_error is None:
                error = " ".join((record.error or "").split())  # one line: JSON error bodies span many
                self.first_error = f"{record.status} {record.code}: {error}"
        return self.completed == self.window and self.failed == self.window


def fail_fast_message(settings: LoadSettings, watched: FirstRequests) -> str:
    return (
        f"Stopping the run: the first {watched.window} requests to {settings.server} "
        f"{settings.protocol} at {settings.target} all failed. First error: {watched.first_error}. "
        f"Check that model {settings.model_name!r} is served there (--model-name), that it takes "
        f"{settings.features} features per instance (--features / --artifacts), the host and port "
        "(--host) and the server's log. `--fail-fast 0` keeps a failing run going."
    )


class _FailFast:
    """Stops the whole run once per test, from any process: workers ask the master to stop it."""

    def __init__(self) -> None:
        self.watched: dict[tuple[Any, ...], FirstRequests] = {}
        self.refusals: dict[tuple[Any, ...], RefusalWatch] = {}
        self.stopping = False

    def reset(self) -> None:
        self.watched.clear()
        self.refusals.clear()
        self.stopping = False

    def watch_refusals(self, settings: LoadSettings, window: int) -> RefusalWatch | None:
        """Credentials refused mid-run (e.g. a rotated key) stop the run too, unless --fail-fast 0."""
        if window <= 0:
            return None
        key = (settings.server, settings.protocol, settings.target, settings.model_name)
        return self.refusals.setdefault(key, RefusalWatch(settings.url))

    def watch(self, settings: LoadSettings, window: int) -> FirstRequests | None:
        if window <= 0:
            return None
        key = (settings.server, settings.protocol, settings.target, settings.model_name)
        return self.watched.setdefault(key, FirstRequests(window))

    def stop_run(self, environment: Environment, message: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            logger.info("the first requests all failed: asking the master to stop the run")
            runner.send_message(FAIL_FAST_MESSAGE, {"message": message})
            return
        logger.error(message)
        if runner is None:
            return
        options = environment.parsed_options
        headless = bool(getattr(options, "headless", False))
        quits = headless or getattr(options, "autoquit", -1) != -1
        if quits:
            environment.process_exit_code = FAIL_FAST_EXIT_CODE
        # in a fresh greenlet: stopping the runner kills the users, possibly the caller's greenlet
        gevent.spawn(self._end, environment, quits)

    @staticmethod
    def _end(environment: Environment, quits: bool) -> None:
        runner = environment.runner
        assert runner is not None
        if not quits:
            runner.stop()  # web UI: the run stops, the UI keeps the failures and the log line
            return
        if not isinstance(runner, MasterRunner) and getattr(environment.parsed_options, "csv_prefix", None):
            runner.stop()  # users gone, the counts final: let Locust's CSV writer catch up before it closes
            gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)
        runner.quit()
        if environment.web_ui is not None:
            environment.web_ui.stop()


_fail_fast = _FailFast()


@events.init.add_listener
def _listen_for_fail_fast(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):

        def on_message(environment: Environment, msg: Any, **_: Any) -> None:
            _fail_fast.stop_run(environment, str(msg.data["message"]))

        runner.register_message(FAIL_FAST_MESSAGE, on_message)


@events.test_start.add_listener
def _reset_per_test_state(**_: Any) -> None:
    """A new test (e.g. started again from the web UI after a fix) looks at the servers afresh."""
    _fail_fast.reset()
    _feature_counts.clear()


# Pools and transports are shared by the users of one process: encode once, one connection pool.
_pools: dict[tuple[Any, ...], PayloadPool] = {}
_transports: dict[tuple[Any, ...], Transport] = {}
_writers: list[RecordWriter] = []
_user_numbers = itertools.count()


@events.quitting.add_listener
@events.test_stop.add_listener
def _flush_records(**_: Any) -> None:
    for writer in _writers:
        writer.flush()


class InferenceUser(User):
    """One open-loop scheduler (or one closed-loop sender) against one server x protocol."""

    abstract = True
    server: str = ""
    protocol: str = ""
    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.user_number = next(_user_numbers)
        runner = environment.runner
        worker_index = max(0, getattr(runner, "worker_index", 0) or 0)
        self.stream = worker_index * 100_000 + self.user_number
        self._writer: RecordWriter | None = None
        self._engine: Engine | None = None
        self._first_requests: FirstRequests | None = None
        self._refusals: RefusalWatch | None = None
        self._setup_error: str | None = None
        try:
            self.settings = self._load_settings(environment)
        except (ValueError, DiscoveryError) as exc:  # a bad option or an undiscoverable model: stop the run
            reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            self._setup_error = f"Cannot start {type(self).__name__}: {reason}"
            return
        options = environment.parsed_options
        self._first_requests = _fail_fast.watch(self.settings, int(getattr(options, "fail_fast", 0)))
        self._refusals = _fail_fast.watch_refusals(self.settings, int(getattr(options, "fail_fast", 0)))

    def _load_settings(self, environment: Environment) -> LoadSettings:
        options = environment.parsed_options
        host_text = self.host or default_host(self.server, self.protocol)
        host, port = split_host(host_text)
        security = security_of(options, host_text)
        mode = getattr(options, "mode", "open")
        users = total_users(environment)
        return LoadSettings(
            server=self.server,  # type: ignore[arg-type]
            protocol=self.protocol,  # type: ignore[arg-type]
            host=host,
            port=port,
            mode="closed" if mode == "closed" else "open",
            rate=float(getattr(options, "rate", 10.0)) / users if mode == "open" else None,
            concurrency=1 if mode == "closed" else None,
            duration_s=float(getattr(options, "run_time", 0) or 0) or 1e9,
            batch=int(getattr(options, "batch", 1)),
            features=feature_count(options, self.server, self.protocol, host, port, security).features,
            model_name=getattr(options, "model_name", "linear"),
            grpc_service=(getattr(options, "grpc_service", "") or None) if self.server == "triton" else None,
            pool_size=int(getattr(options, "pool_size", 16)),
            seed=int(getattr(options, "seed", 0)),
            payload_seed=int(getattr(options, "payload_seed", 1)),
            max_in_flight=int(getattr(options, "max_in_flight", 512)),
            timeout_s=float(getattr(options, "request_timeout", 30.0)),
            run="locust",
            security=security,
        )

    def on_stop(self) -> None:
        if self._engine is not None:
            self._engine.close()

    def _pool(self) -> PayloadPool:
        s = self.settings
        key = (s.server, s.protocol, s.batch, s.features, s.effective_pool_size, s.payload_seed, s.model_name)
        if key not in _pools:
            _pools[key] = build_pool(s)
        return _pools[key]

    def _transport(self) -> Transport:
        s = self.settings
        key = (s.server, s.protocol, s.host, s.resolved_port, s.model_name, s.timeout_s, s.security,
               s.grpc_service, s.batch, s.features)
        if key not in _transports:
            _transports[key] = make_transport(s)
        return _transports[key]

    def _records_writer(self, start_ns: int) -> RecordWriter | None:
        records_dir = getattr(self.environment.parsed_options, "records_dir", "")
        if not records_dir:
            return None
        Path(records_dir).mkdir(parents=True, exist_ok=True)
        header = RunHeader(
            run="locust",
            stream=self.stream,
            settings={**self.settings.resolved(), "user_class": type(self).__name__},
            measure_start_ns=start_ns,
            measure_end_ns=start_ns + round(self.settings.duration_s * 1e9),
            versions=versions(),
        )
        writer = RecordWriter(stream_path(records_dir, self.stream), header)
        _writers.append(writer)
        return writer

    def _sink(self, record: RequestRecord) -> None:
        exception = None
        if record.status != "ok":
            exception = RequestFailure(f"{record.status} {record.code}: {record.error}")
        self.environment.events.request.fire(
            request_type=self.protocol,
            name=self.server,
            response_time=(record.done_ns - record.scheduled_ns) / 1e6,
            response_length=record.bytes_in,
            exception=exception,
            context={"scheduled_ns": record.scheduled_ns, "sent_ns": record.sent_ns, "status": record.status},
        )
        if self._writer is not None:
            self._writer.add(record)
        watched = self._first_requests
        if watched is not None and watched.add(record):
            _fail_fast.stop_run(self.environment, fail_fast_message(self.settings, watched))
        if self._refusals is not None:
            refused = self._refusals.add(record.protocol, record.status, record.code, record.error)
            if refused is not None:
                _fail_fast.stop_run(self.environment, refused)

    @task
    def load(self) -> None:
        """Runs until Locust stops the user: the schedule (or the closed loop) lives in here."""
        if self._setup_error is not None:
            _fail_fast.stop_run(self.environment, self._setup_error)
            raise StopUser()
        s = self.settings
        start_ns = time.monotonic_ns()
        self._writer = self._writer or self._records_writer(start_ns)
        engine = self._engine = Engine(
            transport=self._transport(),
            bodies=self._pool().bodies,
            sink=self._sink,
            server=s.server,
            protocol=s.protocol,
            batch=s.batch,
            stream=self.stream,
            payload_seed=stream_seed(s.payload_seed, self.stream),
            max_in_flight=s.max_in_flight,
        )
        if s.mode == "open":
            assert s.rate is not None
            engine.run_open(
                make_arrivals("poisson", s.rate, stream_seed(s.seed, self.stream)), start_ns, FOREVER_NS
            )
        else:
            engine.run_closed(1, start_ns, FOREVER_NS)


# The nine user classes, generated from data: one per server x protocol, named e.g. TorchServeGrpc.
SERVER_CLASS_NAMES = {"tfserving": "TFServing", "torchserve": "TorchServe", "triton": "Triton"}
PROTOCOL_CLASS_NAMES = {"rest-json": "RestJson", "rest-binary": "RestBinary", "grpc": "Grpc"}
USER_CLASS_DOCS = {
    ("tfserving", "rest-json"): "TF Serving REST :predict with JSON instances.",
    ("tfserving", "rest-binary"): (
        "TF Serving REST :predict, predict_bytes signature, base64 instances (its REST API takes JSON only)."
    ),
    ("tfserving", "grpc"): "TF Serving gRPC PredictionService/Predict with tensor_content bytes.",
    ("torchserve", "rest-json"): "TorchServe POST /predictions/<model>, application/json.",
    ("torchserve", "rest-binary"): (
        "TorchServe POST /predictions/<model>, raw float32 application/octet-stream."
    ),
    ("torchserve", "grpc"): "TorchServe gRPC InferenceAPIsService/Predictions with input['data'] bytes.",
    ("triton", "rest-json"): "Triton (any V2 server) POST /v2/models/<model>/infer, FP32 JSON data.",
    ("triton", "rest-binary"): (
        "Triton (any V2 server) POST /v2/models/<model>/infer, binary tensor extension (raw float32)."
    ),
    ("triton", "grpc"): (
        "Triton (any V2 server) gRPC GRPCInferenceService/ModelInfer with raw_input_contents."
    ),
}


def user_class_name(server: str, protocol: str) -> str:
    return SERVER_CLASS_NAMES[server] + PROTOCOL_CLASS_NAMES[protocol]


def make_user_class(server: str, protocol: str) -> type[InferenceUser]:
    """A concrete InferenceUser for one server x protocol (Locust finds it as a module global)."""
    name = user_class_name(server, protocol)
    attributes = {
        "__doc__": USER_CLASS_DOCS[(server, protocol)],
        "__module__": __name__,
        "__qualname__": name,
        "server": server,
        "protocol": protocol,
        "host": default_host(server, protocol),
    }
    return types.new_class(name, (InferenceUser,), exec_body=lambda namespace: namespace.update(attributes))


USER_CLASSES: dict[str, type[InferenceUser]] = {
    user_class_name(server, protocol): make_user_class(server, protocol)
    for server in SERVERS
    for protocol in PROTOCOLS
}
globals().update(USER_CLASSES)
