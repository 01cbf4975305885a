"""Server-side knobs of one experiment cell, validated once so a typo fails before a server starts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inferload_formats import TfServingKind

TfServingSetting = Literal["auto", TfServingKind]  # "auto": the real binary when on PATH, else tfs-compat
# "auto": a tritonserver on PATH, else the nvidia-pytriton wheel's
TritonSetting = Literal["auto", "tritonserver", "pytriton"]


class ServerTls(BaseModel):
    """TLS for a server started here: its certificate and key, the CA clients trust (health checks
    verify with it), and, for mutual TLS, the CA whose client certificates it requires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: str = Field(description="PEM server certificate (chain)")
    key_file: str = Field(description="PEM key of cert_file (PKCS#8 or RSA)")
    ca_file: str = Field(description="PEM CA that signed cert_file: what clients (and health checks) trust")
    client_ca_file: str | None = Field(
        default=None, description="require client certificates signed by this CA (mutual TLS); None: "
                                  "none asked"
    )


class ServerSettings(BaseModel):
    """Workers, batching and caching of every server; echoed into servers.json and every results header."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    torchserve_workers: int = Field(
        default=1, ge=1, le=64, description="Python worker processes for the model"
    )
    torchserve_batch_size: int = Field(
        default=1, ge=1, le=4096, description="server-side batch size (1 = off)"
    )
    torchserve_max_batch_delay_ms: int = Field(
        default=5, ge=0, le=60_000, description="how long TorchServe waits to fill a batch"
    )
    torchserve_job_queue_size: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="requests queued per model before TorchServe answers 503",
    )
    torchserve_decode_input_request: bool = Field(
        default=False,
        description=(
            "let TorchServe's worker json-decode JSON bodies before the handler (its default, true, "
            "uses the stdlib json module: ~130 ms for one full-size instance; false hands the bytes "
            "to our handler, which parses them with orjson)"
        ),
    )
    tfserving_batching: bool = Field(default=False, description="--enable_batching with the parameters below")
    tfserving_max_batch_size: int = Field(default=32, ge=1, le=4096)
    tfserving_batch_timeout_us: int = Field(default=1000, ge=0, le=60_000_000)
    tfserving_num_batch_threads: int = Field(default=2, ge=1, le=256)
    tfserving_max_enqueued_batches: int = Field(default=1000, ge=1, le=1_000_000)
    tfserving_kind: TfServingSetting = Field(
        default="auto", description="auto = the real tensorflow_model_server if on PATH, else tfs-compat"
    )
    tls: ServerTls | None = Field(
        default=None,
        description="TLS on: TorchServe's REST (inference, management) and gRPC; TF Serving's gRPC "
        "(--ssl_config_file; its REST API has no TLS, as the real binary's)",
    )
    torchserve_token_auth: bool = Field(
        default=False,
        description="TorchServe's token authorization on: it writes key_file.json (inference and "
        "management keys) into its working directory",
    )
    triton_kind: TritonSetting = Field(
        default="auto",
        description="auto = a `tritonserver` on PATH if there is one, else the nvidia-pytriton wheel's",
    )
    triton_instances: int = Field(default=1, ge=1, le=64, description="model instances (stub processes)")
    triton_max_batch_size: int = Field(
        default=1024, ge=1, le=4096,
        description="config.pbtxt max_batch_size: the largest client batch, and merged batch, Triton takes",
    )
    triton_dynamic_batching: bool = Field(
        default=False, description="Triton's dynamic batcher merges requests"
    )
    triton_max_queue_delay_us: int = Field(
        default=0, ge=0, le=60_000_000, description="how long the dynamic batcher may hold a request"
    )
    triton_preferred_batch_sizes: tuple[int, ...] = Field(
        default=(), description="batch sizes the dynamic batcher aims for (empty: max_batch_size)"
    )
    triton_response_cache: bool = Field(
        default=False, description="Triton's local response cache (identical requests answered from it)"
    )
    triton_cache_mb: int = Field(default=256, ge=1, le=65_536, description="the local cache's size, MiB")
    cpus: tuple[int, ...] | None = Field(
        default=None,
        description="pin every server process (and its children) to these CPUs; thread pools are sized "
        "to them (serving/cpusets.py). None: unpinned",
    )

    @field_validator("cpus")
    @classmethod
    def _distinct_cpus(cls, cpus: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if cpus is None:
            return None
        if not cpus or min(cpus) < 0:
            raise ValueError("cpus must name at least one CPU number >= 0 (or be None: unpinned)")
        return tuple(sorted(set(cpus)))

    @model_validator(mode="after")
    def _triton_batching_fits(self) -> ServerSettings:
        sizes = self.triton_preferred_batch_sizes
        if sizes and not self.triton_dynamic_batching:
            raise ValueError(
                "triton_preferred_batch_sizes needs triton_dynamic_batching: turn it on, or drop them"
            )
        too_big = [size for size in sizes if not 1 <= size <= self.triton_max_batch_size]
        if too_big:
            raise ValueError(
                f"triton_preferred_batch_sizes {list(too_big)} outside 1..triton_max_batch_size "
                f"({self.triton_max_batch_size}): Triton refuses such a config"
            )
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"triton_preferred_batch_sizes {list(sizes)} lists a size twice")
        return self
