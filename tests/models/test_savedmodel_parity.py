"""Both SavedModel signatures give the NumPy reference's class ids and scores."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.artifacts import ArtifactLayout
from models.linear import make_inputs, predict, scores


@pytest.fixture(scope="module")
def saved_model(small_artifacts: ArtifactLayout):
    return tf.saved_model.load(str(small_artifacts.tf_version_dir))


def test_saved_model_has_both_signatures(saved_model) -> None:
    assert set(saved_model.signatures) == {"serving_default", "predict_bytes"}


def test_signature_inputs_and_outputs_follow_the_contract(saved_model) -> None:
    default = saved_model.signatures["serving_default"]
    assert default.structured_input_signature[1]["x"].dtype == tf.float32
    assert default.structured_input_signature[1]["x"].shape.as_list() == [None, 1024]
    assert saved_model.signatures["predict_bytes"].structured_input_signature[1]["x_bytes"].dtype == tf.string
    assert set(default.structured_outputs) == {"class_ids", "scores"}
    assert default.structured_outputs["class_ids"].dtype == tf.int64


@pytest.mark.parametrize("batch", [1, 7])
def test_serving_default_matches_the_reference(saved_model, small_weights: np.ndarray, batch: int) -> None:
    x = make_inputs(1024, batch, seed=batch)
    out = saved_model.signatures["serving_default"](x=tf.constant(x))
    assert out["class_ids"].numpy().tolist() == predict(small_weights, x).tolist()
    np.testing.assert_allclose(out["scores"].numpy(), scores(small_weights, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7])
def test_predict_bytes_matches_the_reference(saved_model, small_weights: np.ndarray, batch: int) -> None:
    x = make_inputs(1024, batch, seed=batch)
    raw = tf.constant([row.astype("<f4").tobytes() for row in x])
    out = saved_model.signatures["predict_bytes"](x_bytes=raw)
    assert out["class_ids"].numpy().tolist() == predict(small_weights, x).tolist()
    np.testing.assert_allclose(out["scores"].numpy(), scores(small_weights, x), rtol=1e-4, atol=1e-5)


def test_predict_bytes_names_the_instance_size_on_a_wrong_length(saved_model) -> None:
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be 4096 bytes"):
        saved_model.signatures["predict_bytes"](x_bytes=tf.constant([b"\0" * 4092]))
