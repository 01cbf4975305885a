"""The TorchServe handler, called in-process with batches built the way TorchServe's worker builds them.

Every request form (decoded JSON, JSON bytes, raw float32, a multipart file upload of raw float32, gRPC
bytes) gives the reference class ids;
a bad request gets its own 4xx status and error body while the rest of its batch still succeeds.
"""

from __future__ import annotations

import json
import re

import numpy as np
import orjson
import pytest
from torchserve_batch import Request, grpc, http_binary, http_json, make_context, prepare
from ts.utils.util import PredictionException

from models.linear import make_inputs, predict, scores

FEATURES = 1024


def call(handler, mar_dir, requests: list[Request]):
    context = make_context(mar_dir, batch_size=len(requests))
    data = prepare(context, requests)
    responses = handler.handle(data, context)
    assert len(responses) == len(requests)
    statuses = [context.get_response_status(idx)[0] for idx in range(len(requests))]
    return [json.loads(body) for body in responses], statuses, context


def instances(batch: int, seed: int) -> np.ndarray:
    return make_inputs(FEATURES, batch, seed=seed)


FORMS = {
    "json dict (decoded by TorchServe)": lambda x: http_json({"instances": x.tolist()}),
    "json 'inputs' key": lambda x: http_json({"inputs": x.tolist()}),
    "json bare list": lambda x: http_json(x.tolist()),
    "json bytes (not decoded)": lambda x: Request(bytearray(orjson.dumps({"instances": x.tolist()}))),
    "json str": lambda x: Request(json.dumps({"instances": x.tolist()}), "text/json"),
    "raw octet-stream": lambda x: http_binary(x.astype("<f4").tobytes()),
    # a file uploaded as form data, perf_analyzer's TorchServe input: TorchServe hands over the part's bytes
    "multipart file upload": lambda x: Request(bytearray(x.astype("<f4").tobytes()),
                                               "multipart/form-data; boundary=inferload"),
    "grpc data bytes": lambda x: grpc(x.astype("<f4").tobytes()),
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("batch", [1, 7])
def test_every_request_form_matches_the_reference(
    handler, mar_dir, small_weights, form: str, batch: int
) -> None:
    x = instances(batch, seed=batch)
    [body], [status], _ = call(handler, mar_dir, [FORMS[form](x)])
    assert status == 200
    assert body["class_ids"] == predict(small_weights, x).tolist()
    np.testing.assert_allclose(np.array(body["scores"]), scores(small_weights, x), rtol=1e-4, atol=1e-5)


def test_a_server_side_batch_of_mixed_requests_is_split_back_per_request(
    handler, mar_dir, small_weights
) -> None:
    xs = [instances(n, seed=10 + n) for n in (1, 3, 2, 1)]
    forms = [
        "json dict (decoded by TorchServe)",
        "raw octet-stream",
        "grpc data bytes",
        "json bytes (not decoded)",
    ]
    bodies, statuses, context = call(handler, mar_dir, [FORMS[f](x) for f, x in zip(forms, xs, strict=True)])
    assert statuses == [200] * 4
    assert [b["class_ids"] for b in bodies] == [predict(small_weights, x).tolist() for x in xs]
    assert context.get_response_content_type(0) == "application/json"


BAD = {
    "truncated binary": (http_binary(b"\0" * (4 * FEATURES + 3)), 400, "not a whole number of instances"),
    "empty binary": (http_binary(b""), 400, "empty request body"),
    "malformed json": (Request(bytearray(b'{"instances": [[1,')), 400, "malformed JSON"),
    "wrong feature count": (
        http_json({"instances": [[1.0, 2.0, 3.0]]}),
        400,
        r"expected \[batch >= 1, 1024\]",
    ),
    "ragged rows": (http_json({"instances": [[1.0] * FEATURES, [1.0]]}), 400, "rectangular"),
    "no instances key": (http_json({"rows": [[1.0]]}), 400, 'needs an "instances"'),
    "empty instances": (http_json({"instances": []}), 400, "expected"),
    "json scalar": (http_json(3), 400, "must be an object"),
    "unsupported content type": (
        Request(bytearray(b"1,2,3"), "application/x-csv"),
        415,
        "unsupported Content-Type",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_request_gets_its_own_error_while_the_batch_succeeds(
    handler, mar_dir, small_weights, case
) -> None:
    bad, code, message = BAD[case]
    x = instances(2, seed=5)
    good = http_binary(x.tobytes())
    bodies, statuses, _ = call(handler, mar_dir, [good, bad, good])
    assert statuses == [200, code, 200]
    assert bodies[0]["class_ids"] == bodies[2]["class_ids"] == predict(small_weights, x).tolist()
    assert "class_ids" not in bodies[1]
    assert re.search(message, bodies[1]["error"])


def test_a_single_bad_grpc_request_raises_so_grpc_clients_get_an_error_status(handler, mar_dir) -> None:
    """TorchServe's gRPC frontend ignores per-request status; only a batch-level exception becomes one."""
    context = make_context(mar_dir)
    data = prepare(context, [grpc(b"\0" * 6)])
    with pytest.raises(PredictionException) as raised:
        handler.handle(data, context)
    assert raised.value.error_code == 400
    assert "4096 bytes" in raised.value.message


def test_a_single_bad_http_request_keeps_the_per_request_status(handler, mar_dir) -> None:
    [body], [status], _ = call(handler, mar_dir, [http_binary(b"\0" * 6)])
    assert status == 400
    assert "4096 bytes" in body["error"]


def test_the_entry_point_initializes_on_none_then_serves(handler_module, mar_dir, small_weights) -> None:
    context = make_context(mar_dir)
    assert handler_module.handle(None, context) is None
    x = instances(1, seed=1)
    data = prepare(context, [http_binary(x.tobytes())])
    [body] = handler_module.handle(data, context)
    assert json.loads(body)["class_ids"] == predict(small_weights, x).tolist()
