"""`export_all`: the one call that makes every artifact the servers need, and skips work already done.

model.json is written last: it marks a complete export, and records the spec and the versions of the
libraries that wrote the artifacts (reports quote them).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from inferload_formats import SchemaError
from inferload_formats.versions import installed_versions
from models.artifacts import MODEL_NAME, ArtifactLayout, ModelJson
from models.linear import LinearSpec

VERSIONED_PACKAGES = ("tensorflow-cpu", "tensorflow", "torch", "torchserve", "torch-model-archiver", "numpy")


def exporter_versions() -> dict[str, str]:
    """Installed versions of the libraries that write or serve the artifacts (without importing them)."""
    return installed_versions(VERSIONED_PACKAGES, python=False)


@contextmanager
def _step(message: str) -> Iterator[None]:
    print(f"export: {message} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    yield
    print(f"export: {message}: done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def handler_digest() -> str:
    """sha256 of the TorchServe handler source: a .mar packed with an older handler is stale."""
    from models.mar_export import HANDLER_PATH

    return hashlib.sha256(HANDLER_PATH.read_bytes()).hexdigest()


def is_current(layout: ArtifactLayout, spec: LinearSpec) -> bool:
    """True when model.json names this spec, every artifact is on disk, the .mar holds this handler and
    the Triton repository this model.py.

    Why the handler digest: the .mar copies the handler, so an export made before a handler change
    (say, a new describe_handle) would otherwise be reused and fail at run time; the Triton
    repository likewise holds a copy of models/triton_model.py, and an export from before Triton
    existed has no repository at all.
    """
    from models.triton_export import repository_is_current

    if not layout.exists():
        return False
    try:
        recorded = layout.read_model_json()
    except (SchemaError, OSError):  # another format or version: export again
        return False
    return (recorded.spec == spec and recorded.handler_sha256 == handler_digest()
            and repository_is_current(layout.triton_repository))


def export_all(spec: LinearSpec, out: str | Path, force: bool = False) -> ArtifactLayout:
    """Write model.json, the SavedModel, linear.mar and the Triton repository under `out`; skip if already
    there for this spec."""
    from models.mar_export import export_mar
    from models.tf_export import export_saved_model
    from models.triton_export import export_repository

    layout = ArtifactLayout(Path(out))
    if not force and is_current(layout, spec):
        print(
            f"export: {layout.root} already holds {_describe(spec)}; skipping (use --force to redo)",
            file=sys.stderr,
            flush=True,
        )
        return layout
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.model_json.unlink(missing_ok=True)  # an interrupted export must not look complete
    with _step(f"weights for {_describe(spec)}"):
        weights = spec.weights()
    with _step(f"SavedModel -> {layout.tf_version_dir}"):
        staging = layout.tf_base_path / f".{layout.tf_version_dir.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        export_saved_model(spec, weights, staging)
        shutil.rmtree(layout.tf_version_dir, ignore_errors=True)
        staging.rename(layout.tf_version_dir)
    with _step(f"TorchServe archive -> {layout.mar}"):
        export_mar(spec, weights, layout.model_store)
    with _step(f"Triton model repository -> {layout.triton_model_dir}"):
        export_repository(spec, weights, layout.triton_repository)
    ModelJson(
        name=MODEL_NAME,
        classes=spec.classes,
        features=spec.features,
        seed=spec.seed,
        versions=exporter_versions(),
        handler_sha256=handler_digest(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    ).write(layout.model_json)
    print(f"export: wrote {layout.root}", file=sys.stderr, flush=True)
    return layout


def _describe(spec: LinearSpec) -> str:
    return f"{spec.classes} x {spec.features} (seed {spec.seed}, {spec.weight_bytes / 2**20:.1f} MiB)"
