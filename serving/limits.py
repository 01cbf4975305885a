"""The largest request body each server × protocol takes, to refuse bigger ones before any load.

Why here: above its limit TorchServe's gRPC frontend resets the stream (the client sees CANCELLED
"Stream removed", not a size error) and its REST frontend answers 413 or drops the connection while
the body is still being sent; neither says what to change. Checking the body size first does.
"""

from __future__ import annotations

from serving import torchserve, triton

__all__ = [
    "REQUEST_LIMITS",
    "TFS_GRPC_MAX_MESSAGE_BYTES",
    "TFS_REST_MAX_BODY_BYTES",
    "RequestTooLargeError",
    "check_request_size",
]

# tfs-compat's (kept here, without TensorFlow imports, and used by its front ends). The real
# tensorflow_model_server's gRPC limit is the same, INT32_MAX (protobuf's own ceiling is 2 GiB); its
# REST API sets no body limit of its own.
TFS_GRPC_MAX_MESSAGE_BYTES = 2**31 - 1
TFS_REST_MAX_BODY_BYTES = 1 << 30  # full-size batched JSON and base64 bodies run to hundreds of MiB
REQUEST_LIMITS: dict[tuple[str, str], int] = {
    ("tfserving", "grpc"): TFS_GRPC_MAX_MESSAGE_BYTES,
    ("tfserving", "rest-json"): TFS_REST_MAX_BODY_BYTES,
    ("tfserving", "rest-binary"): TFS_REST_MAX_BODY_BYTES,
    ("torchserve", "grpc"): torchserve.MAX_MESSAGE_BYTES,
    ("torchserve", "rest-json"): torchserve.MAX_MESSAGE_BYTES,
    ("torchserve", "rest-binary"): torchserve.MAX_MESSAGE_BYTES,
    # Triton's own, however it is started: Content-Length read as a signed 32-bit int, gRPC INT32_MAX.
    ("triton", "grpc"): triton.MAX_MESSAGE_BYTES,
    ("triton", "rest-json"): triton.MAX_MESSAGE_BYTES,
    ("triton", "rest-binary"): triton.MAX_MESSAGE_BYTES,
}


class RequestTooLargeError(ValueError):
    """A request body above the server's limit; the message names the limit and what to change."""


def check_request_size(server: str, protocol: str, body_bytes: int, batch: int | None = None) -> None:
    """Raise RequestTooLargeError when `body_bytes` is more than `server` takes over `protocol`."""
    try:
        limit = REQUEST_LIMITS[server, protocol]
    except KeyError:
        known = sorted(REQUEST_LIMITS)
        raise ValueError(f"unknown server/protocol {server}/{protocol}: choose from {known}") from None
    if body_bytes <= limit:
        return
    fits = f"; batch {batch * (limit - 1024) // body_bytes} fits" if batch else ""  # 1 KiB for framing
    raise RequestTooLargeError(
        f"{server} {protocol}: a request of {body_bytes:,} bytes{f' (batch {batch})' if batch else ''} is "
        f"over the server's limit of {limit:,} bytes{fits}: send a smaller batch"
        + (" or a binary protocol" if protocol == "rest-json" else "")
    )
