"""With --enable_batching, concurrent REST and gRPC requests are merged into batches, answered correctly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tfs_compat_server import RunningServer, start_tfs_compat, stop

from models.artifacts import ArtifactLayout
from models.linear import make_inputs, predict

pytestmark = pytest.mark.servers

MAX_BATCH = 8
BATCHING_FILE = f"""
max_batch_size {{ value: {MAX_BATCH} }}
batch_timeout_micros {{ value: 20000 }}
num_batch_threads {{ value: 2 }}
max_enqueued_batches {{ value: 100 }}
"""


@pytest.fixture(scope="module")
def batching_server(
    small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("tfs_compat_batching")
    config = workdir / "batching.config"
    config.write_text(BATCHING_FILE)
    server = start_tfs_compat(
        small_artifacts.tf_base_path,
        workdir,
        "--enable_batching=true",
        f"--batching_parameters_file={config}",
    )
    try:
        yield server
    finally:
        stop(server.process)


def _grpc_predict(target: str, x: np.ndarray) -> list[int]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "linear"
    tensor = request.inputs["x"]
    tensor.dtype = types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add().size = x.shape[0]
    tensor.tensor_shape.dim.add().size = x.shape[1]
    tensor.tensor_content = x.astype("<f4").tobytes()
    with grpc.insecure_channel(target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    return list(response.outputs["class_ids"].int64_val)


def _rest_predict(url: str, x: np.ndarray) -> list[int]:
    response = requests.post(url, json={"inputs": {"x": x.tolist()}}, timeout=60)
    assert response.status_code == 200, response.text
    return list(response.json()["outputs"]["class_ids"])


def _processed_batches(server: RunningServer) -> tuple[float, float]:
    """(batches run, instances run) from the Prometheus histogram of merged batch sizes."""
    text = requests.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=10).text
    values = {}
    for suffix in ("count", "sum"):
        match = re.search(rf"processed_batch_size_{suffix}\{{[^}}]*\}} ([0-9.e+]+)", text)
        values[suffix] = float(match.group(1)) if match else 0.0
    return values["count"], values["sum"]


def test_concurrent_requests_get_their_own_answers(
    batching_server: RunningServer, small_artifacts: ArtifactLayout
) -> None:
    spec = small_artifacts.spec()
    weights = spec.weights()
    # 16 requests of 1-3 instances from 8 threads, half over REST and half over gRPC.
    requests_x = [make_inputs(spec.features, 1 + i % 3, seed=100 + i) for i in range(16)]
    batches_before, instances_before = _processed_batches(batching_server)

    def send(i: int) -> list[int]:
        x = requests_x[i]
        if i % 2:
            return _grpc_predict(batching_server.grpc_target, x)
        return _rest_predict(batching_server.predict_url, x)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(16)))
    for x, answer in zip(requests_x, answers, strict=True):
        assert answer == predict(weights, x).tolist()
    batches, instances = _processed_batches(batching_server)
    assert instances - instances_before == sum(len(x) for x in requests_x)
    assert batches - batches_before < 16, "no two requests were merged into one batch"


def test_request_larger_than_max_batch_size_is_rejected_like_tf_serving(
    batching_server: RunningServer, small_artifacts: ArtifactLayout
) -> None:
    x = make_inputs(small_artifacts.spec().features, MAX_BATCH + 1, seed=5)
    response = requests.post(batching_server.predict_url, json={"instances": x.tolist()}, timeout=60)
    assert response.status_code == 400
    assert response.json() == {
        "error": f"Task size {MAX_BATCH + 1} is larger than maximum input batch size {MAX_BATCH}"
    }
    assert (
        _rest_predict(batching_server.predict_url, x[:MAX_BATCH])
        == predict(small_artifacts.spec().weights(), x[:MAX_BATCH]).tolist()
    )


def test_bad_request_in_batching_mode_is_rejected_before_queueing(batching_server: RunningServer) -> None:
    response = requests.post(batching_server.predict_url, json={"instances": [[1.0, 2.0]]}, timeout=60)
    assert response.status_code == 400 and "expects [?,1024]" in response.json()["error"]


def test_bad_batching_file_stops_start_up_with_the_line(
    small_artifacts: ArtifactLayout, tmp_path: Path
) -> None:
    config = tmp_path / "batching.config"
    config.write_text("max_batch_size { value: 8 }\nbatch_timeout_micro { value: 10 }\n")
    with pytest.raises(RuntimeError) as info:
        start_tfs_compat(
            small_artifacts.tf_base_path,
            tmp_path,
            "--enable_batching=true",
            f"--batching_parameters_file={config}",
        )
    assert f"{config}:2" in str(info.value) and "unknown field 'batch_timeout_micro'" in str(info.value)
