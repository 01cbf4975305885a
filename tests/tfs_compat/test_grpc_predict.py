"""gRPC Predict with the real tensorflow_serving.apis messages and with our TF-free wire subset."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tfs_compat_server import RunningServer

from inferload_protos import load

wire = load("tfserving_predict_pb2")  # the TF-free wire subset that load processes use

pytestmark = pytest.mark.servers

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


@pytest.fixture(scope="module")
def stub(tfs_compat: RunningServer) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    with grpc.insecure_channel(tfs_compat.grpc_target) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _request(
    x: np.ndarray, *, form: str = "tensor_content", signature: str = ""
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "linear"
    request.model_spec.signature_name = signature
    if form == "string_val":
        tensor = request.inputs["x_bytes"]
        tensor.dtype = types_pb2.DT_STRING
        tensor.tensor_shape.dim.add().size = x.shape[0]
        tensor.string_val.extend(row.astype("<f4").tobytes() for row in x)
        return request
    tensor = request.inputs["x"]
    tensor.dtype = types_pb2.DT_FLOAT
    for size in x.shape:
        tensor.tensor_shape.dim.add().size = size
    if form == "tensor_content":
        tensor.tensor_content = x.astype("<f4").tobytes()
    else:
        tensor.float_val.extend(x.ravel().tolist())
    return request


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize(
    ("form", "signature"),
    [("tensor_content", ""), ("float_val", "serving_default"), ("string_val", "predict_bytes")],
)
def test_predict_returns_reference_ids(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    inputs: np.ndarray,
    expected_ids: np.ndarray,
    weights: np.ndarray,
    form: str,
    signature: str,
    batch: int,
) -> None:
    response = stub.Predict(_request(inputs[:batch], form=form, signature=signature), timeout=30)
    assert (response.model_spec.name, response.model_spec.version.value) == ("linear", 1)
    assert response.model_spec.signature_name == (signature or "serving_default")
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["class_ids"]), expected_ids[:batch])
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["scores"]), inputs[:batch] @ weights.T, rtol=1e-4, atol=1e-3
    )


def test_outputs_use_typed_fields_like_tf_serving_default(
    stub: prediction_service_pb2_grpc.PredictionServiceStub, inputs: np.ndarray
) -> None:
    """TF Serving answers with Tensor::AsProtoField unless --enable_serialization_as_tensor_content."""
    outputs = stub.Predict(_request(inputs[:2]), timeout=30).outputs
    assert len(outputs["class_ids"].int64_val) == 2 and not outputs["class_ids"].tensor_content
    assert len(outputs["scores"].float_val) == 2 * 64
    assert [d.size for d in outputs["scores"].tensor_shape.dim] == [2, 64]


def test_output_filter_returns_only_the_named_outputs(
    stub: prediction_service_pb2_grpc.PredictionServiceStub, inputs: np.ndarray, expected_ids: np.ndarray
) -> None:
    request = _request(inputs)
    request.output_filter.append("class_ids")
    response = stub.Predict(request, timeout=30)
    assert list(response.outputs) == ["class_ids"]
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["class_ids"]), expected_ids)


def test_tf_free_wire_subset_round_trips(
    tfs_compat: RunningServer, inputs: np.ndarray, expected_ids: np.ndarray
) -> None:
    """Load processes encode with inferload_protos' TF-free subset: the same bytes on the wire."""
    request = wire.PredictRequest()
    request.model_spec.name = "linear"
    tensor = request.inputs["x"]
    tensor.dtype = wire.DT_FLOAT
    tensor.tensor_shape.dim.add().size = 5
    tensor.tensor_shape.dim.add().size = inputs.shape[1]
    tensor.tensor_content = inputs.astype("<f4").tobytes()
    with grpc.insecure_channel(tfs_compat.grpc_target) as channel:
        call = channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=wire.PredictRequest.SerializeToString,
            response_deserializer=wire.PredictResponse.FromString,
        )
        response = call(request, timeout=30)
    assert list(response.outputs["class_ids"].int64_val) == expected_ids.tolist()


def _with_model(
    request: predict_pb2.PredictRequest, name: str = "linear", version: int | None = None
) -> predict_pb2.PredictRequest:
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    return request


def _bad_requests(x: np.ndarray) -> list[tuple[str, predict_pb2.PredictRequest, grpc.StatusCode, str]]:
    wrong_width = _request(x[:, :10])
    truncated = _request(x)
    truncated.inputs["x"].tensor_content = truncated.inputs["x"].tensor_content[:-3]
    missing = _request(x)
    missing.inputs["y"].CopyFrom(missing.inputs.pop("x"))
    extra = _request(x)
    extra.inputs["y"].CopyFrom(extra.inputs["x"])
    wrong_dtype = _request(x)
    wrong_dtype.inputs["x"].dtype = types_pb2.DT_INT32
    wrong_dtype.inputs["x"].tensor_content = x.astype(np.int32).tobytes()
    bad_filter = _request(x)
    bad_filter.output_filter.append("probabilities")
    short_bytes = _request(x, form="string_val", signature="predict_bytes")
    short_bytes.inputs["x_bytes"].string_val[0] = b"\0" * 8
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    return [
        (
            "unknown model",
            _with_model(_request(x), "other"),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(other)",
        ),
        (
            "unknown version",
            _with_model(_request(x), version=4),
            grpc.StatusCode.NOT_FOUND,
            "Specific(linear, 4)",
        ),
        (
            "unknown signature",
            _request(x, signature="nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        ("wrong width", wrong_width, invalid, "expects [?,1024]"),
        ("truncated tensor_content", truncated, invalid, "tensor_content has"),
        ("missing input", missing, invalid, "Missing but required: {x}"),
        ("extra input", extra, invalid, "Sent extra: {y}"),
        ("wrong dtype", wrong_dtype, invalid, "to be float but int32 is provided"),
        (
            "unknown output in filter",
            bad_filter,
            invalid,
            "output tensor alias not found in signature: probabilities",
        ),
        ("short binary instance", short_bytes, invalid, "DecodeRaw"),
    ]


def test_bad_requests_get_status_codes_and_server_keeps_serving(
    stub: prediction_service_pb2_grpc.PredictionServiceStub, inputs: np.ndarray, expected_ids: np.ndarray
) -> None:
    for name, request, code, message in _bad_requests(inputs[:2]):
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, timeout=30)
        assert (name, info.value.code()) == (name, code)
        assert message in info.value.details(), name
        response = stub.Predict(_request(inputs[:1]), timeout=30)
        assert list(response.outputs["class_ids"].int64_val) == [expected_ids[0]], name
