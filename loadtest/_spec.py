"""What a transport sends, as data: one `TransportSpec` per load target, consumed by every engine.

Why data: the gevent transports (Locust) and the asyncio transports (`inferload load` workers) must
send exactly the same requests. Everything protocol-specific (the HTTP path, content type and extra
headers; the gRPC method and metadata; TLS; the channel options) is decided here, once, from
`LoadSettings`; the transports only carry it. A new server API (e.g. the Open Inference Protocol)
or credentials (headers, metadata, TLS) are new values here, not new code in each engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._payloads import CONTENT_TYPES
from ._settings import LoadSettings

if TYPE_CHECKING:
    import ssl

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
class TlsSpec:
    """TLS to the target (HTTPS, gRPC over TLS, mutual TLS with a client certificate).

    Paths, never key material: the files are read when a connection is made, and a spec can be
    echoed (`describe`) without a secret in it."""

    ca_file: str | None = None  # None: the system's trust store
    cert_file: str | None = None  # client certificate (mutual TLS), with key_file
    key_file: str | None = None
    server_hostname: str | None = None  # the name the certificate must carry (None: the host)

    def ssl_context(self) -> ssl.SSLContext:
        import ssl

        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def grpc_credentials(self) -> Any:
        import grpc

        def read(path: str | None) -> bytes | None:
            if path is None:
                return None
            with open(path, "rb") as handle:
                return handle.read()

        return grpc.ssl_channel_credentials(read(self.ca_file), read(self.key_file), read(self.cert_file))


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
    headers: tuple[tuple[str, str], ...] = ()  # HTTP: extra request headers (e.g. credentials)
    grpc_method: str = ""  # gRPC: /package.Service/Method
    metadata: tuple[tuple[str, str], ...] = ()  # gRPC: call metadata (e.g. credentials)
    tls: TlsSpec | None = None
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


def rest_path(server: str, model_name: str) -> str:
    if server == "tfserving":
        return f"/v1/models/{model_name}:predict"
    return f"/predictions/{model_name}"


def grpc_method(server: str) -> str:
    return TFSERVING_PREDICT if server == "tfserving" else TORCHSERVE_PREDICT


def transport_spec(settings: LoadSettings) -> TransportSpec:
    """The requests of settings.server x settings.protocol at settings.host:resolved_port."""
    pool = settings.max_in_flight if settings.mode == "open" else (settings.concurrency or 1)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.resolved_port,
        "timeout_s": settings.timeout_s,
        "pool": pool,
        "channel_options": tuple(GRPC_CHANNEL_OPTIONS),
    }
    if settings.protocol == "grpc":
        client = os.environ.get(GRPC_CLIENT_VARIABLE, "h2")
        if client not in ("h2", "grpc.aio"):
            raise ValueError(f"{GRPC_CLIENT_VARIABLE}={client!r}: use h2 (the default) or grpc.aio")
        return TransportSpec(kind="grpc", grpc_method=grpc_method(settings.server),
                             grpc_client="grpc.aio" if client == "grpc.aio" else "h2", **common)
    return TransportSpec(
        kind="http",
        path=rest_path(settings.server, settings.model_name),
        content_type=CONTENT_TYPES[(settings.server, settings.protocol)],
        **common,
    )
