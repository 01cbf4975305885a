"""Triton's model repository for the linear classifier: `config.pbtxt` + a Python-backend `model.py`.

The wheel's `tritonserver` (nvidia-pytriton) carries the Python backend only (no ONNX Runtime, no
libtorch backend), so the model is `models/triton_model.py` copied as `linear/1/model.py`, next to
the weights as a plain .npy. Layout (`ArtifactLayout.triton_repository`):

    triton/linear/config.pbtxt        the default configuration (what `model_config` renders)
    triton/linear/1/model.py          models/triton_model.py, byte for byte (a changed copy is stale)
    triton/linear/1/weights.npy       float32 [classes, features]

Server configurations (dynamic batching, instances, response cache) are not export-time choices:
serving/triton.py renders `model_config` again for each start into its own repository that links
to this version directory. The exported config names no environment (EXECUTION_ENV_PATH), so the
same repository also loads in the official Triton image, whose Python has NumPy.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.artifacts import MODEL_NAME, MODEL_VERSION
from models.linear import LinearSpec

MODEL_SOURCE = Path(__file__).with_name("triton_model.py")
MODEL_FILE = "model.py"
WEIGHTS_FILE = "weights.npy"  # the name models/triton_model.py loads
CONFIG_FILE = "config.pbtxt"
INPUT_NAME = "x"
DEFAULT_MAX_BATCH_SIZE = 1024  # the largest client batch (and merged batch) Triton accepts; batch-sweep's top


def model_config(
    *,
    classes: int,
    features: int,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    instances: int = 1,
    dynamic_batching: bool = False,
    max_queue_delay_us: int = 0,
    preferred_batch_sizes: Sequence[int] = (),
    response_cache: bool = False,
    execution_env: str | None = None,
) -> str:
    """config.pbtxt (protobuf text format of Triton's ModelConfig) for the linear model.

    `execution_env`: the Python environment the backend's stub activates (EXECUTION_ENV_PATH: a
    directory with bin/activate, e.g. a virtual environment), or None for the stub's own Python.
    """
    lines = [
        f'name: "{MODEL_NAME}"',
        'backend: "python"',
        f"max_batch_size: {max_batch_size}",
        f'input [ {{ name: "{INPUT_NAME}" data_type: TYPE_FP32 dims: [ {features} ] }} ]',
        "output [",
        '  { name: "class_ids" data_type: TYPE_INT64 dims: [ 1 ] },',
        f'  {{ name: "scores" data_type: TYPE_FP32 dims: [ {classes} ] }}',
        "]",
        f"instance_group [ {{ count: {instances} kind: KIND_CPU }} ]",
        f"version_policy: {{ specific: {{ versions: [ {MODEL_VERSION} ] }} }}",
    ]
    if dynamic_batching:
        preferred = ", ".join(str(size) for size in preferred_batch_sizes)
        body = f"max_queue_delay_microseconds: {max_queue_delay_us}"
        if preferred:
            body = f"preferred_batch_size: [ {preferred} ] " + body
        lines.append(f"dynamic_batching {{ {body} }}")
    if response_cache:
        lines.append("response_cache { enable: true }")
    if execution_env is not None:
        value = _quoted(execution_env)
        lines.append(f'parameters: {{ key: "EXECUTION_ENV_PATH" value: {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def export_repository(spec: LinearSpec, weights: np.ndarray, repository: str | Path) -> Path:
    """Write `repository/linear/` (config.pbtxt, 1/model.py, 1/weights.npy); returns the model dir.

    Written into a staging directory first and moved in place, so an interrupted export never
    leaves a half-written model that a server would load.
    """
    repository = Path(repository)
    model_dir = repository / MODEL_NAME
    staging = repository / f".{MODEL_NAME}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    version_dir = staging / str(MODEL_VERSION)
    version_dir.mkdir(parents=True)
    np.save(version_dir / WEIGHTS_FILE, np.ascontiguousarray(weights, dtype=np.float32))
    shutil.copyfile(MODEL_SOURCE, version_dir / MODEL_FILE)
    (staging / CONFIG_FILE).write_text(model_config(classes=spec.classes, features=spec.features))
    shutil.rmtree(model_dir, ignore_errors=True)
    staging.rename(model_dir)
    return model_dir


def repository_is_current(repository: Path) -> bool:
    """True when the repository holds this inferload's model.py (byte for byte), the config and weights.

    Why compare model.py: the repository holds a copy, so an export made before a change to
    models/triton_model.py would otherwise be served as it was (as a .mar holds a handler copy).
    """
    model_dir = Path(repository) / MODEL_NAME
    version_dir = model_dir / str(MODEL_VERSION)
    try:
        copied = (version_dir / MODEL_FILE).read_bytes()
    except OSError:
        return False
    return (
        copied == MODEL_SOURCE.read_bytes()
        and (version_dir / WEIGHTS_FILE).is_file()
        and (model_dir / CONFIG_FILE).is_file()
    )
