"""Request size limits: raised as far as each server allows, and a body above a limit is refused before
it is sent, with an error that says what to change (TorchServe's own refusal only resets the stream).

TorchServe takes a binary or gRPC batch of 512 full-size instances (513 MiB); tfs-compat's gRPC takes
what TF Serving takes (2 GiB - 1, protobuf's own ceiling), and the load generator's channel never
refuses what a server would accept. The shipped limits are checked in the configuration; the real
TorchServe's behaviour at its limit (just under: answered; just over: refused, still serving) is
checked on one started with a 2 MiB limit, the same code path without sending 513 MiB bodies.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests

from loadtest import _spec
from models.artifacts import MODEL_NAME, ArtifactLayout
from serving import Ports, ServerSettings, Stack, torchserve
from serving.limits import REQUEST_LIMITS, RequestTooLargeError, check_request_size
from serving.processes import spawn, stop, wait_healthy
from serving.tfs_compat import grpc_service, rest

pytestmark = pytest.mark.servers
FULL_SIZE_INSTANCE_BYTES = 262_144 * 4
INSTANCE_BYTES = 1024 * 4  # the small model the servers run in these tests
GRPC_FRAMING = 64  # PredictionsRequest's field tags and lengths around the data
TIMEOUT_S = 300
SMALL_LIMIT = 2 * 1024 * 1024  # max_request_size of the TorchServe the limit is tried on: 512 instances


@pytest.fixture(scope="module")
def limited_torchserve(
    small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ports]:
    """A real TorchServe (default settings) whose request and response limits are SMALL_LIMIT."""
    ports = Ports.free()
    tmpdir = Path(tempfile.mkdtemp(prefix="inferload-ts-"))  # short: worker socket paths are limited
    spec = torchserve.launch_spec(
        small_artifacts,
        settings=ServerSettings(),
        ports=ports,
        workdir=tmp_path_factory.mktemp("limited-torchserve"),
        tmpdir=tmpdir,
        max_message_bytes=SMALL_LIMIT,
    )
    handle, _ = spawn(spec)
    try:
        wait_healthy({"torchserve": (handle, spec, lambda: torchserve.health(ports, 1))}, timeout_s=240)
        yield ports
    finally:
        stop(handle, name="torchserve", ports=ports.of("torchserve").values())
        shutil.rmtree(tmpdir, ignore_errors=True)


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
    assert torchserve.MAX_MESSAGE_BYTES > 320 * 1024 * 1024  # the old limit
    assert properties["async_logging"] == "true"
    heap = next(arg for arg in properties["vmargs"].split() if arg.startswith("-Xmx"))
    assert int(heap.removeprefix("-Xmx").removesuffix("g")) * 2**30 >= 2 * torchserve.MAX_MESSAGE_BYTES


def test_the_generator_channel_sends_whatever_tfs_compat_accepts() -> None:
    assert _spec.GRPC_MAX_MESSAGE >= grpc_service.MAX_MESSAGE_BYTES


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
    """Just under the limit: whole small-model instances, leaving room for gRPC framing."""
    count = (SMALL_LIMIT - INSTANCE_BYTES) // INSTANCE_BYTES
    repeats = -(-count // len(inputs))
    body = np.tile(inputs.astype("<f4"), (repeats, 1))[:count].tobytes()
    return body, (expected * repeats)[:count]


def test_torchserve_rest_binary_accepts_a_batch_just_under_its_limit(
    limited_torchserve: Ports, inputs: np.ndarray, expected: list[int]
) -> None:
    body, want = _largest_batch(inputs, expected)
    assert len(body) > SMALL_LIMIT - 2 * INSTANCE_BYTES
    url = f"http://127.0.0.1:{limited_torchserve.torchserve_inference}/predictions/{MODEL_NAME}"
    response = requests.post(
        url, data=body, headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT_S
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["class_ids"] == want


def _torchserve_predictions(ports: Ports, data: bytes) -> bytes:
    from inferload_protos import load

    request = load("inference_pb2").PredictionsRequest(model_name=MODEL_NAME, input={"data": data})
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{ports.torchserve_grpc}", options=options) as channel:
        call = channel.unary_unary(_spec.TORCHSERVE_PREDICT)
        return call(request.SerializeToString(), timeout=TIMEOUT_S)


def test_torchserve_grpc_accepts_a_batch_just_under_its_limit(
    limited_torchserve: Ports, inputs: np.ndarray, expected: list[int]
) -> None:
    from inferload_protos import load

    body, want = _largest_batch(inputs, expected)
    answer = load("inference_pb2").PredictionResponse.FromString(
        _torchserve_predictions(limited_torchserve, body)
    )
    assert json.loads(answer.prediction)["class_ids"] == want


def test_torchserve_grpc_refuses_a_batch_over_its_limit_and_keeps_serving(
    limited_torchserve: Ports, inputs: np.ndarray
) -> None:
    """Its refusal is a reset stream (CANCELLED) rather than a size error: why check_request_size exists
    (which refuses such a body before sending it: test_a_body_at_the_limit_passes_the_check...)."""
    count = SMALL_LIMIT // INSTANCE_BYTES  # data alone = the limit; framing tips it over
    body = np.tile(inputs.astype("<f4"), (count // len(inputs) + 1, 1))[:count].tobytes()
    with pytest.raises(grpc.RpcError) as refused:
        _torchserve_predictions(limited_torchserve, body)
    assert refused.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED)
    assert torchserve.health(limited_torchserve, 1) is None
    small = _torchserve_predictions(limited_torchserve, inputs.astype("<f4").tobytes())
    assert b"class_ids" in small
