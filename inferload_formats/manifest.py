"""`manifest.json` (`inferload.experiment` v2; v1 is read too): what a matrix ran, on what, with which
versions, and (v2) the order it ran in.

The runner writes it (`inferload.manifest.build_manifest` gathers the machine and the versions);
analysis reads it through `Manifest.read`. Version 2 added the schedule, its rounds and the server
warm-ups, and `slo.max_failure_rate` (a version 1 manifest's SLO has the default, 1 %: the limit
every version 1 run was judged with).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inferload_formats._document import Document
from inferload_formats.slo import Slo

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA: Literal["inferload.experiment"] = "inferload.experiment"
MANIFEST_VERSION = 2
MANIFEST_READABLE = (1, 2)


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ManifestModel(_Part):
    """The linear classifier's size and seed."""

    classes: int
    features: int
    seed: int


class SkippedCellEntry(_Part):
    """A cell the matrix planned but did not run, and why."""

    cell_id: str
    reason: str


class CpuPlanEntry(_Part):
    """Where servers and load processes ran (serving.cpusets: CPU lists as text, None: any CPU)."""

    servers: str | None
    load: str | None
    source: Literal["given", "default", "none"]  # the matrix's sets, the automatic split, unpinned
    available: str  # the CPUs the machine offered

    def describe(self) -> str:
        how = {"given": "as the matrix says", "default": "default split", "none": "unpinned"}[self.source]
        return (f"servers: {self.servers or 'any CPU'} · load: {self.load or 'any CPU'} ({how}; "
                f"machine offers {self.available})")


class Schedule(_Part):
    """How the cells were ordered (inferload/rounds.py): rounds that visit every line in a seeded random
    order, and what separated two repetitions."""

    seed: int  # the rounds' orders are drawn from this seed and the round's index
    isolation: Literal["restart", "rewarm"]  # between repetitions: servers restarted, or warmed again
    arms: int = 1  # 2 when some lines were measured twice per round (an A/A check: arms a and b)


class RoundRecord(_Part):
    """One round: every line of one server config visited once, in `order` (line ids, position 0 first).

    A rate sweep's round runs every line at one `level`; a max-rate search's round advances every line
    still searching by one step (`level` None: each line's step is in its cell.json).
    """

    round: int
    repetition: int
    server_config_name: str
    kind: Literal["levels", "search"]
    level: float | None
    order: list[str]
    calibration_before: int | None = None  # index of the calibration point taken before the round
    calibration_after: int | None = None


class WarmupRecord(_Part):
    """A line warmed after its server started (inferload/warmup.py): closed-loop windows until the last
    `windows` window medians agree within `within` of their mean, or `max_s` ran out."""

    line: str
    server: str
    protocol: str
    batch: int
    server_config_name: str
    repetition: int
    started_at: str
    rule: str  # the stability rule in words
    windows_ms: list[float]  # each window's median service time, in order
    window_requests: list[int]
    seconds: float  # wall time of the warm-up
    stable: bool  # False: the cap ended it first
    error: str | None = None  # the warm-up load failed (the line's cells still run and say how they did)


class _Echo(BaseModel):
    """A view of the resolved matrix the manifest echoes: the fields analysis reads, typed; the rest
    is the runner's (`inferload.experiments.Experiment`), kept in `Manifest.experiment` for re-running."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class EchoedBalancer(_Echo):
    kind: Literal["none", "nginx"]
    policy: str
    tls: bool = False  # nginx terminates TLS (matrices from before TLS have none)


class EchoedCache(_Echo):
    kind: Literal["none", "nginx"]


class EchoedServerConfig(_Echo):
    """A server configuration's topology: N replicas, the balancer in front, and whether it caches."""

    name: str
    replicas: int
    balancer: EchoedBalancer
    cache: EchoedCache
    tls: bool = False  # the servers' own TLS (matrices from before TLS have none)


class EchoedEarlyStop(_Echo):
    interval_within: float
    max_duration_s: float


class MatrixEcho(_Echo):
    """What analysis reads of the matrix: the configurations' topologies, and the stopping rule."""

    duration_s: float | None = None  # None: a manifest written without its matrix (tests)
    repetitions: int = 1
    server_configs: tuple[EchoedServerConfig, ...] = ()
    early_stop: EchoedEarlyStop | None = None


class Manifest(Document):
    """manifest.json: the matrix, where and on what it ran, and (v2) the order it ran in."""

    READABLE = MANIFEST_READABLE

    schema_: Literal["inferload.experiment"] = Field(default=MANIFEST_SCHEMA, alias="schema")
    schema_version: int = MANIFEST_VERSION
    name: str
    experiment: dict[str, Any]  # the resolved matrix (inferload.experiments.Experiment, as JSON)
    slo: Slo
    model: ManifestModel
    seeds: dict[str, int]
    tfserving_kind: str | None  # the kind that ran; "auto" until the first TF Serving start says
    versions: dict[str, str]
    machine: dict[str, Any]  # platform facts (inferload.manifest.machine_info), shown as they are
    artifacts: str
    skipped_cells: list[SkippedCellEntry] = Field(default_factory=list)
    created_at: str
    resumed_at: str | None = None
    cpus: CpuPlanEntry | None = None
    target: dict[str, Any] | None = None  # inferload.targets: where the servers were
    schedule: Schedule | None = None  # v2: how the rounds were drawn (None: a v1 manifest)
    rounds: list[RoundRecord] = Field(default_factory=list)  # v2: the rounds run so far, in order
    warmups: list[WarmupRecord] = Field(default_factory=list)  # v2: every warm-up after a server start

    @cached_property
    def matrix(self) -> MatrixEcho:
        """The typed view of `experiment` that analysis reads."""
        return MatrixEcho.model_validate(self.experiment)

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """manifest.json (`path` is the file or its results directory)."""
        path = Path(path)
        return super().read(path / MANIFEST_FILE if path.is_dir() else path)


def read_manifest(path: Path) -> Manifest:
    """manifest.json (`path` is the file or its results directory); SchemaError names the file and,
    for another version, the version it says and the one(s) read here."""
    return Manifest.read(path)


def write_manifest(path: Path, manifest: dict[str, Any] | Manifest) -> Manifest:
    """Check `manifest` against the format, then write it atomically; returns the typed manifest."""
    typed = manifest if isinstance(manifest, Manifest) else Manifest.model_validate(manifest)
    typed.write(path)
    return typed
