"""The handler describes the model it serves (`GET /models/linear?customized=true` runs a request with
the header describe=True): its input width and class count, also when TorchServe batches the describe
call with predictions, which are still answered as usual."""

from __future__ import annotations

import json

from torchserve_batch import make_context
from ts.service import Service

from models.linear import make_inputs, predict

FEATURES = 1024


def batch_of(context, rows: list[tuple[dict | None, bool]]) -> list:
    """Rows of (JSON body or None, describe?) as TorchServe's worker hands them to the handler."""
    batch = []
    for idx, (body, describe) in enumerate(rows):
        headers = [{"name": b"Content-Type", "value": b"application/json"}]
        if describe:
            headers.append({"name": b"describe", "value": b"True"})
        parameters = [{"name": "body", "contentType": "application/json", "value": body}] if body else []
        batch.append({"requestId": str(idx).encode(), "parameters": parameters, "headers": headers})
    processors, data, request_ids = Service.retrieve_data_for_inference(batch)
    context.request_ids = request_ids
    context.request_processor = processors
    return data


def test_a_describe_call_answers_the_input_width_and_class_count(handler, mar_dir) -> None:
    context = make_context(mar_dir)
    [answer] = handler.handle(batch_of(context, [(None, True)]), context)
    assert json.loads(answer)["features"] == FEATURES
    assert json.loads(answer)["classes"] == 64


def test_a_describe_call_batched_with_predictions_leaves_them_answered(
    handler, mar_dir, small_weights
) -> None:
    x = make_inputs(FEATURES, 2, seed=3)
    context = make_context(mar_dir, batch_size=3)
    rows = [({"instances": x[:1].tolist()}, False), (None, True), ({"instances": x[1:].tolist()}, False)]
    first, described, last = handler.handle(batch_of(context, rows), context)
    assert json.loads(described)["features"] == FEATURES
    assert json.loads(first)["class_ids"] == predict(small_weights, x[:1]).tolist()
    assert json.loads(last)["class_ids"] == predict(small_weights, x[1:]).tolist()
