"""Locust users for the six server x protocol combinations, open loop by default.

    locust -f loadtest/                      # web UI: pick a user class, set --rate etc. in the form
    locust -f loadtest/ --headless -u 4 -r 4 -t 30s --rate 200 TorchServeGrpc

Why not stock Locust behaviour: a Locust user waits for its response before its next request
(closed loop), so a stalled server receives less load and its stall vanishes from the
percentiles (coordinated omission). Here, in open mode, every user runs our open-loop scheduler
at rate / total users (a sum of independent Poisson streams is Poisson at the total rate, also
across `--processes N` and `--master/--worker`), and the response time Locust shows is measured
from each request's *scheduled* time. `--mode closed` gives the stock behaviour for comparison.
`--records-dir DIR` also writes our lossless per-request records (Locust's own stats are bucketed).

Hosts default to the standard local / docker-compose ports (TF Serving 8501 REST, 8500 gRPC;
TorchServe 8080 REST, 7070 gRPC), overridable with `--host` or INFERLOAD_TFSERVING_HOST,
INFERLOAD_TFSERVING_REST_PORT, INFERLOAD_TFSERVING_GRPC_PORT, INFERLOAD_TORCHSERVE_HOST,
INFERLOAD_TORCHSERVE_REST_PORT, INFERLOAD_TORCHSERVE_GRPC_PORT.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import grpc.experimental.gevent as grpc_gevent
from locust import User, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest._arrivals import make_arrivals, stream_seed
from loadtest._engine import Engine
from loadtest._payloads import PayloadPool, build_pool
from loadtest._schema import RecordWriter, RequestRecord, RunHeader, stream_path
from loadtest._settings import FULL_SIZE_FEATURES, STANDARD_PORTS, LoadSettings
from loadtest._transports import Transport, make_transport
from loadtest._versions import versions

grpc_gevent.init_gevent()  # blocking gRPC calls must yield to other greenlets (Locust's gRPC example)

TOTAL_USERS_OPTION = "inferload_total_users"  # set on the master, travels to workers with the spawn message
FOREVER_NS = 2**62


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
        help=f"features per instance (default: --artifacts' model.json, else {FULL_SIZE_FEATURES})",
    )
    parser.add_argument("--artifacts", default="", help="artifacts dir: read features from its model.json")
    parser.add_argument("--max-in-flight", type=int, default=512, help="open loop: in-flight bound per user")
    parser.add_argument("--records-dir", default="", help="also write lossless per-request records here")
    parser.add_argument("--seed", type=int, default=0, help="arrival schedule seed")
    parser.add_argument("--payload-seed", type=int, default=1, help="input values / payload choice seed")
    parser.add_argument("--pool-size", type=int, default=16, help="distinct inputs encoded before the load")
    parser.add_argument(
        "--request-timeout", type=float, default=30.0, help="seconds before a request times out"
    )
    parser.add_argument("--model-name", default="linear", help="model name on the server")


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


def resolve_features(options: Any) -> int:
    if getattr(options, "features", 0):
        return int(options.features)
    artifacts = getattr(options, "artifacts", "")
    if artifacts:
        path = Path(artifacts) / "model.json"
        try:
            return int(json.loads(path.read_text())["features"])
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"--artifacts {artifacts}: cannot read features from {path} ({exc})") from exc
    return FULL_SIZE_FEATURES


def default_host(server: str, protocol: str) -> str:
    prefix = f"INFERLOAD_{server.upper()}"
    kind = "GRPC" if protocol == "grpc" else "REST"
    host = os.environ.get(f"{prefix}_HOST", "127.0.0.1")
    port = os.environ.get(f"{prefix}_{kind}_PORT", str(STANDARD_PORTS[(server, protocol)]))
    return f"grpc://{host}:{port}" if protocol == "grpc" else f"http://{host}:{port}"


def split_host(host: str) -> tuple[str, int | None]:
    """`http://127.0.0.1:8501`, `grpc://[::1]:8500` or `127.0.0.1:7070` -> (host, port)."""
    parts = urlsplit(host if "://" in host else f"//{host}")
    if not parts.hostname:
        raise ValueError(f"--host {host!r}: expected e.g. http://127.0.0.1:8501 or 127.0.0.1:8500")
    return parts.hostname, parts.port


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
        options = environment.parsed_options
        host, port = split_host(self.host or default_host(self.server, self.protocol))
        self.user_number = next(_user_numbers)
        runner = environment.runner
        worker_index = max(0, getattr(runner, "worker_index", 0) or 0)
        self.stream = worker_index * 100_000 + self.user_number
        mode = getattr(options, "mode", "open")
        users = total_users(environment)
        self.settings = LoadSettings(
            server=self.server,  # type: ignore[arg-type]
            protocol=self.protocol,  # type: ignore[arg-type]
            host=host,
            port=port,
            mode="closed" if mode == "closed" else "open",
            rate=float(getattr(options, "rate", 10.0)) / users if mode == "open" else None,
            concurrency=1 if mode == "closed" else None,
            duration_s=float(getattr(options, "run_time", 0) or 0) or 1e9,
            batch=int(getattr(options, "batch", 1)),
            features=resolve_features(options),
            model_name=getattr(options, "model_name", "linear"),
            pool_size=int(getattr(options, "pool_size", 16)),
            seed=int(getattr(options, "seed", 0)),
            payload_seed=int(getattr(options, "payload_seed", 1)),
            max_in_flight=int(getattr(options, "max_in_flight", 512)),
            timeout_s=float(getattr(options, "request_timeout", 30.0)),
            run="locust",
        )
        self._writer: RecordWriter | None = None
        self._engine: Engine | None = None

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
        key = (s.server, s.protocol, s.host, s.resolved_port, s.model_name, s.timeout_s)
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

    @task
    def load(self) -> None:
        """Runs until Locust stops the user: the schedule (or the closed loop) lives in here."""
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


class TFServingRestJson(InferenceUser):
    """TF Serving REST :predict with JSON instances."""

    server = "tfserving"
    protocol = "rest-json"
    host = default_host(server, protocol)


class TFServingRestBinary(InferenceUser):
    """TF Serving REST :predict, predict_bytes signature, base64 instances (its REST API takes JSON only)."""

    server = "tfserving"
    protocol = "rest-binary"
    host = default_host(server, protocol)


class TFServingGrpc(InferenceUser):
    """TF Serving gRPC PredictionService/Predict with tensor_content bytes."""

    server = "tfserving"
    protocol = "grpc"
    host = default_host(server, protocol)


class TorchServeRestJson(InferenceUser):
    """TorchServe POST /predictions/linear, application/json."""

    server = "torchserve"
    protocol = "rest-json"
    host = default_host(server, protocol)


class TorchServeRestBinary(InferenceUser):
    """TorchServe POST /predictions/linear, raw float32 application/octet-stream."""

    server = "torchserve"
    protocol = "rest-binary"
    host = default_host(server, protocol)


class TorchServeGrpc(InferenceUser):
    """TorchServe gRPC InferenceAPIsService/Predictions with input['data'] bytes."""

    server = "torchserve"
    protocol = "grpc"
    host = default_host(server, protocol)
