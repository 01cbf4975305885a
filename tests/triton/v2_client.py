"""A minimal Open Inference Protocol client for the tests: send one body from loadtest's encoders and
read the class ids back, over REST-JSON, REST-binary (binary tensor extension) and gRPC."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
import numpy as np

from inferload_protos import load as load_stub
from loadtest import _oip, encode_body


def rest_url(stack) -> str:  # stack: serving.Stack with triton
    return f"http://127.0.0.1:{stack.ports.triton_http}"


def grpc_target(stack) -> str:
    return f"127.0.0.1:{stack.ports.triton_grpc}"


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def class_ids(stack, protocol: str, x: np.ndarray, model_name: str = "linear") -> np.ndarray:
    """The class ids Triton answers for inputs x, sent in `protocol` exactly as the load generator does."""
    body = encode_body("triton", protocol, x, model_name)
    if protocol == "grpc":
        pb2 = load_stub("open_inference_grpc_pb2")
        with grpc.insecure_channel(grpc_target(stack)) as channel:
            raw = channel.unary_unary(_oip.grpc_method(None))(body, timeout=30)
        response = pb2.ModelInferResponse.FromString(raw)
        names = [output.name for output in response.outputs]
        return np.frombuffer(response.raw_output_contents[names.index("class_ids")], dtype="<i8")
    headers = {"Content-Type": _oip.content_type(protocol),
               **_oip.request_headers(protocol, x.shape[0], x.shape[1])}
    status, answer, response_headers = post(f"{rest_url(stack)}{_oip.infer_path(model_name)}", body, headers)
    assert status == 200, answer[:300]
    if protocol == "rest-json":
        outputs = {o["name"]: o for o in json.loads(answer)["outputs"]}
        return np.asarray(outputs["class_ids"]["data"], dtype=np.int64)
    header_length = int(response_headers["Inference-Header-Content-Length"])
    header = json.loads(answer[:header_length])
    offset = header_length
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        if output["name"] == "class_ids":
            return np.frombuffer(answer[offset:offset + size], dtype="<i8")
        offset += size
    raise AssertionError(f"no class_ids in {header}")
