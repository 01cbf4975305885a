"""Model status and metadata answer in TF Serving's documented shapes, over REST and gRPC."""

from __future__ import annotations

import grpc
import pytest
import requests
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tfs_compat_server import RunningServer

pytestmark = pytest.mark.servers

# api_rest.md, "Model status API" (version 1 instead of the example's)
DOCUMENTED_STATUS = {
    "model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
}


@pytest.mark.parametrize("path", ["/v1/models/linear", "/v1/models/linear/versions/1"])
def test_rest_status_matches_tf_serving(tfs_compat: RunningServer, path: str) -> None:
    response = requests.get(tfs_compat.rest_url + path, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == DOCUMENTED_STATUS


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/v1/models/other", 404, "Could not find any versions of model other"),
        ("/v1/models/linear/versions/7", 404, "Could not find version 7 of model linear"),
        ("/v1/models/other/metadata", 404, "Servable not found for request: Latest(other)"),
        ("/v1/models/linear/versions/7/metadata", 404, "Servable not found for request: Specific(linear, 7)"),
        ("/v1/models", 400, "Missing model name in request."),
        ("/v1/models/linear/extra/path", 400, "Malformed request: GET /v1/models/linear/extra/path"),
    ],
)
def test_rest_unknown_model_or_version(tfs_compat: RunningServer, path: str, status: int, error: str) -> None:
    response = requests.get(tfs_compat.rest_url + path, timeout=10)
    assert (response.status_code, response.json()) == (status, {"error": error})


@pytest.mark.parametrize("path", ["/v1/models/linear/metadata", "/v1/models/linear/versions/1/metadata"])
def test_rest_metadata_lists_both_signatures(tfs_compat: RunningServer, path: str) -> None:
    body = requests.get(tfs_compat.rest_url + path, timeout=10).json()
    assert body["model_spec"] == {"name": "linear", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    x = default["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in x["tensor_shape"]["dim"]] == ["-1", "1024"]
    assert set(default["outputs"]) == {"class_ids", "scores"}
    assert default["outputs"]["class_ids"]["dtype"] == "DT_INT64"
    assert signatures["predict_bytes"]["inputs"]["x_bytes"]["dtype"] == "DT_STRING"


def test_grpc_model_status(tfs_compat: RunningServer) -> None:
    with grpc.insecure_channel(tfs_compat.grpc_target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "linear"
        response = stub.GetModelStatus(request, timeout=10)
        (status,) = response.model_version_status
        assert (status.version, status.state) == (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        assert status.HasField("status") and status.status.error_code == 0

        request.model_spec.name = "other"
        with pytest.raises(grpc.RpcError) as info:
            stub.GetModelStatus(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_model_metadata(tfs_compat: RunningServer) -> None:
    with grpc.insecure_channel(tfs_compat.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = "linear"
        response = stub.GetModelMetadata(request, timeout=10)
        assert (response.model_spec.name, response.model_spec.version.value) == ("linear", 1)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        assert response.metadata["signature_def"].Unpack(signatures)
        assert {"serving_default", "predict_bytes"} <= set(signatures.signature_def)
        assert list(signatures.signature_def["predict_bytes"].inputs) == ["x_bytes"]

        no_fields = get_model_metadata_pb2.GetModelMetadataRequest()
        no_fields.model_spec.name = "linear"
        with pytest.raises(grpc.RpcError) as info:
            stub.GetModelMetadata(no_fields, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "GetModelMetadataRequest must specify at least one metadata_field"

        request.model_spec.version.value = 9
        with pytest.raises(grpc.RpcError) as info:
            stub.GetModelMetadata(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "Servable not found for request: Specific(linear, 9)"
