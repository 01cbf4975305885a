"""TF Serving's REST predict JSON <-> NumPy tensors (row `instances` and columnar `inputs` formats).

Follows tensorflow_serving/util/json_tensor.cc: the same request forms, the same response shapes
and, where practical, the same error messages. Numbers are decoded in one NumPy call per input
tensor (never element by element); only DT_STRING values ({"b64": ...}) are walked in Python, one
pybase64 call per instance.
"""

from __future__ import annotations

import binascii
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pybase64  # SIMD base64, the stdlib's API: 0.06 ms instead of 3.5 ms for one 1 MiB instance

from serving.tfs_compat.errors import invalid_argument
from serving.tfs_compat.model import InputSpec, LoadedModel, Signature

__all__ = [
    "RequestFormat",
    "DecodedRequest",
    "decode_predict_request",
    "encode_predict_response",
    "encode_error",
]

_BASE64_KEY = "b64"
_BYTES_SUFFIX = "_bytes"
_DEBUG_LIMIT = 200  # characters of a JSON value quoted back in an error message


class RequestFormat(enum.Enum):
    ROW = "row"  # {"instances": [...]} -> {"predictions": [...]}
    COLUMNAR = "columnar"  # {"inputs": ...} -> {"outputs": ...}


@dataclass(frozen=True)
class DecodedRequest:
    signature: Signature
    inputs: dict[str, np.ndarray]
    format: RequestFormat


def _debug(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode("utf-8", "replace")
    return text if len(text) <= _DEBUG_LIMIT else text[:_DEBUG_LIMIT] + "...(truncated)"


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "Bool"), (dict, "Object"), (list, "Array"), (str, "String")):
        if isinstance(value, kind):
            return name
    return "Null" if value is None else "Number"


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and _BASE64_KEY in value


def _decode_string(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict):
        if not _is_b64(value) or not isinstance(value[_BASE64_KEY], str):
            raise invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
        try:
            return pybase64.b64decode(value[_BASE64_KEY], validate=True)
        except (binascii.Error, ValueError):
            raise invalid_argument("Unable to base64 decode") from None
    raise invalid_argument(
        f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: string"
    )


def _string_tensor(value: Any) -> np.ndarray:
    """Nested lists of strings / {"b64": ...} objects -> an object array of bytes."""

    def walk(node: Any) -> Any:
        return [walk(item) for item in node] if isinstance(node, list) else _decode_string(node)

    nested = walk(value)
    try:
        array = np.array(nested, dtype=object)
    except ValueError as exc:
        raise invalid_argument(f"string tensor is not rectangular (lists of unequal length): {exc}") from None
    if any(isinstance(item, list) for item in array.flat):
        raise invalid_argument("string tensor is not rectangular: lists of unequal length at the same level")
    return array


_ACCEPTED_KINDS = {"f": "fiu", "i": "iu", "u": "u", "b": "b"}


def _numeric_tensor(value: Any, spec: InputSpec) -> np.ndarray:
    """One-shot NumPy conversion; the inferred dtype tells us if any value had the wrong JSON type."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise invalid_argument(
            f"input {spec.name!r}: lists at the same level have different lengths; every instance must "
            f"have shape {InputSpec(spec.name, spec.dtype, spec.shape[1:]).shape_text()}"
        ) from None
    target = spec.numpy_dtype
    if array.dtype.kind not in _ACCEPTED_KINDS.get(target.kind, target.kind):
        bad = _first_bad_value(value, target)
        raise invalid_argument(
            f"JSON Value: {_debug(bad)} Type: {_json_type(bad)} is not of expected type: {spec.type_name}"
        )
    return array.astype(target, copy=False)


def _first_bad_value(value: Any, target: np.dtype[Any]) -> Any:
    """Find the offending leaf for the error message (only on the error path)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif (
            isinstance(node, bool)
            or not isinstance(node, int | float)
            or (target.kind in "iu" and isinstance(node, float))
        ):
            return node
    return value


def _tensor(value: Any, spec: InputSpec) -> np.ndarray:
    if spec.is_string:
        return _string_tensor(value)
    if isinstance(value, dict):
        raise invalid_argument(
            f"JSON Value: {_debug(value)} Type: Object is not of expected type: {spec.type_name}"
        )
    return _numeric_tensor(value, spec)


def _row_inputs(instances: list[Any], signature: Signature) -> dict[str, np.ndarray]:
    specs = signature.inputs
    first = instances[0]
    named = isinstance(first, dict) and not _is_b64(first)
    if not named and len(specs) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required "
            "as per tensorinfo_map"
        )
    if not named:
        for index, item in enumerate(instances):
            if isinstance(item, dict) and not _is_b64(item):
                raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
        (spec,) = specs.values()
        return {spec.name: _tensor(instances, spec)}
    names = set(specs)
    for index, item in enumerate(instances):
        if not isinstance(item, dict) or _is_b64(item):
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        if set(item) != names:
            unknown = sorted(set(item) - names)
            if unknown:
                raise invalid_argument(
                    f"Failed to process element: {index} key: {unknown[0]} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {unknown[0]}"
                )
            raise invalid_argument(
                f"Failed to process element: {index} of 'instances' list. JSON object: {_debug(item)} "
                f"keys must be equal to: {','.join(sorted(names))}"
            )
    return {name: _tensor([item[name] for item in instances], spec) for name, spec in specs.items()}


def _columnar_inputs(value: Any, signature: Signature) -> dict[str, np.ndarray]:
    specs = signature.inputs
    if not isinstance(value, dict) or _is_b64(value):
        if len(specs) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required "
                "as per tensorinfo_map"
            )
        (spec,) = specs.values()
        return {spec.name: _tensor(value, spec)}
    for name in specs:
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
    unknown = sorted(set(value) - set(specs))
    if unknown:
        raise invalid_argument(
            f"unknown named input(s) {', '.join(unknown)} in 'inputs' object; the signature "
            f"{signature.name!r} takes: {', '.join(sorted(specs))}"
        )
    return {name: _tensor(value[name], spec) for name, spec in specs.items()}


def decode_predict_request(body: bytes, model: LoadedModel) -> DecodedRequest:
    """Parse a :predict body into the signature to run and its input arrays (not yet shape-checked)."""
    if not body.strip():
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_argument(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_debug(document)} Is not object")
    signature_name = document.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid_argument(
            f"JSON Value: {_debug(document)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    key = signature_name or "serving_default"
    if key not in model.signatures:
        raise invalid_argument(f'Serving signature name: "{key}" not found in signature def')
    signature = model.signatures[key]
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {_debug(document)} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    if has_instances:
        instances = document["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(
                f"JSON Value: {_debug(document)} Expecting 'instances' to be an list/array"
            )
        if not instances:
            raise invalid_argument(f"JSON Value: {_debug(document)} No values in 'instances' array")
        return DecodedRequest(signature, _row_inputs(instances, signature), RequestFormat.ROW)
    if has_inputs:
        return DecodedRequest(
            signature, _columnar_inputs(document["inputs"], signature), RequestFormat.COLUMNAR
        )
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _jsonable(name: str, array: np.ndarray) -> Any:
    """NumPy arrays go to orjson as they are; strings become text or {"b64": ...} (names ending _bytes)."""
    if array.dtype != object:
        return array
    as_b64 = name.endswith(_BYTES_SUFFIX)

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(x) for x in item]
        if as_b64:
            return {_BASE64_KEY: pybase64.b64encode(item).decode("ascii")}
        return item.decode("utf-8", "replace")

    return convert(array.tolist())


def encode_predict_response(outputs: Mapping[str, np.ndarray], request_format: RequestFormat) -> bytes:
    """{"predictions": ...} (row) or {"outputs": ...} (columnar), shaped as TF Serving writes them."""
    names = sorted(outputs)
    if request_format is RequestFormat.COLUMNAR:
        body: Any = (
            _jsonable(names[0], outputs[names[0]])
            if len(names) == 1
            else {name: _jsonable(name, outputs[name]) for name in names}
        )
        return orjson.dumps({"outputs": body}, option=orjson.OPT_SERIALIZE_NUMPY)
    batch_sizes = {outputs[name].shape[0] if outputs[name].ndim else -1 for name in names}
    if -1 in batch_sizes:
        raise invalid_argument(f"Tensor name: {names[0]} has no shape information ")
    if len(batch_sizes) > 1:
        raise invalid_argument(f"output tensors have inconsistent batch sizes: {sorted(batch_sizes)}")
    if len(names) == 1:
        predictions: Any = _jsonable(names[0], outputs[names[0]])
    else:
        columns = {name: _jsonable(name, outputs[name]) for name in names}
        predictions = [{name: columns[name][i] for name in names} for i in range(batch_sizes.pop())]
    return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_error(message: str) -> bytes:
    return orjson.dumps({"error": message})
