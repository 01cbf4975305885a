"""The NumPy reference: deterministic weights, hand-checkable predictions, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from models.linear import LinearSpec, make_inputs, predict, scores


def test_weights_are_deterministic_per_seed() -> None:
    spec = LinearSpec(classes=8, features=32, seed=3)
    assert np.array_equal(spec.weights(), LinearSpec(classes=8, features=32, seed=3).weights())


def test_weights_differ_across_seeds() -> None:
    assert not np.array_equal(LinearSpec(8, 32, seed=0).weights(), LinearSpec(8, 32, seed=1).weights())


def test_weights_have_the_spec_shape_and_dtype() -> None:
    weights = LinearSpec(classes=5, features=7).weights()
    assert weights.shape == (5, 7)
    assert weights.dtype == np.float32


def test_default_spec_is_the_full_size_model() -> None:
    spec = LinearSpec()
    assert (spec.classes, spec.features, spec.seed) == (64, 262_144, 0)
    assert spec.weight_bytes == 64 * 2**20


def test_predict_matches_a_hand_worked_example() -> None:
    """W rows: class 0 = (1, 0), class 1 = (0, 1), class 2 = (-1, -1).
    x = (2, 1)  -> scores (2, 1, -3)   -> class 0
    x = (0, 3)  -> scores (0, 3, -3)   -> class 1
    x = (-1,-2) -> scores (-1, -2, 3)  -> class 2
    """
    weights = np.array([[1, 0], [0, 1], [-1, -1]], dtype=np.float32)
    x = np.array([[2, 1], [0, 3], [-1, -2]], dtype=np.float32)
    assert scores(weights, x).tolist() == [[2, 1, -3], [0, 3, -3], [-1, -2, 3]]
    result = predict(weights, x)
    assert result.tolist() == [0, 1, 2]
    assert result.dtype == np.int64


def test_predict_accepts_a_single_instance_as_a_vector() -> None:
    weights = np.array([[1, 0], [0, 1]], dtype=np.float32)
    assert predict(weights, np.array([0.0, 5.0])).tolist() == [1]


def test_predict_names_the_expected_shape_on_a_feature_mismatch() -> None:
    weights = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\[batch, 4\]"):
        predict(weights, np.zeros((2, 5), dtype=np.float32))


def test_make_inputs_is_seeded_float32() -> None:
    a = make_inputs(16, 3, seed=9)
    assert a.shape == (3, 16) and a.dtype == np.float32
    assert np.array_equal(a, make_inputs(16, 3, seed=9))
    assert not np.array_equal(a, make_inputs(16, 3, seed=10))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": 0}, "classes must be a positive integer"),
        ({"features": -5}, "features must be a positive integer"),
        ({"features": 2.5}, "features must be a positive integer"),
        ({"classes": True}, "classes must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_spec_rejects_bad_dimensions_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinearSpec(**kwargs)


def test_spec_round_trips_through_a_dict() -> None:
    spec = LinearSpec(classes=3, features=9, seed=4)
    assert LinearSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="lacks features"):
        LinearSpec.from_dict({"classes": 3, "seed": 0})
