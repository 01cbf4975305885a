"""TF Serving's `--batching_parameters_file` (text-format `BatchingParameters` proto), parsed strictly.

The proto (tensorflow_serving/servables/tensorflow/session_bundle_config.proto) is not shipped in the
tensorflow-serving-api wheel, so we read its small text format ourselves. Anything we do not
understand is an error naming the line, because a silently ignored typo would change what a
benchmark measures.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BatchingParameters",
    "BatchingConfigError",
    "parse_batching_parameters",
    "load_batching_parameters",
]


class BatchingConfigError(ValueError):
    """The batching parameters file is not valid; the message names the file, line and fix."""


@dataclass(frozen=True)
class BatchingParameters:
    """Server-side batching settings; defaults are TF Serving's BasicBatchScheduler options."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))  # schedulable CPUs
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise BatchingConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise BatchingConfigError(f"batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}")
        sizes = self.allowed_batch_sizes
        if sizes:
            if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
                raise BatchingConfigError(
                    f"allowed_batch_sizes must be positive and increasing, got {list(sizes)}"
                )
            if sizes[-1] != self.max_batch_size:
                raise BatchingConfigError(
                    f"the last entry of allowed_batch_sizes ({sizes[-1]}) must equal max_batch_size "
                    f"({self.max_batch_size}), as TF Serving requires"
                )


# Wrapper fields (`name { value: N }`) and their Python type.
_WRAPPED_INTS = {
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "max_execution_batch_size",
}
_WRAPPED_BOOLS = {"enable_large_batch_splitting"}
_WRAPPED_IGNORED = {"thread_pool_name"}  # accepted for compatibility; we run one pool per batcher
_WRAPPED = re.compile(r"^(\w+)\s*\{\s*value\s*:\s*(\S+?)\s*\}$")
_SCALAR = re.compile(r"^(\w+)\s*:\s*(\S+)$")
_BOOL_WORDS = {"true": True, "false": False, "True": True, "False": False, "1": True, "0": False}


def _int(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BatchingConfigError(f"{where}: expected an integer, got {text!r}") from None


def _bool(text: str, where: str) -> bool:
    if text.strip('"') not in _BOOL_WORDS:
        raise BatchingConfigError(f"{where}: expected true or false, got {text!r}")
    return _BOOL_WORDS[text.strip('"')]


def parse_batching_parameters(text: str, source: str = "<batching parameters>") -> BatchingParameters:
    """Parse TF Serving's text format, e.g. `max_batch_size { value: 32 }`, one field per line."""
    values: dict[str, object] = {}
    allowed: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}: {raw.strip()!r}"
        wrapped, scalar = _WRAPPED.match(line), _SCALAR.match(line)
        if wrapped:
            name, value = wrapped.groups()
            if name in _WRAPPED_INTS:
                values[name] = _int(value, where)
            elif name in _WRAPPED_BOOLS:
                values[name] = _bool(value, where)
            elif name not in _WRAPPED_IGNORED:
                raise BatchingConfigError(f"{where}: unknown field {name!r}; {_known_fields()}")
        elif scalar:
            name, value = scalar.groups()
            if name == "allowed_batch_sizes":
                allowed.append(_int(value, where))
            elif name == "pad_variable_length_inputs":
                values[name] = _bool(value, where)
            elif name in _WRAPPED_INTS | _WRAPPED_BOOLS:
                raise BatchingConfigError(
                    f"{where}: {name} is a wrapper field: write `{name} {{ value: {value} }}`"
                )
            else:
                raise BatchingConfigError(f"{where}: unknown field {name!r}; {_known_fields()}")
        else:
            raise BatchingConfigError(
                f"{where}: cannot parse; expected `name {{ value: N }}` or `name: value` on one line"
            )
    if allowed:
        values["allowed_batch_sizes"] = tuple(allowed)
    return BatchingParameters(**values)  # type: ignore[arg-type]


def load_batching_parameters(path: str | Path) -> BatchingParameters:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BatchingConfigError(f"cannot read --batching_parameters_file {path}: {exc.strerror}") from None
    return parse_batching_parameters(text, source=str(path))


def _known_fields() -> str:
    names = sorted(
        _WRAPPED_INTS
        | _WRAPPED_BOOLS
        | _WRAPPED_IGNORED
        | {"allowed_batch_sizes", "pad_variable_length_inputs"}
    )
    return "known fields: " + ", ".join(names)
