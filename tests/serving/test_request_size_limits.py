"""Request size limits: raised as far as each server allows, and a body above a limit is refused before
it is sent, with an error that says what to change (TorchServe's own refusal only resets the stream).

TorchServe takes a binary or gRPC batch of 512 full-size instances (513 MiB); tfs-compat's gRPC takes
what TF Serving takes (2 GiB - 1, protobuf's own ceiling), and the load generator's channel never
refuses what a server would accept.
"""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
import requests

from loadtest import _transports
from models.artifacts import MODEL_NAME
from serving import Stack, torchserve
from serving.limits import REQUEST_LIMITS, RequestTooLargeError, check_request_size
from serving.tfs_compat import grpc_service, rest

pytestmark = pytest.mark.servers
FULL_SIZE_INSTANCE_BYTES = 262_144 * 4
INSTANCE_BYTES = 1024 * 4  # the small model the servers run in these tests
GRPC_FRAMING = 64  # PredictionsRequest's field tags and lengths around the data
TIMEOUT_S = 300


@pytest.mark.parametrize(
    ("limit", "full_size_batch", "what"),
    [
        (torchserve.MAX_MESSAGE_BYTES, 512, "TorchServe max_request_size, binary and gRPC"),
        (grpc_service.MAX_MESSAGE_BYTES, 2047, "tfs-compat gRPC (TF Serving's INT32_MAX)"),
        (rest.MAX_BODY_BYTES, 750, "tfs-compat REST, base64 JSON (4/3 of the raw bytes)"),
    ],
)
def test_each_limit_takes_the_batch_it_promises(limit: int, full_size_batch: int, what: str) -> None:
    body = full_size_batch * FULL_SIZE_INSTANCE_BYTES
    if "base64" in what:
        body = body * 4 // 3 + full_size_batch * 16
    assert body + GRPC_FRAMING <= limit, what


def test_torchserve_config_carries_the_limits_and_memory_to_hold_them(both_servers: Stack) -> None:
    properties = torchserve.config_properties(
        ports=both_servers.ports, settings=both_servers.settings, model_store=both_servers.artifacts.root
    )
    assert int(properties["max_request_size"]) == torchserve.MAX_MESSAGE_BYTES
    assert int(properties["max_response_size"]) == torchserve.MAX_MESSAGE_BYTES
    assert properties["async_logging"] == "true"
    heap = next(arg for arg in properties["vmargs"].split() if arg.startswith("-Xmx"))
    assert int(heap.removeprefix("-Xmx").removesuffix("g")) * 2**30 >= 2 * torchserve.MAX_MESSAGE_BYTES


def test_the_generator_channel_sends_whatever_tfs_compat_accepts() -> None:
    assert _transports._GRPC_MAX_MESSAGE >= grpc_service.MAX_MESSAGE_BYTES


def test_the_limits_table_is_what_the_servers_are_configured_with() -> None:
    assert REQUEST_LIMITS["torchserve", "grpc"] == REQUEST_LIMITS["torchserve", "rest-binary"]
    assert REQUEST_LIMITS["torchserve", "grpc"] == torchserve.MAX_MESSAGE_BYTES
    assert REQUEST_LIMITS["tfserving", "grpc"] == grpc_service.MAX_MESSAGE_BYTES
    assert REQUEST_LIMITS["tfserving", "rest-json"] == rest.MAX_BODY_BYTES


@pytest.mark.parametrize(("server", "protocol"), sorted(REQUEST_LIMITS))
def test_a_body_at_the_limit_passes_the_check_and_one_byte_more_is_refused_naming_the_fix(
    server: str, protocol: str
) -> None:
    limit = REQUEST_LIMITS[server, protocol]
    check_request_size(server, protocol, limit, batch=8)
    with pytest.raises(RequestTooLargeError, match=f"limit of {limit:,} bytes.*send a smaller batch"):
        check_request_size(server, protocol, limit + 1, batch=8)


def test_the_refusal_says_which_batch_fits() -> None:
    with pytest.raises(RequestTooLargeError, match="batch 512 fits"):
        check_request_size("torchserve", "grpc", 600 * FULL_SIZE_INSTANCE_BYTES, batch=600)


def test_an_unknown_protocol_is_named() -> None:
    with pytest.raises(ValueError, match="unknown server/protocol torchserve/http3"):
        check_request_size("torchserve", "http3", 1)


def _largest_batch(inputs: np.ndarray, expected: list[int]) -> tuple[bytes, list[int]]:
    """Just under TorchServe's limit: whole small-model instances, leaving room for gRPC framing."""
    count = (torchserve.MAX_MESSAGE_BYTES - INSTANCE_BYTES) // INSTANCE_BYTES
    repeats = -(-count // len(inputs))
    body = np.tile(inputs.astype("<f4"), (repeats, 1))[:count].tobytes()
    return body, (expected * repeats)[:count]


def test_torchserve_rest_binary_accepts_a_batch_just_under_its_limit(
    both_servers: Stack, inputs: np.ndarray, expected: list[int]
) -> None:
    body, want = _largest_batch(inputs, expected)
    assert len(body) > 320 * 1024 * 1024  # the old limit
    url = f"http://127.0.0.1:{both_servers.ports.torchserve_inference}/predictions/{MODEL_NAME}"
    response = requests.post(
        url, data=body, headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT_S
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["class_ids"] == want


def _torchserve_predictions(stack: Stack, data: bytes) -> bytes:
    from inferload_protos import load

    request = load("inference_pb2").PredictionsRequest(model_name=MODEL_NAME, input={"data": data})
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.torchserve_grpc}", options=options) as channel:
        call = channel.unary_unary(_transports.TORCHSERVE_PREDICT)
        return call(request.SerializeToString(), timeout=TIMEOUT_S)


def test_torchserve_grpc_accepts_a_batch_just_under_its_limit(
    both_servers: Stack, inputs: np.ndarray, expected: list[int]
) -> None:
    from inferload_protos import load

    body, want = _largest_batch(inputs, expected)
    answer = load("inference_pb2").PredictionResponse.FromString(_torchserve_predictions(both_servers, body))
    assert json.loads(answer.prediction)["class_ids"] == want


def test_torchserve_grpc_refuses_a_batch_over_its_limit_and_keeps_serving(
    both_servers: Stack, inputs: np.ndarray, expected: list[int]
) -> None:
    """Its refusal is a reset stream (CANCELLED) rather than a size error: why check_request_size exists."""
    count = torchserve.MAX_MESSAGE_BYTES // INSTANCE_BYTES  # data alone = the limit; framing tips it over
    body = np.tile(inputs.astype("<f4"), (count // len(inputs) + 1, 1))[:count].tobytes()
    with pytest.raises(RequestTooLargeError):
        check_request_size("torchserve", "grpc", len(body) + GRPC_FRAMING, batch=count)
    with pytest.raises(grpc.RpcError) as refused:
        _torchserve_predictions(both_servers, body)
    assert refused.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED)
    assert both_servers.healthy("torchserve")
    small = _torchserve_predictions(both_servers, inputs.astype("<f4").tobytes())
    assert b"class_ids" in small
