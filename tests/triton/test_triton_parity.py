"""Triton serves the exported model: the same class ids as the NumPy reference, over every protocol."""

from __future__ import annotations

import numpy as np
import pytest
from v2_client import class_ids

from models.linear import make_inputs, predict

pytestmark = pytest.mark.servers


@pytest.mark.parametrize("protocol", ["rest-json", "rest-binary", "grpc"])
def test_triton_answers_the_numpy_reference_s_class_ids(small_stack, small_artifacts, protocol: str) -> None:
    weights = small_artifacts.spec().weights()
    x = make_inputs(small_artifacts.spec().features, 24, seed=5)
    expected = predict(weights, x)
    assert len(set(expected.tolist())) > 5, "inputs that spread over the classes, or parity proves little"
    np.testing.assert_array_equal(class_ids(small_stack, protocol, x), expected)


def test_one_instance_requests_are_answered_like_rows_of_a_batch(small_stack, small_artifacts) -> None:
    x = make_inputs(small_artifacts.spec().features, 4, seed=9)
    one_by_one = np.concatenate([class_ids(small_stack, "rest-binary", x[i:i + 1]) for i in range(4)])
    np.testing.assert_array_equal(one_by_one, class_ids(small_stack, "grpc", x))
