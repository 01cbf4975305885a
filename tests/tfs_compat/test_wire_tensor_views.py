"""gRPC requests' tensor_content is read as a view of the request bytes and the rest parsed without it:
the same arrays and message as decoding the whole request, with protobuf's rules for repeated map
keys, and the whole request parsed whenever the wire has anything the split cannot read exactly."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from serving.tfs_compat.tensor_proto import split_tensor_contents, tensor_from_proto

X = np.arange(12, dtype="<f4").reshape(3, 4)
Y = np.arange(5, dtype="<i8").reshape(1, 5)


def _request(**tensors: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "linear"
    request.model_spec.signature_name = "serving_default"
    request.output_filter.append("class_ids")
    for name, array in tensors.items():
        tensor = request.inputs[name]
        tensor.dtype = types_pb2.DT_FLOAT if array.dtype == np.float32 else types_pb2.DT_INT64
        for size in array.shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.tensor_content = array.tobytes()
    return request


def _decode(wire: bytes) -> dict[str, np.ndarray]:
    stripped, contents = split_tensor_contents(wire)
    message = predict_pb2.PredictRequest.FromString(stripped)
    assert all(not tensor.tensor_content for tensor in message.inputs.values())
    return {key: tensor_from_proto(key, t, contents.get(key)) for key, t in message.inputs.items()}


def _reference(wire: bytes) -> dict[str, np.ndarray]:
    message = predict_pb2.PredictRequest.FromString(wire)
    return {key: tensor_from_proto(key, tensor) for key, tensor in message.inputs.items()}


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(_request(x=X), id="one input"),
        pytest.param(_request(x=X, y=Y), id="two inputs"),
        pytest.param(_request(x=np.zeros((0, 4), "<f4")), id="empty tensor"),
        pytest.param(_request(x=np.random.default_rng(1).random((8, 262_144), dtype="<f4")), id="8 MiB"),
    ],
)
def test_views_decode_to_the_same_arrays_as_the_message(request_: predict_pb2.PredictRequest) -> None:
    wire = request_.SerializeToString()
    got, want = _decode(wire), _reference(wire)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype
        np.testing.assert_array_equal(got[key], want[key])


def test_the_array_is_a_view_of_the_request_bytes_not_a_copy() -> None:
    wire = _request(x=X).SerializeToString()
    array = _decode(wire)["x"]
    assert not array.flags.writeable
    assert np.shares_memory(array, np.frombuffer(wire, np.uint8))


def test_a_repeated_map_key_takes_the_last_entry_as_protobuf_does() -> None:
    wire = _request(x=X).SerializeToString() + _request(x=X * 2).SerializeToString()
    np.testing.assert_array_equal(_decode(wire)["x"], _reference(wire)["x"])
    np.testing.assert_array_equal(_decode(wire)["x"], X * 2)


def test_an_entry_without_content_falls_back_to_its_typed_values() -> None:
    request = _request(x=X)
    request.inputs["x"].ClearField("tensor_content")
    request.inputs["x"].float_val.extend(X.ravel().tolist())
    wire = request.SerializeToString()
    assert split_tensor_contents(wire) == (wire, {})
    np.testing.assert_array_equal(_decode(wire)["x"], X)


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(
            _request(x=X).SerializeToString()[:-3] + b"\x12\x05\x0a\x01x\x12\x00", id="value given twice"
        ),
        pytest.param(b"\x12\x80\x80\x80\x80\x10", id="length past the end"),
        pytest.param(b"\x13\x14", id="group"),
    ],
)
def test_wire_the_view_cannot_read_exactly_is_left_to_the_message(wire: bytes) -> None:
    assert split_tensor_contents(wire) == (wire, {})


def test_the_rest_of_the_request_survives_the_split() -> None:
    request = _request(x=X, y=Y)
    stripped, _ = split_tensor_contents(request.SerializeToString())
    message = predict_pb2.PredictRequest.FromString(stripped)
    for name in ("x", "y"):
        request.inputs[name].ClearField("tensor_content")
    assert message == request
