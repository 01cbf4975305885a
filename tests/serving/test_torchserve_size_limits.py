"""TorchServe's request-size limit is raised: a JSON body the size of one full-size instance (5.3 MB) and
more passes, where TorchServe's default limit (6,553,500 bytes) would answer 413."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from serving import Stack

pytestmark = pytest.mark.servers
TORCHSERVE_DEFAULT_LIMIT = 6_553_500


def test_an_8_mb_json_body_is_accepted(both_servers: Stack, inputs: np.ndarray, expected: list[int]) -> None:
    body = b'{"instances": ' + repr(inputs[:1].tolist()).encode() + b" " * 8_000_000 + b"}"
    assert len(body) > TORCHSERVE_DEFAULT_LIMIT
    url = f"http://127.0.0.1:{both_servers.ports.torchserve_inference}/predictions/linear"
    response = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["class_ids"] == expected[:1]
