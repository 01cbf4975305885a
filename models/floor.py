"""The model compute floor: in-process predict time with no server, per framework and batch size.

Reports subtract it from end-to-end latency to split time into model compute and everything else
(encode, queueing, transport, server overhead). Every framework runs the same weights on the same
inputs, and its class ids are checked against the NumPy reference before any timing counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from pydantic import Field

from inferload_formats import Document, strict_fields
from models.artifacts import ArtifactLayout
from models.linear import LinearSpec, make_inputs, predict

FLOOR_SCHEMA: Final = "inferload.floor"
FLOOR_SCHEMA_VERSION = 1
FRAMEWORKS = ("numpy", "tensorflow", "torch")
Predictor = Callable[[np.ndarray], np.ndarray]


@strict_fields
@dataclass(frozen=True)
class FloorRecord:
    """Timing of `n` in-process predict calls (inputs in, class ids out as NumPy) at one batch size:
    one entry of floor.json (`inferload.floor` v1, written by `write_floor`, read by `read_floor`)."""

    framework: str
    batch: int
    median_ms: float
    p90_ms: float
    n: int


def _numpy_predictor(weights: np.ndarray, layout: ArtifactLayout | None) -> Predictor:
    return lambda x: predict(weights, x)


def _tensorflow_predictor(weights: np.ndarray, layout: ArtifactLayout | None) -> Predictor:
    """The exported SavedModel's serving_default signature (built in memory when there is no export)."""
    import tensorflow as tf

    if layout is not None:
        model = tf.saved_model.load(str(layout.tf_version_dir))
        signature = model.signatures["serving_default"]
    else:
        from models.tf_export import build_module

        spec = LinearSpec(classes=weights.shape[0], features=weights.shape[1])
        model = build_module(spec, weights)
        signature = model.serving_default  # a bound tf.function holds its module weakly: keep `model`

    def run(x: np.ndarray) -> np.ndarray:
        return signature(x=tf.constant(x))["class_ids"].numpy()

    run.model = model  # type: ignore[attr-defined]
    return run


def _torch_predictor(weights: np.ndarray, layout: ArtifactLayout | None) -> Predictor:
    import torch

    weights_t = torch.from_numpy(weights).T  # what the TorchServe handler multiplies with

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.argmax(torch.matmul(torch.from_numpy(x), weights_t), dim=1).numpy()

    return run


PREDICTORS: dict[str, Callable[[np.ndarray, ArtifactLayout | None], Predictor]] = {
    "numpy": _numpy_predictor,
    "tensorflow": _tensorflow_predictor,
    "torch": _torch_predictor,
}


def _time_calls(fn: Predictor, x: np.ndarray, repeats: int, budget_s: float) -> list[float]:
    """Call fn(x) up to `repeats` times (at least 3, fewer when the budget runs out); ms per call."""
    times_ms: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times_ms) < repeats:
        started = time.perf_counter_ns()
        fn(x)
        times_ms.append((time.perf_counter_ns() - started) / 1e6)
        if len(times_ms) >= 3 and time.perf_counter() > deadline:
            break
    return times_ms


def measure_floor(
    source: LinearSpec | ArtifactLayout,
    batches: Sequence[int] = (1,),
    repeats: int = 50,
    *,
    frameworks: Sequence[str] = FRAMEWORKS,
    warmup: int = 3,
    budget_s: float = 10.0,
    progress: Callable[[FloorRecord], None] | None = None,
) -> list[FloorRecord]:
    """Time predict per framework × batch size on the same weights and inputs.

    With an ArtifactLayout, TensorFlow runs the exported SavedModel; with a LinearSpec it runs the
    same module built in memory. `budget_s` caps the timed calls per cell (big batches of the
    full-size model take seconds each).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if not batches or any(batch < 1 for batch in batches):
        raise ValueError(f"batch sizes must be positive integers, got {list(batches)}")
    unknown = sorted(set(frameworks) - set(PREDICTORS))
    if unknown:
        raise ValueError(f"unknown framework(s) {unknown}: choose from {list(PREDICTORS)}")
    layout = source.check() if isinstance(source, ArtifactLayout) else None
    spec = source.spec() if isinstance(source, ArtifactLayout) else source
    weights = spec.weights()
    inputs = make_inputs(spec.features, max(batches), seed=spec.seed + 1)
    records: list[FloorRecord] = []
    for framework in frameworks:
        fn = PREDICTORS[framework](weights, layout)
        for batch in batches:
            x = np.ascontiguousarray(inputs[:batch])
            got = np.asarray(fn(x))
            if not np.array_equal(got, predict(weights, x)):
                raise RuntimeError(f"{framework} disagrees with the NumPy reference at batch {batch}")
            for _ in range(max(0, warmup - 1)):
                fn(x)
            times_ms = _time_calls(fn, x, repeats, budget_s)
            record = FloorRecord(
                framework=framework,
                batch=batch,
                # nearest rank, inferload's one percentile method (loadtest._percentiles; numpy's name
                # for it is inverted_cdf): models/ imports no other package of ours
                median_ms=float(np.percentile(times_ms, 50, method="inverted_cdf")),
                p90_ms=float(np.percentile(times_ms, 90, method="inverted_cdf")),
                n=len(times_ms),
            )
            records.append(record)
            if progress is not None:
                progress(record)
    return records


class FloorDocument(Document):
    """floor.json (`inferload.floor` v1): the model's spec, then one entry per framework x batch."""

    REDO = "measure it again with this inferload (`inferload floor`)"

    schema_: Literal["inferload.floor"] = Field(default=FLOOR_SCHEMA, alias="schema")
    schema_version: int = FLOOR_SCHEMA_VERSION
    model: dict[str, Any] | None  # LinearSpec.to_dict(), or None when not given
    records: list[FloorRecord]


def write_floor(records: Sequence[FloorRecord], path: str | Path, *, spec: LinearSpec | None = None) -> Path:
    """Write floor.json: a versioned header with the model spec, then one entry per record."""
    model = spec.to_dict() if spec is not None else None
    return FloorDocument(model=model, records=list(records)).write(path)


def read_floor(path: str | Path) -> list[FloorRecord]:
    """Read floor.json written by `write_floor`; `inferload_formats.SchemaError` (naming the file, the
    version it says and the one read here) for another schema or version, or a bad field."""
    return FloorDocument.read(path).records
