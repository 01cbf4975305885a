"""TF Serving's gRPC API (PredictionService, ModelService) with the real tensorflow_serving.apis classes."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, NoReturn

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.limits import TFS_GRPC_MAX_MESSAGE_BYTES
from serving.tfs_compat import servable
from serving.tfs_compat.errors import ServingError
from serving.tfs_compat.metrics import Metrics
from serving.tfs_compat.predictor import Predictor
from serving.tfs_compat.startup import SslConfig
from serving.tfs_compat.tensor_proto import split_tensor_contents, tensor_from_proto, tensor_to_proto

__all__ = ["make_grpc_server", "MAX_MESSAGE_BYTES"]

_log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = TFS_GRPC_MAX_MESSAGE_BYTES  # TF Serving: builder.SetMaxMessageSize(INT32_MAX)


class WirePredictRequest(NamedTuple):
    """A PredictRequest parsed without its inputs' tensor_content, which stay views of the wire bytes."""

    message: predict_pb2.PredictRequest
    contents: dict[str, memoryview]


def _parse_predict(wire: bytes) -> WirePredictRequest:
    stripped, contents = split_tensor_contents(wire)
    return WirePredictRequest(predict_pb2.PredictRequest.FromString(stripped), contents)


def _abort(context: grpc.ServicerContext, error: ServingError) -> NoReturn:
    context.abort(error.code, error.message)
    raise AssertionError("context.abort returns only by raising")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify/Regress/MultiInference stay UNIMPLEMENTED (base class)."""

    def __init__(self, predictor: Predictor, metrics: Metrics, tensor_content_outputs: bool) -> None:
        self.predictor = predictor
        self.model = predictor.model
        self.metrics = metrics
        self.as_content = tensor_content_outputs

    def _observe(self, api: str, status: str, started: float) -> None:
        self.metrics.observe(self.model.name, api, "GRPC", status, time.perf_counter() - started)

    def Predict(  # noqa: N802
        self, request: predict_pb2.PredictRequest | WirePredictRequest, context: grpc.ServicerContext
    ) -> Any:
        started = time.perf_counter()
        contents: dict[str, memoryview] = {}
        if isinstance(request, WirePredictRequest):
            request, contents = request
        try:
            name, version, label = servable.model_spec_of(request.model_spec)
            servable.resolve(self.model, name, version, label)
            signature = self.model.signature(request.model_spec.signature_name)
            inputs = {
                key: tensor_from_proto(key, tensor, contents.get(key))
                for key, tensor in request.inputs.items()
            }
            output_filter = list(request.output_filter)
            self.predictor.check(signature, inputs, output_filter)
            outputs = self.predictor.predict(signature, inputs, output_filter)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = self.model.name
            response.model_spec.version.value = self.model.version
            response.model_spec.signature_name = signature.name
            for key, array in outputs.items():
                response.outputs[key].CopyFrom(tensor_to_proto(array, as_content=self.as_content))
        except ServingError as exc:
            self._observe("Predict", exc.code.name, started)
            _abort(context, exc)
        except Exception as exc:  # noqa: BLE001 - never let a request take the server down
            _log.exception("gRPC predict failed")
            self._observe("Predict", "INTERNAL", started)
            _abort(context, ServingError(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"))
        self._observe("Predict", "OK", started)
        return response

    def GetModelMetadata(  # noqa: N802
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> Any:
        try:
            name, version, label = servable.model_spec_of(request.model_spec)
            if label:
                servable.resolve(self.model, name, version, label)
            return servable.metadata_response(self.model, name, version, list(request.metadata_field))
        except ServingError as exc:
            _abort(context, exc)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus; HandleReloadConfigRequest stays UNIMPLEMENTED."""

    def __init__(self, predictor: Predictor) -> None:
        self.model = predictor.model

    def GetModelStatus(  # noqa: N802
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> Any:
        try:
            name, version, label = servable.model_spec_of(request.model_spec)
            if label:
                servable.resolve(self.model, name, version, label)
            return servable.status_response(self.model, name, version)
        except ServingError as exc:
            _abort(context, exc)


def server_credentials(ssl: SslConfig) -> grpc.ServerCredentials:
    """As BuildServerCredentialsFromSSLConfigFile: the key and certificate; with client_verify a client
    certificate is required and verified against custom_ca."""
    return grpc.ssl_server_credentials(
        [(ssl.server_key.encode(), ssl.server_cert.encode())],
        root_certificates=ssl.custom_ca.encode() if ssl.custom_ca else None,
        require_client_auth=ssl.client_verify,
    )


def make_grpc_server(
    predictor: Predictor,
    *,
    address: str,
    threads: int,
    metrics: Metrics,
    tensor_content_outputs: bool,
    ssl: SslConfig | None = None,
) -> grpc.Server:
    """A started-later grpc.Server bound to address (over TLS when `ssl` is given); raises RuntimeError
    if the port is taken."""
    server = grpc.server(
        ThreadPoolExecutor(threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    service = PredictionService(predictor, metrics, tensor_content_outputs)
    # Predict first, parsed with tensor_content left in the wire bytes (no copy of it); the generated
    # registration after it serves the other methods (the first handler that knows a method wins).
    predict = grpc.unary_unary_rpc_method_handler(
        service.Predict,
        request_deserializer=_parse_predict,
        response_serializer=predict_pb2.PredictResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {"Predict": predict}),)
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(predictor), server)
    try:
        if ssl is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, server_credentials(ssl))
    except RuntimeError as exc:
        raise RuntimeError(f"cannot bind gRPC to {address}: {exc}; pick a free --port") from None
    if port == 0:
        raise RuntimeError(f"cannot bind gRPC to {address} (port in use?); pick a free --port")
    return server
