"""Every REST :predict form of TF Serving's api_rest.md returns the NumPy reference class ids."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest
import requests
from tfs_compat_server import RunningServer

pytestmark = pytest.mark.servers


def _b64(row: np.ndarray) -> dict[str, str]:
    return {"b64": base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode("ascii")}


def _post(server: RunningServer, body: Any, path: str = "/v1/models/linear:predict") -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    response = requests.post(server.rest_url + path, data=data, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


# Request builders: each takes the instances (float32 [n, D]) and returns a body of one documented form.
ROW_FORMS = {
    "instances as plain lists": lambda x: {"instances": x.tolist()},
    "instances as named objects": lambda x: {"instances": [{"x": row.tolist()} for row in x]},
    "explicit serving_default": lambda x: {"signature_name": "serving_default", "instances": x.tolist()},
    "b64 strings, plain": lambda x: {"signature_name": "predict_bytes", "instances": [_b64(r) for r in x]},
    "b64 strings, named": lambda x: {
        "signature_name": "predict_bytes",
        "instances": [{"x_bytes": _b64(r)} for r in x],
    },
}
COLUMNAR_FORMS = {
    "inputs as a tensor": lambda x: {"inputs": x.tolist()},
    "inputs as named tensors": lambda x: {"inputs": {"x": x.tolist()}},
    "b64 inputs, named": lambda x: {
        "signature_name": "predict_bytes",
        "inputs": {"x_bytes": [_b64(r) for r in x]},
    },
    "b64 inputs, plain": lambda x: {"signature_name": "predict_bytes", "inputs": [_b64(r) for r in x]},
}


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("form", list(ROW_FORMS))
def test_row_format_gives_one_prediction_object_per_instance(
    tfs_compat: RunningServer,
    inputs: np.ndarray,
    expected_ids: np.ndarray,
    weights: np.ndarray,
    form: str,
    batch: int,
) -> None:
    body = _post(tfs_compat, ROW_FORMS[form](inputs[:batch]))
    predictions = body["predictions"]
    assert list(body) == ["predictions"] and len(predictions) == batch
    assert [p["class_ids"] for p in predictions] == expected_ids[:batch].tolist()
    scores = np.array([p["scores"] for p in predictions], dtype=np.float32)
    np.testing.assert_allclose(scores, inputs[:batch] @ weights.T, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("form", list(COLUMNAR_FORMS))
def test_columnar_format_gives_one_tensor_per_output(
    tfs_compat: RunningServer, inputs: np.ndarray, expected_ids: np.ndarray, form: str, batch: int
) -> None:
    body = _post(tfs_compat, COLUMNAR_FORMS[form](inputs[:batch]))
    outputs = body["outputs"]
    assert set(outputs) == {"class_ids", "scores"}
    assert outputs["class_ids"] == expected_ids[:batch].tolist()
    assert np.array(outputs["scores"]).shape == (batch, 64)


@pytest.mark.parametrize("path", ["/v1/models/linear/versions/1:predict", "/V1/MODELS/linear:PREDICT"])
def test_versioned_and_case_insensitive_urls(
    tfs_compat: RunningServer, inputs: np.ndarray, expected_ids: np.ndarray, path: str
) -> None:
    body = _post(tfs_compat, {"instances": inputs[:2].tolist()}, path=path)
    assert [p["class_ids"] for p in body["predictions"]] == expected_ids[:2].tolist()


def test_integers_are_accepted_for_float_inputs(tfs_compat: RunningServer) -> None:
    """As in TF Serving, a JSON integer is a valid DT_FLOAT value (rapidjson reads it as a number)."""
    body = _post(tfs_compat, {"instances": [[1] * 1024]})
    assert isinstance(body["predictions"][0]["class_ids"], int)


def test_floats_are_written_as_json_numbers_with_a_decimal_point(tfs_compat: RunningServer) -> None:
    """TF Serving writes whole floats as 1.0, never 1 (json_tensor.cc WriteDecimal)."""
    raw = requests.post(
        tfs_compat.predict_url,
        data=b'{"instances": [[0]]}'.replace(b"[0]", b"[" + b",".join([b"0"] * 1024) + b"]"),
        timeout=30,
    ).content
    assert b'"scores":[0.0,' in raw


def test_large_bodies_are_accepted(tfs_compat: RunningServer, weights: np.ndarray) -> None:
    """Bodies far above aiohttp's 1 MiB default: 600 JSON instances (~12 MB) and 4,000 b64 ones (~22 MB)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4000, 1024), dtype=np.float32)
    json_body = orjson.dumps({"instances": x[:600].astype(np.float64)}, option=orjson.OPT_SERIALIZE_NUMPY)
    assert len(json_body) > 10_000_000
    got = [p["class_ids"] for p in _post(tfs_compat, json_body)["predictions"]]
    assert got == np.argmax(x[:600] @ weights.T, axis=1).tolist()
    b64_body = {"signature_name": "predict_bytes", "inputs": {"x_bytes": [_b64(r) for r in x]}}
    got = _post(tfs_compat, b64_body)["outputs"]["class_ids"]
    assert got == np.argmax(x @ weights.T, axis=1).tolist()
