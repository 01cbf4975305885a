"""What a transport sends, as data: one `TransportSpec` per load target, consumed by every engine.

Why data: the gevent transports (Locust) and the asyncio transports (`inferload load` workers) must
send exactly the same requests. Everything protocol-specific (the HTTP path, content type and extra
headers; the gRPC method and metadata; TLS; the channel options) is decided here, once, from
`LoadSettings`; the transports only carry it. A new server API (e.g. the Open Inference Protocol)
is new values here, not new code in each engine; TLS and credentials are `_security`'s objects,
carried here to every transport.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _oip
from ._payloads import CONTENT_TYPES
from ._security import Credentials, Security
from ._settings import LoadSettings

TFSERVING_PREDICT = "/tensorflow.serving.PredictionService/Predict"
TORCHSERVE_PREDICT = "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions"
GRPC_CLIENT_VARIABLE = "INFERLOAD_GRPC_CLIENT"  # benchmarks compare the asyncio engine's two gRPC clients
GRPC_MAX_MESSAGE = 2**31 - 1  # as TF Serving and tfs-compat accept: the servers decide what is too big

# Every generator gRPC channel's options (all transports); benchmarks/generator_cpu.py extends it to
# measure an option before it becomes a default, so transports read it when they build a channel.
GRPC_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", GRPC_MAX_MESSAGE),
    ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE),
]

@dataclass(frozen=True)
class TransportSpec:
    """One load target's requests: where, what and how, for any engine's transport."""

    kind: Literal["http", "grpc"]
    host: str
    port: int
    timeout_s: float
    pool: int  # connections an HTTP transport may keep (the in-flight bound, or the concurrency)
    path: str = ""  # HTTP: request path
    content_type: str = ""  # HTTP
    extra_headers: tuple[tuple[str, str], ...] = ()  # HTTP: headers the body format needs (a V2 binary body)
    grpc_method: str = ""  # gRPC: /package.Service/Method
    security: Security | None = None  # TLS (CA, client certificate, server name): `_security`
    credentials: Credentials = field(default_factory=Credentials)  # headers / metadata, read once
    channel_options: tuple[tuple[str, Any], ...] = field(default_factory=lambda: tuple(GRPC_CHANNEL_OPTIONS))
    # the asyncio engine's gRPC client: HTTP/2 framed by inferload ("h2", the default: half the CPU per
    # call, benchmarks/results/profiles/README.md) or grpc.aio on the loop ("grpc.aio", channel_options)
    grpc_client: Literal["h2", "grpc.aio"] = "h2"

    @property
    def authority(self) -> str:
        """host:port, an IPv6 address in brackets (URL and gRPC target form)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    @property
    def bare_host(self) -> str:
        return self.host.strip("[]")

    @property
    def tls(self) -> bool:
        return self.security is not None and self.security.tls

    @property
    def server_hostname(self) -> str | None:
        """The name TLS verifies (and sends as SNI): the security's server_name, else the host."""
        if not self.tls:
            return None
        assert self.security is not None
        return self.security.server_name or self.bare_host

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """HTTP: the body format's own headers, then the credentials' request headers."""
        return self.extra_headers + tuple(self.credentials.headers("inference").items())

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC: the credentials as call metadata."""
        return self.credentials.grpc_metadata()


def rest_path(server: str, model_name: str) -> str:
    if server == "tfserving":
        return f"/v1/models/{model_name}:predict"
    if server == "triton":
        return _oip.infer_path(model_name)
    return f"/predictions/{model_name}"


def grpc_method(server: str, grpc_service: str | None = None) -> str:
    """The full gRPC method path a server's requests call (a V2 server's: ModelInfer of `grpc_service`)."""
    if server == "triton":
        return _oip.grpc_method(grpc_service)
    return TFSERVING_PREDICT if server == "tfserving" else TORCHSERVE_PREDICT


def rest_headers(settings: LoadSettings) -> tuple[tuple[str, str], ...]:
    """HTTP headers every request of `settings` carries besides Content-Type (the body's shape is fixed)."""
    if settings.server == "triton":
        return tuple(_oip.request_headers(settings.protocol, settings.batch, settings.features).items())
    return ()


def transport_spec(settings: LoadSettings, credentials: Credentials | None = None) -> TransportSpec:
    """The requests of settings.server x settings.protocol at settings.host:resolved_port, with the
    target's TLS and credentials (read here unless the caller read them already)."""
    pool = settings.max_in_flight if settings.mode == "open" else (settings.concurrency or 1)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.resolved_port,
        "timeout_s": settings.timeout_s,
        "pool": pool,
        "channel_options": tuple(GRPC_CHANNEL_OPTIONS),
        "security": settings.security,
        "credentials": credentials if credentials is not None else Credentials.load(settings.security),
    }
    if settings.protocol == "grpc":
        client = os.environ.get(GRPC_CLIENT_VARIABLE, "h2")
        if client not in ("h2", "grpc.aio"):
            raise ValueError(f"{GRPC_CLIENT_VARIABLE}={client!r}: use h2 (the default) or grpc.aio")
        return TransportSpec(kind="grpc", grpc_method=grpc_method(settings.server, settings.grpc_service),
                             grpc_client="grpc.aio" if client == "grpc.aio" else "h2", **common)
    return TransportSpec(
        kind="http",
        path=rest_path(settings.server, settings.model_name),
        content_type=CONTENT_TYPES[(settings.server, settings.protocol)],
        extra_headers=rest_headers(settings),
        **common,
    )
