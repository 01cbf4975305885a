"""Model lookup, status and metadata, answered as TF Serving's ModelService / GetModelMetadata do.

Only one model and version is served; requests for anything else get TF Serving's NOT_FOUND texts.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
)

from serving.tfs_compat.errors import invalid_argument, not_found
from serving.tfs_compat.model import LoadedModel

__all__ = [
    "resolve",
    "status_response",
    "metadata_response",
    "status_json",
    "metadata_json",
    "model_spec_of",
]


def _request_text(name: str, version: int | None) -> str:
    return f"Specific({name}, {version})" if version is not None else f"Latest({name})"


def resolve(model: LoadedModel, name: str, version: int | None, label: str = "") -> None:
    """Check that a request names the served model (and version); TF Serving's errors otherwise."""
    if label:
        raise invalid_argument(f"Unrecognized servable version label: {label} (tfs-compat serves no labels)")
    if name != model.name or (version is not None and version != model.version):
        raise not_found(f"Servable not found for request: {_request_text(name, version)}")


def model_spec_of(spec: model_pb2.ModelSpec) -> tuple[str, int | None, str]:
    version = spec.version.value if spec.HasField("version") else None
    return spec.name, version, spec.version_label


def status_response(
    model: LoadedModel, name: str, version: int | None
) -> get_model_status_pb2.GetModelStatusResponse:
    if not name:
        raise invalid_argument("Missing model name in request.")
    if name != model.name:
        raise not_found(f"Could not find any versions of model {name}")
    if version is not None and version != model.version:
        raise not_found(f"Could not find version {version} of model {name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    status = response.model_version_status.add()
    status.version = model.version
    status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    status.status.SetInParent()  # TF Serving always sets it: {"error_code": "OK", "error_message": ""}
    return response


def metadata_response(
    model: LoadedModel, name: str, version: int | None, fields: list[str] | None = None
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    if not name:
        raise invalid_argument("Missing model name in request.")
    if fields is not None:  # gRPC; REST always asks for signature_def
        if not fields:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        unsupported = [f for f in fields if f != "signature_def"]
        if unsupported:
            raise invalid_argument(f"Metadata field {unsupported[0]} is not supported")
    resolve(model, name, version)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model.name
    response.model_spec.version.value = model.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in model.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    response.metadata["signature_def"].Pack(signature_map)
    return response


def status_json(response: get_model_status_pb2.GetModelStatusResponse) -> bytes:
    """As TF Serving's ToJsonString: json_name keys (model_version_status, error_code), defaults printed."""
    return json_format.MessageToJson(response, always_print_fields_with_no_presence=True).encode()


def metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> bytes:
    """{"model_spec": ..., "metadata": {"signature_def": ...}} with proto field names, as TF Serving."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    document: dict[str, Any] = {
        "model_spec": json_format.MessageToDict(
            response.model_spec, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
        ),
        "metadata": {
            "signature_def": json_format.MessageToDict(
                signature_map, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
            )
        },
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)
