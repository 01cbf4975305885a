"""The linear classifier as a Triton Python-backend model: copied into the repository as `1/model.py`.

Triton's Python backend runs this file in its stub process (`triton_python_backend_stub`), a Python
of its own that reads neither PYTHONPATH nor the caller's virtual environment: the server is started
with `EXECUTION_ENV_PATH` naming the environment (serving/triton.py), so NumPy is the one inferload
runs with. It must stay self-contained: only the standard library, NumPy and Triton's own
`triton_python_backend_utils` (the official Triton image has all three, no torch).

Tensors (config.pbtxt, written by models/triton_export.py):
  input  `x`         FP32  [batch, features]
  output `class_ids` INT64 [batch, 1]        arg-max class of each row (the parity reference's answer)
  output `scores`    FP32  [batch, classes]  the 64 scores, as TF Serving and TorchServe return them

`execute` gets every request Triton's dynamic batcher merged (or one, without it): their rows go
through one matrix product and the answers are split back per request. NumPy rather than torch: in
process at full size (64 x 262,144) it was the faster of the two at batch 1 and 8 here
(benchmarks/triton_model_framework.py), and the official Triton image has NumPy but no torch.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend

WEIGHTS_FILE = "weights.npy"
INPUT = "x"
OUTPUTS = ("class_ids", "scores")


class TritonPythonModel:
    """Triton's Python-backend entry points: initialize once per instance, execute per batch."""

    def initialize(self, args: dict[str, Any]) -> None:
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        weights = np.load(os.path.join(version_dir, WEIGHTS_FILE))
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        config = json.loads(args["model_config"])
        wanted = {output["name"] for output in config.get("output", [])}
        self.outputs = [name for name in OUTPUTS if name in wanted]
        classes, features = self.weights.shape
        pb_utils.Logger.log_info(f"linear model ready: {classes} classes x {features} features")

    def execute(self, requests: list[Any]) -> list[Any]:
        arrays = [pb_utils.get_input_tensor_by_name(request, INPUT).as_numpy() for request in requests]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        scores = np.ascontiguousarray((self.weights @ batch.T).T)  # (W x^T)^T: BLAS's fast layout
        class_ids = np.argmax(scores, axis=1).astype(np.int64)
        responses = []
        start = 0
        for array in arrays:
            stop = start + array.shape[0]
            values = {"class_ids": class_ids[start:stop].reshape(-1, 1), "scores": scores[start:stop]}
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(values[name])) for name in self.outputs]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start = stop
        return responses

    def finalize(self) -> None:
        del self.weights
