"""LoadSettings: one typed, validated object for a load run, kept apart from the mechanism.

Why pydantic with extra="forbid": a typo in an experiment file or a CLI flag must fail before any
load is sent, with a message naming the field. The resolved settings are echoed into every
records header, so a run can be reproduced from its own results.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SERVERS = ("tfserving", "torchserve")
PROTOCOLS = ("rest-json", "rest-binary", "grpc")
Server = Literal["tfserving", "torchserve"]
Protocol = Literal["rest-json", "rest-binary", "grpc"]

STANDARD_PORTS: dict[tuple[str, str], int] = {
    ("tfserving", "rest-json"): 8501,
    ("tfserving", "rest-binary"): 8501,
    ("tfserving", "grpc"): 8500,
    ("torchserve", "rest-json"): 8080,
    ("torchserve", "rest-binary"): 8080,
    ("torchserve", "grpc"): 7070,
}

# Rough bytes per float32 in each body format, to keep the payload pool inside its memory budget.
BYTES_PER_VALUE = {"rest-json": 14.0, "rest-binary": 4 * 4 / 3, "grpc": 4.0}
FULL_SIZE_FEATURES = 262_144


class LoadSettings(BaseModel):
    """Everything that decides what a load run sends, how fast, and when it is valid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: Server
    protocol: Protocol
    host: str = "127.0.0.1"
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
    max_in_flight: int = Field(default=512, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)
    processes: int = Field(default=1, ge=1, le=64)
    lateness_p99_limit_ms: float = Field(default=5.0, gt=0, description="above it the run is invalid")
    run: str = Field(default="load", min_length=1)
    server_kind: str | None = Field(
        default=None, description='e.g. "tfs-compat" or "tensorflow_model_server"'
    )

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        if host == "localhost":
            return host
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise ValueError(
                f"host {host!r} is not a loopback address: this tool only targets servers on this "
                "machine; use 127.0.0.1 (or ::1, localhost)"
            ) from None
        if not address.is_loopback:
            raise ValueError(
                f"host {host!r} is not a loopback address: this tool only targets servers on this "
                "machine; use 127.0.0.1 (or ::1, localhost)"
            )
        return host

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
        data["port"] = self.resolved_port
        data["effective_pool_size"] = self.effective_pool_size
        return data


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
