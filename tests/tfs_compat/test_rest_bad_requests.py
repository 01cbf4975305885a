"""Every malformed REST request gets TF Serving's {"error": ...} and a 4xx; the server keeps serving."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import requests
from tfs_compat_server import RunningServer

pytestmark = pytest.mark.servers

ROW = "[" + ",".join(["0.5"] * 1024) + "]"
THREE_BYTES = base64.b64encode(b"abc").decode()

# (name, path, body, HTTP status, a part of the error message)
BAD_REQUESTS = [
    ("empty body", ":predict", "", 400, "JSON Parse error: The document is empty"),
    ("malformed JSON", ":predict", '{"instances": [[1.0,', 400, "JSON Parse error"),
    ("not an object", ":predict", "[1, 2]", 400, "Is not object"),
    ("neither key", ":predict", '{"rows": [[1.0]]}', 400, "Missing 'inputs' or 'instances' key"),
    ("both keys", ":predict", f'{{"instances": [{ROW}], "inputs": [{ROW}]}}', 400, "expecting only one of"),
    (
        "instances not a list",
        ":predict",
        '{"instances": 3}',
        400,
        "Expecting 'instances' to be an list/array",
    ),
    ("no instances", ":predict", '{"instances": []}', 400, "No values in 'instances' array"),
    ("wrong width", ":predict", '{"instances": [[1.0, 2.0]]}', 400, "expects [?,1024]"),
    ("wrong rank", ":predict", f'{{"instances": [[{ROW}]]}}', 400, "expects [?,1024]"),
    (
        "ragged instances",
        ":predict",
        f'{{"instances": [{ROW}, [1.0]]}}',
        400,
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting tensor size: 1024 but got: 1",
    ),
    (
        "string for float",
        ":predict",
        '{"instances": [["a"]]}',
        400,
        'JSON Value: "a" Type: String is not of expected type: float',
    ),
    (
        "null for float",
        ":predict",
        '{"instances": [[null]]}',
        400,
        "Type: Null is not of expected type: float",
    ),
    (
        "bool for float",
        ":predict",
        '{"instances": [[true]]}',
        400,
        "JSON Value: true Type: True is not of expected type: float",  # RapidJSON's type names
    ),
    (
        "object for float",
        ":predict",
        '{"inputs": {"x": {"b64": "AAAA"}}}',
        400,
        "Type: Object is not of expected type: float",
    ),
    (
        "unknown named input",
        ":predict",
        f'{{"instances": [{{"y": {ROW}}}]}}',
        400,
        "does not have named input: y",
    ),
    (
        "missing named input",
        ":predict",
        f'{{"inputs": {{"y": [{ROW}]}}}}',
        400,
        "Missing named input: x in 'inputs' object.",
    ),
    (
        "mixed objects and lists",
        ":predict",
        f'{{"instances": [{{"x": {ROW}}}, {ROW}]}}',
        400,
        "Expecting object but got list at item 1",
    ),
    (
        "signature not a string",
        ":predict",
        '{"signature_name": 3, "instances": [[1.0]]}',
        400,
        "'signature_name' key must be a string value.",
    ),
    (
        "unknown signature",
        ":predict",
        f'{{"signature_name": "nope", "instances": [{ROW}]}}',
        400,
        'Serving signature name: "nope" not found in signature def',
    ),
    (
        "bad base64",
        ":predict",
        '{"signature_name": "predict_bytes", "instances": [{"b64": "%%%"}]}',
        400,
        "Unable to base64 decode",
    ),
    (
        "truncated binary instance",
        ":predict",
        f'{{"signature_name": "predict_bytes", "instances": [{{"b64": "{THREE_BYTES}"}}]}}',
        400,
        "Input to DecodeRaw has length 3 that is not a multiple of 4",
    ),
    (
        "short binary instance",
        ":predict",
        '{"signature_name": "predict_bytes", "instances": [{"b64": "AAAAAA=="}]}',
        400,
        "4096 bytes",
    ),
    (
        "float for bytes",
        ":predict",
        '{"signature_name": "predict_bytes", "instances": [1.0]}',
        400,
        "is not of expected type: string",
    ),
    (
        "unknown model",
        "/../other:predict",
        f'{{"instances": [{ROW}]}}',
        404,
        "Servable not found for request: Latest(other)",
    ),
    (
        "unknown version",
        "/versions/3:predict",
        f'{{"instances": [{ROW}]}}',
        404,
        "Servable not found for request: Specific(linear, 3)",
    ),
    ("classify is not served", ":classify", '{"examples": []}', 501, ":predict only"),
]


def _url(server: RunningServer, suffix: str) -> str:
    if suffix.startswith("/../"):
        return f"{server.rest_url}/v1/models/{suffix[4:]}"
    return f"{server.rest_url}/v1/models/linear{suffix}"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_gets_tf_serving_error_and_server_keeps_serving(
    tfs_compat: RunningServer,
    inputs: np.ndarray,
    expected_ids: np.ndarray,
    path: str,
    body: str,
    status: int,
    message: str,
) -> None:
    response = requests.post(_url(tfs_compat, path), data=body.encode(), timeout=30)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()
    assert list(error) == ["error"] and message in error["error"]

    good = requests.post(tfs_compat.predict_url, json={"instances": inputs[:1].tolist()}, timeout=30)
    assert good.status_code == 200 and good.json()["predictions"][0]["class_ids"] == expected_ids[0]


def test_wrong_content_type_is_still_parsed_as_json(tfs_compat: RunningServer, inputs: np.ndarray) -> None:
    """TF Serving ignores Content-Type and parses the body as JSON; so do we."""
    body = '{"instances": ' + str(inputs[:1].tolist()) + "}"
    response = requests.post(
        tfs_compat.predict_url, data=body, headers={"Content-Type": "application/octet-stream"}, timeout=30
    )
    assert response.status_code == 200


def test_raw_binary_body_is_a_json_parse_error(tfs_compat: RunningServer, inputs: np.ndarray) -> None:
    response = requests.post(tfs_compat.predict_url, data=inputs[:1].tobytes(), timeout=30)
    assert response.status_code == 400 and "JSON Parse error" in response.json()["error"]


def test_prometheus_metrics_count_requests(tfs_compat: RunningServer, inputs: np.ndarray) -> None:
    requests.post(tfs_compat.predict_url, json={"instances": inputs[:1].tolist()}, timeout=30)
    text = requests.get(f"{tfs_compat.rest_url}/monitoring/prometheus/metrics", timeout=10).text
    # TF Serving's labels (servables/tensorflow/util.cc): model and status only; latency per API.
    assert ':tensorflow:serving:request_count_total{model_name="linear",status="OK"}' in text
    latency = ':tensorflow:serving:request_latency_count{API="predict",entrypoint="REST",model_name="linear"}'
    assert latency in text
