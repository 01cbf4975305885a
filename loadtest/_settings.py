"""LoadSettings: one typed, validated object for a load run, kept apart from the mechanism.

Why pydantic with extra="forbid": a typo in an experiment file or a CLI flag must fail before any
load is sent, with a message naming the field. The resolved settings are echoed into every
records header, so a run can be reproduced from its own results.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inferload_formats import Protocol, Server

from ._early_stop import EarlyStop
from ._security import Security

STANDARD_PORTS: dict[tuple[str, str], int] = {
    ("tfserving", "rest-json"): 8501,
    ("tfserving", "rest-binary"): 8501,
    ("tfserving", "grpc"): 8500,
    ("torchserve", "rest-json"): 8080,
    ("torchserve", "rest-binary"): 8080,
    ("torchserve", "grpc"): 7070,
    ("triton", "rest-json"): 8000,
    ("triton", "rest-binary"): 8000,
    ("triton", "grpc"): 8001,
}

# Where each server describes its model: TF Serving's REST API, TorchServe's management API, a V2
# server's REST API (its gRPC API describes it too: ModelMetadata at the gRPC target itself).
STANDARD_METADATA_PORTS: dict[str, int] = {"tfserving": 8501, "torchserve": 8081, "triton": 8000}

# Rough bytes per float32 in each body format, to keep the payload pool inside its memory budget.
BYTES_PER_VALUE = {"rest-json": 14.0, "rest-binary": 4 * 4 / 3, "grpc": 4.0}
FULL_SIZE_FEATURES = 262_144


class LoadSettings(BaseModel):
    """Everything that decides what a load run sends, how fast, and when it is valid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: Server
    protocol: Protocol
    host: str = Field(
        default="127.0.0.1",
        description="server host name, IPv4 or IPv6 address; also http://HOST:PORT or HOST:PORT",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="None: the standard port for server x protocol"
    )
    mode: Literal["open", "closed"] = "open"
    rate: float | None = Field(default=None, gt=0, description="target arrivals per second (open loop)")
    arrival: Literal["poisson", "constant"] = "poisson"
    concurrency: int | None = Field(default=None, ge=1, description="requests in flight (closed loop)")
    duration_s: float = Field(gt=0, description="steady measuring window, after warm-up")
    warmup_s: float = Field(default=0.0, ge=0)
    batch: int = Field(default=1, ge=1)
    features: int = Field(default=FULL_SIZE_FEATURES, ge=1)
    model_name: str = Field(default="linear", min_length=1)
    pool_size: int = Field(default=16, ge=1, description="distinct inputs, encoded before the load starts")
    pool_memory_mb: float = Field(default=512.0, gt=0, description="cap on the encoded pool per process")
    seed: int = Field(default=0, ge=0, description="arrival schedule seed")
    payload_seed: int = Field(default=1, ge=0, description="input values and payload choice seed")
    repeat_share: float | None = Field(
        default=None, ge=0, le=1,
        description="share of requests that reuse an input this stream already sent; the others are "
        "distinct inputs never sent before (None: uniform choice over the pool, which repeats)",
    )
    zipf_s: float | None = Field(
        default=None, gt=0, le=10,
        description="Zipf popularity instead: request i picks catalog input k with probability ~ 1/k^s",
    )
    catalog_size: int = Field(default=10_000, ge=1, le=1_000_000, description="distinct inputs under zipf_s")
    max_in_flight: int = Field(default=512, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)
    processes: int = Field(default=1, ge=1, le=64)
    lateness_p99_limit_ms: float = Field(default=5.0, gt=0, description="above it the run is invalid")
    run: str = Field(default="load", min_length=1)
    server_kind: str | None = Field(
        default=None, description='e.g. "tfs-compat" or "tensorflow_model_server"'
    )
    cpus: tuple[int, ...] | None = Field(
        default=None,
        description="pin every load process to these CPU numbers (apart from the servers'); None: unpinned",
    )
    metadata_url: str | None = Field(
        default=None,
        description="where the served model is described: TF Serving's REST API (http://HOST:8501), "
        "TorchServe's management API (http://HOST:8081), a V2 server's REST API (http://HOST:8000) "
        "or its gRPC API (grpc://HOST:8001); None: derived from host/port (the target itself for TF "
        "Serving REST and V2 servers, else only at the standard ports)",
    )
    grpc_service: str | None = Field(
        default=None, min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$",
        description="V2 servers: the gRPC service that serves ModelInfer (None: "
        "inference.GRPCInferenceService; TorchServe's OIP: "
        "org.pytorch.serve.grpc.openinference.GRPCInferenceService)",
    )
    early_stop: EarlyStop | None = Field(
        default=None,
        description="run past duration_s until the percentile's interval is tight, at most "
        "max_duration_s (_early_stop.py); None: exactly duration_s",
    )
    security: Security = Field(
        default_factory=Security,
        description="TLS and credentials (_security.py): file paths and variable names, never secrets; "
        "an https:// or grpcs:// host turns TLS on",
    )

    @model_validator(mode="after")
    def _early_stop_fits(self) -> LoadSettings:
        if self.early_stop is None:
            return self
        if self.processes > 1:
            raise ValueError(
                f"early_stop judges the run's latencies in its one load process; with processes "
                f"{self.processes} each process would see only its share: set processes 1, or drop early_stop"
            )
        if self.early_stop.max_duration_s < self.duration_s:
            raise ValueError(
                f"early_stop.max_duration_s {self.early_stop.max_duration_s:g} is below duration_s "
                f"{self.duration_s:g} (the minimum): raise max_duration_s"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _split_url_host(cls, data: object) -> object:
        """`host` may be a URL or `host:port` (e.g. http://10.0.0.5:8501): its port fills `port`;
        an https:// or grpcs:// scheme turns TLS on (http:// or grpc:// with TLS on is a conflict)."""
        if not isinstance(data, dict) or not isinstance(data.get("host"), str):
            return data
        text = data["host"]
        host, port = split_host(text)
        if port is not None and data.get("port") not in (None, port):
            raise ValueError(f"host {text!r} names port {port} but port is {data['port']}: give the "
                             "port once")
        data = {**data, "host": host, "port": port if port is not None else data.get("port")}
        tls = scheme_tls(text)
        if tls is None:
            return data
        security = data.get("security")
        security = dict(security.model_dump() if isinstance(security, Security) else security or {})
        if "tls" in security and bool(security["tls"]) != tls:
            raise ValueError(
                f"host {text!r} says {'TLS' if tls else 'plaintext'}, but TLS is "
                f"{'on' if security['tls'] else 'off'} "
                "in the security settings: give it once (the scheme: https:// or grpcs:// for TLS)"
            )
        return {**data, "security": {**security, "tls": tls}}

    @model_validator(mode="after")
    def _metadata_url_is_http(self) -> LoadSettings:
        if self.metadata_url is not None:
            if self.server == "triton" and self.metadata_url.startswith("grpc://"):
                split_host(self.metadata_url)  # a V2 server's gRPC API describes the model too
            else:
                split_http_url(self.metadata_url, what="metadata_url")
        if self.grpc_service is not None and self.server != "triton":
            raise ValueError(
                f"grpc_service names a V2 (Open Inference Protocol) service; {self.server} has one gRPC "
                "API of its own: drop grpc_service"
            )
        return self

    @field_validator("cpus")
    @classmethod
    def _cpus_are_cpu_numbers(cls, cpus: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if cpus is not None and (not cpus or min(cpus) < 0):
            raise ValueError("cpus must name at least one CPU number >= 0 (or be None: unpinned)")
        return None if cpus is None else tuple(sorted(set(cpus)))

    @model_validator(mode="after")
    def _one_popularity(self) -> LoadSettings:
        if self.repeat_share is not None and self.zipf_s is not None:
            raise ValueError("give either repeat_share or zipf_s (two ways to choose inputs), not both")
        return self

    @model_validator(mode="after")
    def _load_matches_mode(self) -> LoadSettings:
        if self.mode == "open" and self.rate is None:
            raise ValueError("open-loop mode needs a target rate: set rate (requests/s) > 0")
        if self.mode == "closed" and self.concurrency is None:
            raise ValueError("closed-loop mode needs concurrency >= 1 (requests kept in flight)")
        if self.mode == "open" and self.concurrency is not None:
            raise ValueError("set either rate (open loop) or concurrency (closed loop), not both")
        if self.mode == "closed" and self.rate is not None:
            raise ValueError("set either rate (open loop) or concurrency (closed loop), not both")
        return self

    @property
    def resolved_port(self) -> int:
        return self.port if self.port is not None else STANDARD_PORTS[(self.server, self.protocol)]

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.resolved_port}"

    @property
    def resolved_metadata_url(self) -> str | None:
        """The API that describes the served model (see `metadata_url_for`), or None if unknown."""
        if self.metadata_url is not None:
            return self.metadata_url.rstrip("/")
        return metadata_url_for(self.server, self.protocol, self.host, self.port, tls=self.security.tls)

    @property
    def url(self) -> str:
        """The target as a URL, its scheme saying whether TLS is on (for messages)."""
        if self.protocol == "grpc":
            return f"{'grpcs' if self.security.tls else 'grpc'}://{self.target}"
        return f"{'https' if self.security.tls else 'http'}://{self.target}"

    @property
    def effective_pool_size(self) -> int:
        """pool_size, reduced so the encoded pool stays under pool_memory_mb (never below 1)."""
        body_bytes = self.batch * self.features * BYTES_PER_VALUE[self.protocol]
        fits = int(self.pool_memory_mb * 2**20 // max(body_bytes, 1))
        return max(1, min(self.pool_size, fits))

    def rate_per_process(self) -> float | None:
        return None if self.rate is None else self.rate / self.processes

    def resolved(self) -> dict[str, object]:
        """The settings as echoed into results headers (with the port actually used)."""
        data = self.model_dump()
        if self.early_stop is None:
            del data["early_stop"]  # runs without the rule echo the same settings as before it existed
        if self.grpc_service is None:
            del data["grpc_service"]  # likewise: only V2 runs that name a service echo it
        data["port"] = self.resolved_port
        data["effective_pool_size"] = self.effective_pool_size
        if self.security.plain:
            del data["security"]  # plaintext runs without credentials echo the same settings as before
        else:
            data["security"] = self.security.describe()  # presence and fingerprints, never a value
        return data


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_SCHEMES = ("http", "grpc", "https", "grpcs")
_TLS_SCHEMES = ("https", "grpcs")
_HOST_EXAMPLES = "e.g. 10.0.0.5, serving.example.internal, ::1, http://10.0.0.5:8501 or 10.0.0.5:8500"


def check_host_name(host: str) -> str:
    """A bare host: an IPv4/IPv6 address (IPv6 without brackets) or a DNS name; else ValueError."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not name or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        raise ValueError(
            f"host {host!r} is not a host name or IP address ({_HOST_EXAMPLES}); "
            "names are letters, digits, '-' and '_' between dots"
        )
    return host


def split_host(text: str) -> tuple[str, int | None]:
    """`10.0.0.5`, `[::1]`, `::1`, `box:8500`, `http://box:8501`, `grpc://[::1]:8500` -> (host, port).

    The scheme only says how the address was written: the protocol setting decides what is sent.
    Paths, queries and TLS schemes are refused (inferload builds each request's path itself).
    """
    text = text.strip()
    if not text:
        raise ValueError(f"host is empty: give a host name or address ({_HOST_EXAMPLES})")
    if "://" not in text:
        try:  # a bare IPv6 address has colons but no port
            return str(ipaddress.ip_address(text.strip("[]"))), None
        except ValueError:
            pass
        text = f"//{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"host {text.removeprefix('//')!r} is malformed ({exc}; {_HOST_EXAMPLES})") from None
    shown = text.removeprefix("//")
    if parts.scheme and parts.scheme not in _SCHEMES:
        raise ValueError(
            f"host {shown!r}: scheme {parts.scheme!r} is not supported (use http://, https://, grpc:// "
            "or grpcs://)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"host {shown!r} has a path or query: give only the scheme, host and port "
            "(the request paths are built from the server and protocol)"
        )
    if parts.username or parts.password:
        raise ValueError(f"host {shown!r}: credentials in the URL are not supported")
    if port == 0:
        raise ValueError(f"host {shown!r}: port 0 is not a port a server listens on")
    if not parts.hostname:
        raise ValueError(f"host {shown!r} names no host ({_HOST_EXAMPLES})")
    return check_host_name(parts.hostname), port


def scheme_tls(text: str) -> bool | None:
    """True for an https:// or grpcs:// host, False for http:// or grpc://, None without a scheme."""
    scheme, sep, _ = text.strip().partition("://")
    if not sep:
        return None
    return scheme.lower() in _TLS_SCHEMES


def split_http_url(url: str, *, what: str) -> tuple[str, int | None]:
    """An http:// or https:// base URL (a path is allowed): (host, port); ValueError naming `what`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{what} {url!r} is malformed ({exc}): e.g. http://10.0.0.5:8081") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{what} {url!r} must be an http:// or https:// URL with a host, e.g. http://10.0.0.5:8081"
        )
    return check_host_name(parts.hostname), port


def metadata_url_for(
    server: str, protocol: str, host: str, port: int | None, *, tls: bool = False
) -> str | None:
    """Where `server` describes its model, from the load target's host and port, or None if unknown.

    TF Serving REST and a V2 server (REST or gRPC: both APIs describe the model): the target
    itself. TF Serving's gRPC port, or TorchServe (whose management API is a port of its own): only
    when the target is at the standard port; a guess at a non-standard layout could describe some
    other server. With TLS: https, except TF Serving's REST API behind its gRPC port (the real binary
    has no TLS on REST), which is not guessed.
    """
    bracketed = f"[{host}]" if ":" in host else host
    standard = STANDARD_PORTS[(server, protocol)]
    scheme = "https" if tls else "http"
    if server == "triton":
        return f"{'grpc' if protocol == 'grpc' else scheme}://{bracketed}:{port or standard}"
    if server == "tfserving" and protocol != "grpc":
        return f"{scheme}://{bracketed}:{port or standard}"
    if port is not None and port != standard:
        return None
    if tls and server == "tfserving":
        return None
    return f"{scheme}://{bracketed}:{STANDARD_METADATA_PORTS[server]}"


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the field, for CLI and experiment errors."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        elif error["type"] == "literal_error" and error["loc"]:
            message = f"{error.get('input')!r} is not one of the allowed values: {message}"
        lines.append(f"{location}: {message}")
    return "; ".join(lines)
