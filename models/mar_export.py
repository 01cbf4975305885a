"""Build TorchServe's linear.mar: the handler file plus the weights as a plain .npy extra file.

The archive is written with torch-model-archiver's Python API in its `zip-store` format: a normal .mar
(zip) that TorchServe loads like `default`, but without deflating 64 MiB of random floats that do not
compress anyway (deflate costs seconds and saves nothing).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from models.artifacts import MODEL_NAME, MODEL_VERSION
from models.linear import LinearSpec

HANDLER_PATH = Path(__file__).with_name("torchserve_handler.py")
WEIGHTS_FILE = "weights.npy"
SPEC_FILE = "linear_spec.json"


def export_mar(
    spec: LinearSpec, weights: np.ndarray, model_store: str | Path, *, archive_format: str = "zip-store"
) -> Path:
    """Write `model_store/linear.mar` and return its path (overwrites an existing one)."""
    from model_archiver.model_archiver_config import ModelArchiverConfig
    from model_archiver.model_packaging import generate_model_archive

    model_store = Path(model_store)
    model_store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inferload-mar-") as staging_dir:
        staging = Path(staging_dir)
        handler = staging / HANDLER_PATH.name
        shutil.copyfile(HANDLER_PATH, handler)
        weights_path = staging / WEIGHTS_FILE
        np.save(weights_path, np.ascontiguousarray(weights, dtype=np.float32))
        spec_path = staging / SPEC_FILE
        spec_path.write_text(json.dumps(spec.to_dict()))
        config = ModelArchiverConfig(
            model_name=MODEL_NAME,
            handler=str(handler),
            version=str(MODEL_VERSION),
            extra_files=f"{weights_path},{spec_path}",
            export_path=str(model_store),
            archive_format=archive_format,  # type: ignore[arg-type]
            force=True,
        )
        # torch-model-archiver stages the files in gettempdir()/<model name>, which it deletes first:
        # one /tmp/linear for every export on the machine, so two at once (two test workers, two
        # users) broke each other's archive. Its staging goes inside ours instead.
        shared_tempdir, tempfile.tempdir = tempfile.tempdir, staging_dir
        try:
            generate_model_archive(config)
        finally:
            tempfile.tempdir = shared_tempdir
    mar = model_store / f"{MODEL_NAME}.mar"
    if not mar.exists():
        raise RuntimeError(f"torch-model-archiver did not write {mar}")
    return mar
