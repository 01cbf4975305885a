"""The --batching_parameters_file parser reads TF Serving's text format and rejects anything else by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.tfs_compat.batching_config import (
    BatchingConfigError,
    BatchingParameters,
    load_batching_parameters,
    parse_batching_parameters,
)

TF_SERVING_EXAMPLE = """
# the example from TF Serving's batching guide
max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads { value: 8 }
"""


def test_tf_serving_documented_example_parses() -> None:
    params = parse_batching_parameters(TF_SERVING_EXAMPLE)
    assert (
        params.max_batch_size,
        params.batch_timeout_micros,
        params.max_enqueued_batches,
        params.num_batch_threads,
    ) == (
        128,
        0,
        1_000_000,
        8,
    )


def test_repeated_allowed_batch_sizes_and_padding_flag() -> None:
    params = parse_batching_parameters(
        "max_batch_size { value: 32 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 32\n"
        "pad_variable_length_inputs: true\n"
    )
    assert params.allowed_batch_sizes == (8, 32)
    assert params.pad_variable_length_inputs is True


def test_empty_file_gives_tf_serving_defaults() -> None:
    assert parse_batching_parameters("") == BatchingParameters()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "max_batch_size { value: 32 }\nmax_batch_sise { value: 4 }",
            "batching.config:2: .*unknown field .max_batch_sise.",
        ),
        ("max_batch_size { value: thirty }", "expected an integer"),
        ("max_batch_size: 32", "wrapper field"),
        ("max_batch_size { value: 32 ", "cannot parse"),
        ("pad_variable_length_inputs: maybe", "expected true or false"),
        ("max_batch_size { value: 0 }", "max_batch_size must be >= 1"),
        ("max_batch_size { value: 16 }\nallowed_batch_sizes: 8", "must equal max_batch_size"),
        ("max_batch_size { value: 16 }\nallowed_batch_sizes: 16\nallowed_batch_sizes: 8", "increasing"),
    ],
)
def test_bad_files_are_rejected_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(BatchingConfigError, match=message):
        parse_batching_parameters(text, source="batching.config")


def test_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 8 }\n\nbatch_timeout { value: 5 }\n")
    with pytest.raises(BatchingConfigError) as info:
        load_batching_parameters(path)
    assert f"{path}:3" in str(info.value) and "batch_timeout" in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BatchingConfigError, match="cannot read --batching_parameters_file"):
        load_batching_parameters(tmp_path / "absent.config")
