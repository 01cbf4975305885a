"""The Locust users: one open-loop scheduler (or one closed-loop sender) per user against one server x
protocol, and the concrete user classes, generated from the server x protocol table.

Users of one process share their payload pools (encoded once) and transports (one connection pool);
with `--records-dir` each user writes its own records stream.
"""

from __future__ import annotations

import itertools
import time
import types
from pathlib import Path
from typing import Any

from locust import User, constant, task
from locust.env import Environment
from locust.exception import StopUser
from pydantic import ValidationError

from inferload_formats import PROTOCOLS, SERVERS
from loadtest._arrivals import make_arrivals, stream_seed
from loadtest._discovery import DiscoveryError
from loadtest._engine import Engine
from loadtest._locust_fail_fast import FAIL_FAST, FirstRequests, fail_fast_message
from loadtest._locust_options import default_host, security_of, total_users
from loadtest._locust_width import feature_count, grpc_service
from loadtest._payloads import PayloadPool, build_pool
from loadtest._schema import RecordWriter, RequestRecord, RunHeader, stream_path
from loadtest._security import RefusalWatch
from loadtest._settings import LoadSettings, describe_validation_error, split_host
from loadtest._transports import Transport, make_transport
from loadtest._versions import versions

FOREVER_NS = 2**62


class RequestFailure(Exception):
    """What Locust shows as the failure of a request (status and server message)."""


# Pools and transports are shared by the users of one process: encode once, one connection pool.
_pools: dict[tuple[Any, ...], PayloadPool] = {}
_transports: dict[tuple[Any, ...], Transport] = {}
_writers: list[RecordWriter] = []
_user_numbers = itertools.count()


def flush_records() -> None:
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
        self._first_requests = FAIL_FAST.watch(self.settings, int(getattr(options, "fail_fast", 0)))
        self._refusals = FAIL_FAST.watch_refusals(self.settings, int(getattr(options, "fail_fast", 0)))

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
            grpc_service=grpc_service(options, self.server),
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
               s.grpc_service, s.batch, s.features)  # a V2 binary body's header length: batch x features
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
            response_time=record.latency_ns / 1e6,
            response_length=record.bytes_in,
            exception=exception,
            context={"scheduled_ns": record.scheduled_ns, "sent_ns": record.sent_ns, "status": record.status},
        )
        if self._writer is not None:
            self._writer.add(record)
        watched = self._first_requests
        if watched is not None and watched.add(record):
            FAIL_FAST.stop_run(self.environment, fail_fast_message(self.settings, watched))
        if self._refusals is not None:
            refused = self._refusals.add(record.protocol, record.status, record.code, record.error)
            if refused is not None:
                FAIL_FAST.stop_run(self.environment, refused)

    @task
    def load(self) -> None:
        """Runs until Locust stops the user: the schedule (or the closed loop) lives in here."""
        if self._setup_error is not None:
            FAIL_FAST.stop_run(self.environment, self._setup_error)
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


# The concrete user classes, generated from data: one per server x protocol, named e.g. TorchServeGrpc.
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


def make_user_class(server: str, protocol: str, module: str) -> type[InferenceUser]:
    """A concrete InferenceUser for one server x protocol, defined in `module` (the locustfile: Locust
    finds it there as a module global)."""
    name = user_class_name(server, protocol)
    attributes = {
        "__doc__": USER_CLASS_DOCS[(server, protocol)],
        "__module__": module,
        "__qualname__": name,
        "server": server,
        "protocol": protocol,
        "host": default_host(server, protocol),
    }
    return types.new_class(name, (InferenceUser,), exec_body=lambda namespace: namespace.update(attributes))


def user_classes(module: str) -> dict[str, type[InferenceUser]]:
    """Every concrete user class by name, defined in `module`."""
    return {
        user_class_name(server, protocol): make_user_class(server, protocol, module)
        for server in SERVERS
        for protocol in PROTOCOLS
    }
