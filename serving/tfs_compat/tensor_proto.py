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

__all__ = ["split_tensor_contents", "tensor_from_proto", "tensor_to_proto"]

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


class _Unusual(Exception):
    """Wire content the walker leaves to the protobuf library (groups, merged or repeated fields)."""


def _varint(wire: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(wire) or shift > 63:
            raise _Unusual
        byte = wire[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(wire: memoryview, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(field number, tag start, value start, end) of each length-delimited field in wire[start:end]."""
    found = []
    pos = start
    while pos < end:
        tag_start = pos
        key, pos = _varint(wire, pos)
        kind = key & 7
        if kind == 0:
            _, pos = _varint(wire, pos)
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        elif kind == 2:
            length, pos = _varint(wire, pos)
            found.append((key >> 3, tag_start, pos, pos + length))
            pos += length
        else:
            raise _Unusual
    if pos != end:
        raise _Unusual
    return found


def _length_delimited(number: int, payload: bytes) -> bytes:
    out = bytearray()
    for value in ((number << 3) | 2, len(payload)):
        while value > 0x7F:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out) + payload


def split_tensor_contents(wire: bytes, inputs_field: int = 2) -> tuple[bytes, dict[str, memoryview]]:
    """The request without its inputs' `tensor_content`, and each content as a view into `wire`.

    Why: at batch 32-64 the content is tens of MiB, and the Python protobuf runtime copies it twice
    on the way to a tensor (parsing copies the whole wire, reading the field copies it again). Parsing
    the request without it and wrapping the view costs no copy at all. The request map `inputs_field`
    (PredictRequest.inputs = 2) holds entries {1: key, 2: TensorProto}; tensor_content is field 4.
    Wire this simple walk does not read exactly as protobuf would (a value or content given twice,
    groups, a bad length) comes back whole with no views: the message then decodes it.
    """
    view = memoryview(wire)
    contents: dict[str, memoryview] = {}
    parts: list[bytes | memoryview] = []
    done = 0  # wire[:done] is accounted for in parts
    try:
        for number, tag_start, start, end in _fields(view, 0, len(view)):
            if number != inputs_field:
                continue
            entry = _fields(view, start, end)
            keys = [field for field in entry if field[0] == 1]
            values = [field for field in entry if field[0] == 2]
            if len(keys) > 1 or len(values) > 1:
                raise _Unusual
            key = bytes(view[keys[0][2] : keys[0][3]]).decode() if keys else ""
            tensor = _fields(view, *values[0][2:]) if values else []
            content = [field for field in tensor if field[0] == 4]
            if len(content) > 1:
                raise _Unusual
            contents.pop(key, None)  # a repeated key: the last entry wins, as in the message's map
            if not content:
                continue
            _, value_tag, value_start, value_end = values[0]
            _, content_tag, content_start, content_end = content[0]
            contents[key] = view[content_start:content_end]
            value = bytes(view[value_start:content_tag]) + bytes(view[content_end:value_end])
            rest = bytes(view[start:value_tag]) + _length_delimited(2, value) + bytes(view[value_end:end])
            parts += [view[done:tag_start], _length_delimited(inputs_field, rest)]
            done = end
    except (_Unusual, UnicodeDecodeError):
        return wire, {}
    if not contents:
        return wire, {}
    parts.append(view[done:])
    return b"".join(parts), contents


def tensor_from_proto(
    name: str, proto: tensor_pb2.TensorProto, content: memoryview | None = None
) -> np.ndarray:
    """Decode one request tensor; errors name the input and what is inconsistent.

    `content`, from split_tensor_contents(), stands for proto.tensor_content (then empty in `proto`);
    the array is a read-only view of the request's wire bytes.
    """
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
    # Read once: each attribute access copies the whole field into a new bytes object.
    if content is None:
        content = proto.tensor_content
    if content:
        if len(content) != count * dtype.itemsize:
            raise invalid_argument(
                f"input tensor {name!r}: tensor_content has {len(content)} bytes, but shape "
                f"{dims} of {_type_name(proto.dtype)} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(content, dtype=dtype).reshape(dims)
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
