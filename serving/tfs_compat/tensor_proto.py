"""TensorProto <-> NumPy for the gRPC API, without going through TensorFlow's eager runtime.

Inputs may carry their values as `tensor_content` (raw little-endian bytes, decoded with
np.frombuffer) or in the typed repeated fields (`float_val`, `int64_val`, `string_val`, ...), a single
value there being broadcast as TensorFlow does. Outputs are written the way TF Serving writes them:
typed fields (`Tensor::AsProtoField`) by default, `tensor_content` with
`--enable_serialization_as_tensor_content` (`Tensor::AsProtoTensorContent`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from serving.tfs_compat.errors import invalid_argument

__all__ = ["tensor_from_proto", "tensor_to_proto"]

# DataType -> (NumPy dtype, repeated field holding its values). Half types live in half_val as ints.
_TYPES: dict[int, tuple[np.dtype[Any], str]] = {
    types_pb2.DT_FLOAT: (np.dtype("<f4"), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype("<f8"), "double_val"),
    types_pb2.DT_INT32: (np.dtype("<i4"), "int_val"),
    types_pb2.DT_INT16: (np.dtype("<i2"), "int_val"),
    types_pb2.DT_INT8: (np.dtype("i1"), "int_val"),
    types_pb2.DT_UINT8: (np.dtype("u1"), "int_val"),
    types_pb2.DT_INT64: (np.dtype("<i8"), "int64_val"),
    types_pb2.DT_UINT32: (np.dtype("<u4"), "uint32_val"),
    types_pb2.DT_UINT64: (np.dtype("<u8"), "uint64_val"),
    types_pb2.DT_BOOL: (np.dtype("?"), "bool_val"),
}
_DTYPE_TO_ENUM = {dtype: enum for enum, (dtype, _) in _TYPES.items() if enum != types_pb2.DT_INT16}


def _type_name(dtype: int) -> str:
    try:
        return str(types_pb2.DataType.Name(dtype))
    except ValueError:
        return f"DataType({dtype})"


def tensor_from_proto(name: str, proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode one request tensor; errors name the input and what is inconsistent."""
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
        raise invalid_argument(f"input tensor {name!r}: shape {dims} must be fully defined")
    count = int(np.prod(dims, dtype=np.int64))
    if proto.dtype == types_pb2.DT_STRING:
        values = list(proto.string_val)
        if len(values) == 1 and count > 1:
            values = values * count
        if len(values) != count:
            raise invalid_argument(
                f"input tensor {name!r}: shape {dims} needs {count} string_val entries, got {len(values)}"
            )
        array = np.empty(count, dtype=object)
        array[:] = values
        return array.reshape(dims)
    if proto.dtype not in _TYPES:
        raise invalid_argument(
            f"input tensor {name!r}: dtype {_type_name(proto.dtype)} is not supported "
            f"(supported: {', '.join(_type_name(t) for t in _TYPES)}, DT_STRING)"
        )
    dtype, field = _TYPES[proto.dtype]
    if proto.tensor_content:
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise invalid_argument(
                f"input tensor {name!r}: tensor_content has {len(proto.tensor_content)} bytes, but shape "
                f"{dims} of {_type_name(proto.dtype)} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(dims)
    values = getattr(proto, field)
    if len(values) == count:
        return np.asarray(values, dtype=dtype).reshape(dims)
    if len(values) == 1 and count > 0:
        return np.full(dims, values[0], dtype=dtype)
    raise invalid_argument(
        f"input tensor {name!r}: shape {dims} needs {count} values, but {field} has {len(values)} "
        "(and tensor_content is empty)"
    )


def tensor_to_proto(array: np.ndarray, *, as_content: bool) -> tensor_pb2.TensorProto:
    """Encode one response tensor like TF's AsProtoField (as_content=False) or AsProtoTensorContent."""
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
    )
    if array.dtype == object:
        return tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=array.ravel().tolist()
        )
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    enum = _DTYPE_TO_ENUM.get(np.dtype(dtype))
    if enum is None:
        raise invalid_argument(f"cannot encode output tensor of NumPy dtype {array.dtype}")
    proto = tensor_pb2.TensorProto(dtype=enum, tensor_shape=shape)
    if as_content:
        proto.tensor_content = np.ascontiguousarray(array, dtype=dtype).tobytes()
    else:
        getattr(proto, _TYPES[enum][1]).extend(array.ravel().tolist())
    return proto
