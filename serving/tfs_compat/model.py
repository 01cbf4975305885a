"""The served model: a TensorFlow SavedModel loaded once, called through its concrete signatures.

Predict calls the signature's concrete function directly (no tracing or graph building per request);
inputs are checked against the signature first so a bad request gets a clear INVALID_ARGUMENT
instead of an opaque kernel error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from serving.tfs_compat.errors import ServingError, failed_precondition, invalid_argument
from serving.tfs_compat.startup import find_latest_version

__all__ = ["DEFAULT_SIGNATURE", "InputSpec", "Signature", "LoadedModel", "find_latest_version"]

DEFAULT_SIGNATURE = "serving_default"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSpec:
    """One named tensor of a signature: dtype and shape (None for a free dimension)."""

    name: str
    dtype: tf.dtypes.DType
    shape: tuple[int | None, ...]

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(object) if self.dtype == tf.string else np.dtype(self.dtype.as_numpy_dtype)

    @property
    def is_string(self) -> bool:
        return self.dtype == tf.string

    @property
    def type_name(self) -> str:
        """TF's DataTypeString ("float", "int64", "string"), as TF Serving quotes it in errors."""
        return _dtype_name(self.dtype)

    @property
    def datatype_enum(self) -> int:
        return int(self.dtype.as_datatype_enum)

    def shape_text(self) -> str:
        return "[" + ",".join("?" if d is None else str(d) for d in self.shape) + "]"


@dataclass(frozen=True)
class Signature:
    """A callable serving signature with its input and output tensor specs."""

    name: str
    inputs: Mapping[str, InputSpec]
    outputs: Mapping[str, InputSpec]
    function: Any  # tf.types.experimental.ConcreteFunction


def _spec(name: str, spec: tf.TensorSpec) -> InputSpec:
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else ()
    return InputSpec(name=name, dtype=spec.dtype, shape=shape)


def _dtype_name(dtype: tf.dtypes.DType) -> str:
    return str(types_pb2.DataType.Name(dtype.as_datatype_enum)).removeprefix("DT_").lower()


class LoadedModel:
    """One version of one model, ready to predict from several threads at once."""

    def __init__(self, name: str, base_path: Path) -> None:
        self.name = name
        self.version = find_latest_version(base_path)
        self.path = base_path / str(self.version)
        _log.info("Loading SavedModel %s version %d from %s", name, self.version, self.path)
        self._saved = tf.saved_model.load(str(self.path), tags=["serve"])
        self.signatures: dict[str, Signature] = {}
        for sig_name, function in self._saved.signatures.items():
            inputs = {k: _spec(k, s) for k, s in function.structured_input_signature[1].items()}
            outputs = {k: _spec(k, s) for k, s in function.structured_outputs.items()}
            self.signatures[sig_name] = Signature(sig_name, inputs, outputs, function)
        self.signature_defs = self._read_signature_defs()

    def _read_signature_defs(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
        """The SignatureDefs exactly as stored, which is what TF Serving's metadata API returns."""
        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((self.path / "saved_model.pb").read_bytes())
        for meta_graph in saved.meta_graphs:
            if "serve" in meta_graph.meta_info_def.tags:
                return dict(meta_graph.signature_def)
        return {}

    def signature(self, name: str) -> Signature:
        """The named signature (empty name: serving_default), or TF Serving's FAILED_PRECONDITION."""
        key = name or DEFAULT_SIGNATURE
        try:
            return self.signatures[key]
        except KeyError:
            raise failed_precondition(f'Serving signature key "{key}" not found.') from None

    def validate(self, signature: Signature, inputs: Mapping[str, np.ndarray]) -> None:
        """Check names, dtypes and shapes against the signature, with messages that say what to fix."""
        if set(inputs) != set(signature.inputs):
            extra = sorted(set(inputs) - set(signature.inputs))
            missing = sorted(set(signature.inputs) - set(inputs))
            raise invalid_argument(
                f"input size does not match signature: {len(inputs)}!={len(signature.inputs)} "
                f"len({{{','.join(sorted(inputs))}}}) != len({{{','.join(sorted(signature.inputs))}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
            )
        for position, (name, spec) in enumerate(signature.inputs.items()):
            array = inputs[name]
            if array.dtype != spec.numpy_dtype:
                got = "string" if array.dtype == object else _dtype_name(tf.as_dtype(array.dtype))
                raise invalid_argument(
                    f"Expects arg[{position}] ({name}) to be {spec.type_name} but {got} is provided"
                )
            if len(array.shape) != len(spec.shape) or any(
                want is not None and want != got for want, got in zip(spec.shape, array.shape, strict=False)
            ):
                got_text = "[" + ",".join(str(d) for d in array.shape) + "]"
                raise invalid_argument(
                    f"input tensor {name!r} has shape {got_text}, but signature {signature.name!r} "
                    f"expects {spec.shape_text()} (? = any size)"
                )

    def predict(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
    ) -> dict[str, np.ndarray]:
        """Run the signature on validated NumPy inputs; returns the (filtered) outputs as NumPy."""
        try:
            result = signature.function(**inputs)
        except tf.errors.InvalidArgumentError as exc:
            raise invalid_argument(_kernel_message(exc)) from None
        except tf.errors.OpError as exc:
            raise ServingError(_op_error_code(exc), _kernel_message(exc)) from None
        names = output_filter or list(signature.outputs)
        return {name: result[name].numpy() for name in names}

    def check_output_filter(self, signature: Signature, output_filter: Sequence[str]) -> None:
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                    f"{{{','.join(sorted(signature.outputs))}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)


_PYTHON_WRAPPER_LINES = ("Graph execution error:", "Detected at node", "<stack traces unavailable>")


def _kernel_message(exc: tf.errors.OpError) -> str:
    """The kernel's own words, without the eager runtime's wrapper lines (TF Serving has none)."""
    lines = [line.strip() for line in exc.message.splitlines()]
    kept = [line for line in lines if line and not line.startswith(_PYTHON_WRAPPER_LINES)]
    return " ".join(kept) or exc.message


def _op_error_code(exc: tf.errors.OpError) -> Any:
    import grpc

    names = {code.value[0]: code for code in grpc.StatusCode}
    return names.get(exc.error_code, grpc.StatusCode.INTERNAL)
