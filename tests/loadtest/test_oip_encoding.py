"""Open Inference Protocol (V2) bodies carry exactly the inputs, as Triton and every V2 server read them.

No network: the bodies are decoded here as the protocol specifies (JSON, the binary tensor extension's
header + raw bytes, ModelInferRequest with raw_input_contents); test_triton_protocols.py sends them to
a real Triton.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from inferload_protos import load as load_stub
from loadtest import FreshInputs, LoadSettings, _oip, encode_body, make_inputs
from loadtest._spec import grpc_method, rest_headers, rest_path

FEATURES = 16


@pytest.fixture
def x() -> np.ndarray:
    return make_inputs(FEATURES, batch=3, count=1, seed=7)[0]


def test_rest_json_is_one_fp32_input_with_its_shape_and_every_value_exactly(x: np.ndarray) -> None:
    body = orjson.loads(encode_body("triton", "rest-json", x))
    assert list(body) == ["inputs"]
    (tensor,) = body["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("x", "FP32", [3, FEATURES])
    np.testing.assert_array_equal(np.asarray(tensor["data"], dtype=np.float32).reshape(3, FEATURES), x)


def test_rest_binary_is_a_json_header_of_the_declared_length_then_raw_little_endian_float32(
    x: np.ndarray,
) -> None:
    body = encode_body("triton", "rest-binary", x)
    header_length = int(_oip.binary_headers(3, FEATURES)["Inference-Header-Content-Length"])
    header = orjson.loads(body[:header_length])
    (tensor,) = header["inputs"]
    assert tensor["parameters"] == {"binary_data_size": 3 * FEATURES * 4}
    assert {o["name"]: o["parameters"] for o in header["outputs"]} == {
        "class_ids": {"binary_data": True}, "scores": {"binary_data": True}}
    assert len(body) == header_length + 3 * FEATURES * 4
    np.testing.assert_array_equal(np.frombuffer(body[header_length:], dtype="<f4").reshape(3, FEATURES), x)


def test_grpc_is_a_model_infer_request_with_raw_input_contents_never_typed_contents(x: np.ndarray) -> None:
    pb2 = load_stub("open_inference_grpc_pb2")
    request = pb2.ModelInferRequest.FromString(encode_body("triton", "grpc", x, "linear"))
    assert request.model_name == "linear"
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("x", "FP32", [3, FEATURES])
    assert not tensor.HasField("contents"), "must use raw_input_contents, never fp32_contents"
    np.testing.assert_array_equal(
        np.frombuffer(request.raw_input_contents[0], dtype="<f4").reshape(3, FEATURES), x)


@pytest.mark.parametrize(
    ("service", "method"),
    [
        (None, "/inference.GRPCInferenceService/ModelInfer"),  # Triton, KServe, MLServer, OVMS
        (_oip.TORCHSERVE_GRPC_SERVICE,
         "/org.pytorch.serve.grpc.openinference.GRPCInferenceService/ModelInfer"),
    ],
)
def test_the_grpc_service_is_triton_s_unless_named(service: str | None, method: str) -> None:
    assert grpc_method("triton", service) == method


def test_rest_requests_go_to_the_model_s_infer_path_and_binary_ones_say_their_header_length() -> None:
    binary = LoadSettings(server="triton", protocol="rest-binary", rate=1, duration_s=1, features=8, batch=2)
    assert rest_path("triton", "linear") == "/v2/models/linear/infer"
    assert rest_headers(binary) == (("Inference-Header-Content-Length", str(len(_oip.binary_header(2, 8)))),)
    json_settings = binary.model_copy(update={"protocol": "rest-json"})
    assert rest_headers(json_settings) == ()


def test_a_grpc_service_is_refused_for_servers_with_a_grpc_api_of_their_own() -> None:
    with pytest.raises(ValueError, match="drop grpc_service"):
        LoadSettings(server="torchserve", protocol="grpc", rate=1, duration_s=1, grpc_service="x.Y")


@pytest.mark.parametrize("protocol", ["rest-json", "rest-binary", "grpc"])
def test_fresh_inputs_tag_the_first_value_and_keep_every_body_decodable(protocol: str) -> None:
    """A cache keyed on the body sees distinct V2 bodies; the server still reads FP32 [batch, features]."""
    bodies = [encode_body("triton", protocol, make_inputs(FEATURES, 2, 1, seed=s)[0]) for s in (1, 2)]
    fresh = FreshInputs(bodies, server="triton", protocol=protocol, batch=2, features=FEATURES, stream=3)
    made = [fresh.body(n) for n in range(6)]
    assert len(set(made)) == 6 and all(len(b) == len(bodies[n % 2]) for n, b in enumerate(made))
    for body in made:
        values = _decode(protocol, body)
        assert values.shape == (2, FEATURES) and np.isfinite(values).all()


def _decode(protocol: str, body: bytes) -> np.ndarray:
    if protocol == "rest-json":
        return np.asarray(orjson.loads(body)["inputs"][0]["data"], dtype=np.float32).reshape(2, FEATURES)
    if protocol == "rest-binary":
        header_length = len(_oip.binary_header(2, FEATURES))
        return np.frombuffer(body[header_length:], dtype="<f4").reshape(2, FEATURES)
    request = load_stub("open_inference_grpc_pb2").ModelInferRequest.FromString(body)
    return np.frombuffer(request.raw_input_contents[0], dtype="<f4").reshape(2, FEATURES)
