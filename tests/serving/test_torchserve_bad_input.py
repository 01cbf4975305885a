"""Bad input to TorchServe gets a 4xx with a message, and the server keeps serving afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from serving_clients import torchserve_rest_binary

from serving import Stack

pytestmark = pytest.mark.servers
FEATURES = 1024


@pytest.fixture(scope="module")
def torchserve(small_stack: Stack) -> Stack:
    """The session's shared servers: each case also checks that TorchServe still serves afterwards."""
    return small_stack


BAD_REQUESTS = {
    "wrong dimensions (JSON)": ("linear", "application/json", b'{"instances": [[1.0, 2.0, 3.0]]}'),
    "malformed JSON": ("linear", "application/json", b'{"instances": [[1.0, 2.0'),
    "JSON without instances": ("linear", "application/json", b'{"inputs": [[1.0]]}'),
    "truncated binary": ("linear", "application/octet-stream", np.zeros(FEATURES, "<f4").tobytes()[:-3]),
    "binary of the wrong width": (
        "linear",
        "application/octet-stream",
        np.zeros(FEATURES - 1, "<f4").tobytes(),
    ),
    "unknown model": ("no_such_model", "application/json", b'{"instances": [[1.0]]}'),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_a_4xx_and_the_server_keeps_serving(
    torchserve: Stack, inputs: np.ndarray, expected: list[int], case: str
) -> None:
    model, content_type, body = BAD_REQUESTS[case]
    url = f"http://127.0.0.1:{torchserve.ports.torchserve_inference}/predictions/{model}"
    response = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.text  # a message, not an empty body
    assert torchserve_rest_binary(torchserve.ports, inputs[:1]) == expected[:1]
    assert torchserve.alive("torchserve")
