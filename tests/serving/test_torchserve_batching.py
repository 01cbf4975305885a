"""TorchServe with server-side batching (batch size 4) answers concurrent requests correctly: the handler
gets several requests in one call and must give each its own answer."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from serving_clients import torchserve_grpc, torchserve_rest_binary, torchserve_rest_json
from serving_stacks import SMALL, running_stack

from models.artifacts import ArtifactLayout
from models.linear import make_inputs, predict
from serving import ServerSettings, Stack

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def batching(small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = ServerSettings(torchserve_batch_size=4, torchserve_max_batch_delay_ms=50)
    with running_stack(
        small_artifacts, tmp_path_factory.mktemp("batching"), servers=("torchserve",), settings=settings
    ) as stack:
        yield stack


def test_the_model_runs_with_batch_size_4(batching: Stack) -> None:
    import requests

    url = f"http://127.0.0.1:{batching.ports.torchserve_management}/models/linear"
    assert requests.get(url, timeout=10).json()[0]["batchSize"] == 4


def test_concurrent_mixed_requests_each_get_their_own_answer(batching: Stack) -> None:
    """16 requests (mixed protocols, 1-3 instances each) in flight at once, so batches mix them."""
    clients = [torchserve_rest_json, torchserve_rest_binary, torchserve_grpc]
    requests_ = [(clients[i % 3], make_inputs(SMALL.features, 1 + i % 3, seed=100 + i)) for i in range(16)]
    weights = SMALL.weights()
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(client, batching.ports, x) for client, x in requests_]
        answers = [future.result() for future in futures]
    for (_, x), answer in zip(requests_, answers, strict=True):
        assert answer == predict(weights, x).tolist()


def test_a_bad_request_in_a_batch_does_not_spoil_the_others(batching: Stack) -> None:
    import requests

    url = f"http://127.0.0.1:{batching.ports.torchserve_inference}/predictions/linear"
    good = make_inputs(SMALL.features, 1, seed=5)
    with ThreadPoolExecutor(max_workers=8) as pool:
        bad = [pool.submit(requests.post, url, data=b"\x00\x01\x02", timeout=30) for _ in range(4)]
        ok = [pool.submit(torchserve_rest_binary, batching.ports, good) for _ in range(4)]
        assert all(400 <= f.result().status_code < 500 for f in bad)
        assert all(f.result() == predict(SMALL.weights(), good).tolist() for f in ok)
    assert np.isfinite(good).all()
