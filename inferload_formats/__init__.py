"""inferload_formats: the results formats' shared machinery, and the runner's manifest and cell formats.

A leaf package: it imports the standard library, pydantic and orjson, never another package of
inferload, so every format owner can build on it (DESIGN.md section 8):

| file | format | owner |
|---|---|---|
| `requests*.jsonl` | `inferload.requests` | `loadtest` (`RunHeader`, `RequestRecord`, `read_run`) |
| `load.json` | `inferload.load` | `loadtest` (`LoadSummary`) |
| `payloads.json` | `inferload.payloads` | `loadtest` (`PayloadsDocument`, `read_payloads_json`) |
| `floor.json` | `inferload.floor` | `models.floor` (`FloorDocument`, `read_floor`) |
| `model.json` | `inferload.model` | `models.artifacts` (`ModelJson`) |
| `server_metrics.jsonl` | `inferload.server_metrics` | `serving.metrics_file` (`ServerSample`) |
| `manifest.json` | `inferload.experiment` | here (`Manifest`), written by the runner |
| `cell.json` | `inferload.cell` | here (`CellRecord`), written by the runner |
| `summary.json` | `inferload.summary` | `analysis.summary` (`SummaryDocument`) |

`kinds.py` holds the vocabulary they record (servers, protocols, TF Serving and Triton kinds), defined once.

Each owner reads its file with the same three steps (`read_json`, `check_version`, `validate`), so
every refusal names the file, the version it says and the version(s) read here, or each bad field.
"""

from inferload_formats._document import (
    NEWER_HINT,
    OLDER_HINT,
    Document,
    SchemaError,
    check_version,
    read_json,
    strict_fields,
    validate,
    version_problem,
    write_json,
)
from inferload_formats.cell import (
    CELL_DONE,
    CELL_FAILED,
    CELL_FILE,
    CELL_READABLE,
    CELL_SCHEMA,
    CELL_VERSION,
    CellCalibration,
    CellMachine,
    CellProbe,
    CellRecord,
    cell_status,
    read_cell,
    write_cell,
)
from inferload_formats.kinds import (
    PROTOCOLS,
    SERVERS,
    TFSERVING_KINDS,
    TRITON_KINDS,
    Protocol,
    Server,
    TfServingKind,
    TritonKind,
)
from inferload_formats.manifest import (
    MANIFEST_FILE,
    MANIFEST_READABLE,
    MANIFEST_SCHEMA,
    MANIFEST_VERSION,
    CpuPlanEntry,
    Manifest,
    ManifestModel,
    MatrixEcho,
    RoundRecord,
    Schedule,
    SkippedCellEntry,
    WarmupRecord,
    read_manifest,
    write_manifest,
)
from inferload_formats.slo import Slo

__all__ = [
    "CELL_DONE",
    "CELL_FAILED",
    "CELL_FILE",
    "CELL_READABLE",
    "CELL_SCHEMA",
    "CELL_VERSION",
    "MANIFEST_FILE",
    "MANIFEST_READABLE",
    "MANIFEST_SCHEMA",
    "MANIFEST_VERSION",
    "NEWER_HINT",
    "PROTOCOLS",
    "SERVERS",
    "TFSERVING_KINDS",
    "TRITON_KINDS",
    "OLDER_HINT",
    "CellCalibration",
    "CellMachine",
    "CellProbe",
    "CellRecord",
    "CpuPlanEntry",
    "Document",
    "Manifest",
    "Protocol",
    "Server",
    "TfServingKind",
    "TritonKind",
    "ManifestModel",
    "MatrixEcho",
    "RoundRecord",
    "Schedule",
    "SchemaError",
    "SkippedCellEntry",
    "Slo",
    "WarmupRecord",
    "cell_status",
    "check_version",
    "read_cell",
    "read_json",
    "read_manifest",
    "strict_fields",
    "validate",
    "version_problem",
    "write_cell",
    "write_json",
    "write_manifest",
]
