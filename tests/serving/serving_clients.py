"""Minimal clients for the six server × protocol combinations, written from the servers' documented APIs
(independent of loadtest/, so a bug there cannot hide a server problem here). Each returns class ids."""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import requests

from serving import Ports

TIMEOUT_S = 30


def tfserving_rest_json(ports: Ports, x: np.ndarray) -> list[int]:
    url = f"http://127.0.0.1:{ports.tfserving_rest}/v1/models/linear:predict"
    response = requests.post(url, json={"instances": x.tolist()}, timeout=TIMEOUT_S)
    response.raise_for_status()
    return [int(row["class_ids"]) for row in response.json()["predictions"]]


def tfserving_rest_binary(ports: Ports, x: np.ndarray) -> list[int]:
    url = f"http://127.0.0.1:{ports.tfserving_rest}/v1/models/linear:predict"
    instances = [{"b64": base64.b64encode(row.astype("<f4").tobytes()).decode()} for row in x]
    response = requests.post(
        url, json={"signature_name": "predict_bytes", "instances": instances}, timeout=TIMEOUT_S
    )
    response.raise_for_status()
    return [int(row["class_ids"]) for row in response.json()["predictions"]]


def tfserving_grpc(ports: Ports, x: np.ndarray) -> list[int]:
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "linear"
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in x.shape]
            ),
            tensor_content=x.astype("<f4").tobytes(),
        )
    )
    with grpc.insecure_channel(f"127.0.0.1:{ports.tfserving_grpc}") as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=TIMEOUT_S
        )
    ids = response.outputs["class_ids"]
    values = np.frombuffer(ids.tensor_content, "<i8") if ids.tensor_content else np.array(ids.int64_val)
    return values.tolist()


def torchserve_rest_json(ports: Ports, x: np.ndarray, model: str = "linear") -> list[int]:
    url = f"http://127.0.0.1:{ports.torchserve_inference}/predictions/{model}"
    response = requests.post(url, json={"instances": x.tolist()}, timeout=TIMEOUT_S)
    response.raise_for_status()
    return [int(i) for i in response.json()["class_ids"]]


def torchserve_rest_binary(ports: Ports, x: np.ndarray) -> list[int]:
    url = f"http://127.0.0.1:{ports.torchserve_inference}/predictions/linear"
    response = requests.post(
        url,
        data=x.astype("<f4").tobytes(),
        headers={"Content-Type": "application/octet-stream"},
        timeout=TIMEOUT_S,
    )
    response.raise_for_status()
    return [int(i) for i in response.json()["class_ids"]]


def torchserve_grpc(ports: Ports, x: np.ndarray) -> list[int]:
    from inferload_protos import load

    inference_pb2 = load("inference_pb2")
    inference_pb2_grpc = load("inference_pb2_grpc")
    request = inference_pb2.PredictionsRequest(model_name="linear", input={"data": x.astype("<f4").tobytes()})
    with grpc.insecure_channel(f"127.0.0.1:{ports.torchserve_grpc}") as channel:
        response = inference_pb2_grpc.InferenceAPIsServiceStub(channel).Predictions(
            request, timeout=TIMEOUT_S
        )
    return [int(i) for i in json.loads(response.prediction)["class_ids"]]


CLIENTS = {
    ("tfserving", "rest-json"): tfserving_rest_json,
    ("tfserving", "rest-binary"): tfserving_rest_binary,
    ("tfserving", "grpc"): tfserving_grpc,
    ("torchserve", "rest-json"): torchserve_rest_json,
    ("torchserve", "rest-binary"): torchserve_rest_binary,
    ("torchserve", "grpc"): torchserve_grpc,
}
