"""A REST predict whose instances hold NaN or Infinity is answered as TF Serving answers it: TF Serving
parses with RapidJSON's kParseNanAndInfFlag (NaN, Infinity, -Infinity, Inf) and writes non-finite
outputs as the bare tokens NaN, Infinity and -Infinity (json_tensor.cc WriteDecimal), with HTTP 200."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import requests
from tfs_compat_server import RunningServer

from models.linear import predict

pytestmark = pytest.mark.servers


def _instances_text(rows: list[list[str]]) -> bytes:
    """A request body written by hand: orjson and json.dumps(allow_nan=False) cannot write these tokens."""
    return ('{"instances": [' + ", ".join("[" + ", ".join(row) + "]" for row in rows) + "]}").encode()


def _post(server: RunningServer, body: bytes) -> tuple[requests.Response, dict]:
    response = requests.post(server.predict_url, data=body, timeout=30)
    assert response.status_code == 200, response.text
    return response, json.loads(response.text)  # the stdlib reads NaN/Infinity, as TF Serving's clients do


def test_nan_in_an_instance_gives_nan_scores_and_a_class_id(tfs_compat: RunningServer) -> None:
    row = ["NaN"] + ["0.5"] * 1023
    response, body = _post(tfs_compat, _instances_text([row]))
    (prediction,) = body["predictions"]
    assert all(math.isnan(score) for score in prediction["scores"])  # NaN times any weight is NaN
    assert isinstance(prediction["class_ids"], int) and 0 <= prediction["class_ids"] < 64
    assert b"NaN" in response.content and b"null" not in response.content


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "Inf", "-Inf"])
def test_infinity_in_an_instance_gives_infinite_scores_and_the_reference_class(
    tfs_compat: RunningServer, weights: np.ndarray, token: str
) -> None:
    value = math.inf if not token.startswith("-") else -math.inf
    x = np.full((1, 1024), 0.25, dtype=np.float32)
    x[0, 7] = value
    response, body = _post(tfs_compat, _instances_text([["0.25"] * 7 + [token] + ["0.25"] * 1016]))
    (prediction,) = body["predictions"]
    assert all(math.isinf(score) for score in prediction["scores"])  # one infinite feature, nonzero weights
    assert np.sign(prediction["scores"]).tolist() == np.sign(value * weights[:, 7]).tolist()
    assert prediction["class_ids"] == int(predict(weights, x)[0])
    assert b"Infinity" in response.content


def test_a_finite_instance_beside_a_non_finite_one_is_answered_normally(
    tfs_compat: RunningServer, inputs: np.ndarray, expected_ids: np.ndarray
) -> None:
    finite = [repr(float(v)) for v in inputs[0]]
    _, body = _post(tfs_compat, _instances_text([finite, ["NaN"] * 1024]))
    first, second = body["predictions"]
    assert first["class_ids"] == int(expected_ids[0])
    assert all(math.isfinite(score) for score in first["scores"])
    assert all(math.isnan(score) for score in second["scores"])


def test_columnar_inputs_with_nan_give_nan_outputs(tfs_compat: RunningServer) -> None:
    body_text = b'{"inputs": [[' + b", ".join([b"NaN"] + [b"1.0"] * 1023) + b"]]}"
    _, body = _post(tfs_compat, body_text)
    assert len(body["outputs"]["class_ids"]) == 1
    assert all(math.isnan(score) for score in body["outputs"]["scores"][0])
