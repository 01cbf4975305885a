"""Request bodies carry exactly the inputs, in each server's wire format (no network needed)."""

from __future__ import annotations

import base64
import json

import numpy as np
import orjson
import pytest

from loadtest import PROTOCOLS, SERVERS, LoadSettings, build_pool, encode_body, make_inputs, measure_encoding
from loadtest._payloads import CONTENT_TYPES, write_payloads_json

FEATURES = 16


@pytest.fixture
def x() -> np.ndarray:
    return make_inputs(FEATURES, batch=3, count=1, seed=7)[0]


@pytest.mark.parametrize("server", ["tfserving", "torchserve"])  # Triton's V2 JSON: test_oip_encoding.py
def test_rest_json_round_trips_every_float32_exactly(server: str, x: np.ndarray) -> None:
    body = orjson.loads(encode_body(server, "rest-json", x))
    assert list(body) == ["instances"]
    np.testing.assert_array_equal(np.asarray(body["instances"], dtype=np.float32), x)


def test_tfserving_rest_binary_is_json_with_one_b64_string_per_instance(x: np.ndarray) -> None:
    body = json.loads(encode_body("tfserving", "rest-binary", x))
    assert body["signature_name"] == "predict_bytes"
    assert len(body["instances"]) == 3
    for row, instance in zip(x, body["instances"], strict=True):
        assert np.frombuffer(base64.b64decode(instance["b64"]), dtype="<f4").tolist() == row.tolist()


def test_torchserve_rest_binary_is_raw_little_endian_float32(x: np.ndarray) -> None:
    body = encode_body("torchserve", "rest-binary", x)
    assert len(body) == 3 * FEATURES * 4
    np.testing.assert_array_equal(np.frombuffer(body, dtype="<f4").reshape(3, FEATURES), x)


def test_tfserving_grpc_parses_with_the_real_tensorflow_serving_predict_request(x: np.ndarray) -> None:
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest.FromString(encode_body("tfserving", "grpc", x, "linear"))
    assert request.model_spec.name == "linear"
    assert request.model_spec.signature_name == "serving_default"
    tensor = request.inputs["x"]
    assert tensor.dtype == 1  # DT_FLOAT
    assert [d.size for d in tensor.tensor_shape.dim] == [3, FEATURES]
    assert len(tensor.float_val) == 0, "must use tensor_content bytes, never float_val"
    np.testing.assert_array_equal(np.frombuffer(tensor.tensor_content, dtype="<f4").reshape(3, FEATURES), x)


def test_torchserve_grpc_parses_as_predictions_request(x: np.ndarray) -> None:
    from inferload_protos import inference_pb2

    request = inference_pb2.PredictionsRequest.FromString(encode_body("torchserve", "grpc", x, "linear"))
    assert request.model_name == "linear"
    np.testing.assert_array_equal(np.frombuffer(request.input["data"], dtype="<f4").reshape(3, FEATURES), x)


@pytest.mark.parametrize(
    ("server", "protocol", "content_type"),
    [
        ("tfserving", "rest-json", "application/json"),
        ("tfserving", "rest-binary", "application/json"),  # TF Serving's REST takes JSON only
        ("torchserve", "rest-json", "application/json"),
        ("torchserve", "rest-binary", "application/octet-stream"),
        ("triton", "rest-json", "application/json"),
        ("triton", "rest-binary", "application/octet-stream"),  # the binary tensor extension
    ],
)
def test_content_types(server: str, protocol: str, content_type: str) -> None:
    assert CONTENT_TYPES[(server, protocol)] == content_type


@pytest.mark.parametrize(
    ("server", "protocol", "shape", "message"),
    [
        ("nginx", "grpc", (1, 4), "unknown server x protocol"),
        ("tfserving", "soap", (1, 4), "unknown server x protocol"),
        ("tfserving", "grpc", (4,), "2-D"),
    ],
)
def test_bad_encode_requests_say_what_is_wrong(
    server: str, protocol: str, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_body(server, protocol, np.zeros(shape, dtype=np.float32))


def test_inputs_are_seeded_and_distinct() -> None:
    first = make_inputs(8, batch=2, count=3, seed=1)
    again = make_inputs(8, batch=2, count=3, seed=1)
    other = make_inputs(8, batch=2, count=3, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], other[0])
    assert first[0].dtype == np.float32 and first[0].shape == (2, 8)


def test_pool_is_built_before_load_with_its_encode_times() -> None:
    settings = LoadSettings(
        server="torchserve", protocol="rest-binary", rate=1, duration_s=1, features=8, pool_size=5
    )
    pool = build_pool(settings)
    assert len(pool) == 5 and len(pool.encode_s) == 5
    assert len({bytes(b) for b in pool.bodies}) == 5
    assert all(len(b) == 8 * 4 for b in pool.bodies)


def test_measure_encoding_covers_every_server_protocol_and_batch(tmp_path) -> None:
    records = measure_encoding(features=FEATURES, batches=(1, 4), repeats=2)
    assert {(r.server, r.protocol, r.batch) for r in records} == {
        (s, p, b) for s in SERVERS for p in PROTOCOLS for b in (1, 4)
    }
    sizes = {(r.server, r.protocol, r.batch): r.body_bytes for r in records}
    assert sizes[("torchserve", "rest-binary", 4)] == 4 * FEATURES * 4
    assert sizes[("tfserving", "rest-json", 4)] > sizes[("tfserving", "grpc", 4)]
    assert all(r.encode_ms_median >= r.encode_ms_min >= 0 for r in records)
    document = json.loads(write_payloads_json(tmp_path / "payloads.json", records).read_text())
    assert document["schema"] == "inferload.payloads" and document["schema_version"] == 1
    assert len(document["encodings"]) == len(records)
