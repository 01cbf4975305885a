"""TensorProto decoding accepts every value form TF Serving accepts; encoding matches TF's own."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.tfs_compat.errors import ServingError
from serving.tfs_compat.tensor_proto import tensor_from_proto, tensor_to_proto

X = np.arange(6, dtype=np.float32).reshape(2, 3)


def _proto(**fields: object) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, **fields)  # type: ignore[arg-type]
    proto.tensor_shape.dim.add().size = 2
    proto.tensor_shape.dim.add().size = 3
    return proto


@pytest.mark.parametrize(
    "proto",
    [
        pytest.param(_proto(tensor_content=X.tobytes()), id="tensor_content"),
        pytest.param(_proto(float_val=X.ravel().tolist()), id="float_val"),
        pytest.param(tf.make_tensor_proto(X), id="tf.make_tensor_proto"),
    ],
)
def test_float_tensor_forms_decode_to_the_same_array(proto: tensor_pb2.TensorProto) -> None:
    np.testing.assert_array_equal(tensor_from_proto("x", proto), X)


def test_single_value_is_broadcast_like_tensorflow() -> None:
    np.testing.assert_array_equal(
        tensor_from_proto("x", _proto(float_val=[1.5])), np.full((2, 3), 1.5, np.float32)
    )


def test_string_val_decodes_to_bytes_objects() -> None:
    proto = tf.make_tensor_proto([b"ab", b"cd"])
    assert tensor_from_proto("x_bytes", proto).tolist() == [b"ab", b"cd"]


@pytest.mark.parametrize(
    ("proto", "message"),
    [
        (_proto(tensor_content=X.tobytes()[:-4]), "tensor_content has 20 bytes"),
        (_proto(float_val=[1.0, 2.0]), "needs 6 values"),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_COMPLEX64), "not supported"),
    ],
)
def test_inconsistent_tensors_are_invalid_argument(proto: tensor_pb2.TensorProto, message: str) -> None:
    with pytest.raises(ServingError, match=message) as info:
        tensor_from_proto("x", proto)
    assert info.value.http_status == 400


@pytest.mark.parametrize("array", [X, np.array([3, 1], dtype=np.int64)], ids=["float32", "int64"])
@pytest.mark.parametrize("as_content", [False, True], ids=["AsProtoField", "AsProtoTensorContent"])
def test_outputs_round_trip_through_tensorflow(array: np.ndarray, as_content: bool) -> None:
    proto = tensor_to_proto(array, as_content=as_content)
    assert bool(proto.tensor_content) == as_content
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
