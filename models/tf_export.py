"""Export the classifier as a TF SavedModel with the two signatures TF Serving is called with.

`serving_default` takes float32 rows (REST-JSON, gRPC tensor_content); `predict_bytes` takes each
instance as raw little-endian float32 bytes, because TF Serving's REST API carries binary data only as
base64 strings. Weights live in a tf.Variable, so they go to the variables checkpoint (fast to write)
rather than being inlined as a 64 MiB graph constant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.linear import LinearSpec


def build_module(spec: LinearSpec, weights: np.ndarray) -> Any:
    """A tf.Module whose `serving_default` and `predict_bytes` tf.functions are the signatures."""
    import tensorflow as tf

    if weights.shape != (spec.classes, spec.features):
        raise ValueError(f"weights have shape {weights.shape}, spec says {(spec.classes, spec.features)}")
    features = spec.features

    class LinearClassifier(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="linear")
            self.weights = tf.Variable(weights, trainable=False, name="weights", dtype=tf.float32)

        def _outputs(self, x: Any) -> dict[str, Any]:
            logits = tf.matmul(x, self.weights, transpose_b=True)
            return {"class_ids": tf.argmax(logits, axis=1, output_type=tf.int64), "scores": logits}

        @tf.function(input_signature=[tf.TensorSpec([None, features], tf.float32, name="x")])
        def serving_default(self, x: Any) -> dict[str, Any]:
            return self._outputs(x)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="x_bytes")])
        def predict_bytes(self, x_bytes: Any) -> dict[str, Any]:
            decoded = tf.io.decode_raw(x_bytes, tf.float32, little_endian=True)
            check = tf.debugging.assert_equal(
                tf.shape(decoded)[1],
                features,
                message=f"each x_bytes element must be {4 * features} bytes: "
                f"one instance of {features} little-endian float32 values",
            )
            with tf.control_dependencies([check]):  # fail with this message, not reshape's
                return self._outputs(tf.reshape(decoded, [-1, features]))

    return LinearClassifier()


def export_saved_model(spec: LinearSpec, weights: np.ndarray, version_dir: str | Path) -> Path:
    """Write the SavedModel into `version_dir` (TF Serving's base_path/<version>/ layout)."""
    import tensorflow as tf

    version_dir = Path(version_dir)
    module = build_module(spec, weights)
    signatures = {
        "serving_default": module.serving_default.get_concrete_function(),
        "predict_bytes": module.predict_bytes.get_concrete_function(),
    }
    version_dir.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(version_dir), signatures=signatures)
    return version_dir
