"""The vocabulary every format records and every stage checks against, defined once: the servers, the
protocols, and the kinds of TF Serving and of Triton that can answer (records' `server_kind`, cell.json's
and the manifest's `tfserving_kind`). A new server or kind is added here, and every stage learns it."""

from __future__ import annotations

from typing import Literal, get_args

Server = Literal["tfserving", "torchserve", "triton"]  # triton: Triton, or any Open Inference Protocol server
Protocol = Literal["rest-json", "rest-binary", "grpc"]
# what answered TF Serving's APIs: the real binary, or our compatible server on the TF runtime
TfServingKind = Literal["tensorflow_model_server", "tfs-compat"]
# what answered the `triton` lines: the nvidia-pytriton wheel's tritonserver, one on PATH; an external V2
# server carries its user's label instead (`v2` when unlabelled)
TritonKind = Literal["pytriton", "tritonserver"]

SERVERS: tuple[Server, ...] = get_args(Server)
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
TFSERVING_KINDS: tuple[TfServingKind, ...] = get_args(TfServingKind)
TRITON_KINDS: tuple[TritonKind, ...] = get_args(TritonKind)
