"""loadtest: the measuring instrument (open-loop Poisson load, per-request records, Locust users).

Only `locustfile.py` has a public module name here (`locust -f loadtest/` imports every public
`.py` file as a bare module); everything else is private and re-exported below.
Never imports TensorFlow, torch, serving/ or analysis/: load processes stay light.
"""

from inferload_formats import PROTOCOLS, SERVERS

from ._arrivals import ConstantArrivals, PoissonArrivals, StepArrivals, ramp, schedule_ns, stream_seed
from ._discovery import (
    DiscoveryError,
    ModelNotReady,
    ServedModel,
    describe_served_model,
    served_features,
    v2_ready_problem,
)
from ._early_stop import EarlyStop, EarlyStopOutcome
from ._health import (
    TargetError,
    TargetMismatch,
    TargetUnreachable,
    check_reachable,
    check_served_model,
    preflight,
    v2_tensor_problem,
)
from ._merge import MergeError, merge_runs
from ._payloads import (
    EncodingRecord,
    FreshInputs,
    PayloadPool,
    RepeatingChoice,
    ZipfChoice,
    build_pool,
    encode_body,
    make_inputs,
    measure_encoding,
    read_payloads_json,
    write_payloads_json,
)
from ._runner import LoadError, ResultsWriteError, run_load
from ._schema import (
    READABLE_VERSIONS,
    SCHEMA,
    SCHEMA_VERSION,
    RecordWriter,
    RequestRecord,
    RunData,
    RunHeader,
    RunIdentity,
    SchemaError,
    read_header,
    read_records,
    read_run,
    run_identity,
)
from ._settings import (
    STANDARD_PORTS,
    LoadSettings,
    describe_validation_error,
    metadata_url_for,
    split_host,
    split_http_url,
)
from ._summary import LoadSummary

__all__ = [
    "PROTOCOLS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "READABLE_VERSIONS",
    "SERVERS",
    "STANDARD_PORTS",
    "ConstantArrivals",
    "EncodingRecord",
    "FreshInputs",
    "RepeatingChoice",
    "ZipfChoice",
    "EarlyStop",
    "EarlyStopOutcome",
    "LoadError",
    "ResultsWriteError",
    "LoadSettings",
    "LoadSummary",
    "MergeError",
    "PayloadPool",
    "PoissonArrivals",
    "RecordWriter",
    "RequestRecord",
    "RunData",
    "RunHeader",
    "RunIdentity",
    "SchemaError",
    "StepArrivals",
    "DiscoveryError",
    "ModelNotReady",
    "ServedModel",
    "TargetError",
    "TargetMismatch",
    "TargetUnreachable",
    "build_pool",
    "check_reachable",
    "check_served_model",
    "describe_served_model",
    "preflight",
    "served_features",
    "v2_ready_problem",
    "v2_tensor_problem",
    "describe_validation_error",
    "encode_body",
    "make_inputs",
    "measure_encoding",
    "merge_runs",
    "ramp",
    "read_header",
    "read_records",
    "read_payloads_json",
    "read_run",
    "run_identity",
    "run_load",
    "metadata_url_for",
    "schedule_ns",
    "split_host",
    "split_http_url",
    "stream_seed",
    "write_payloads_json",
]
