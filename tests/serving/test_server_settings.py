"""ServerSettings: the defaults the experiments assume, and clear refusals of bad values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.settings import ServerSettings


def test_defaults() -> None:
    settings = ServerSettings()
    assert settings.model_dump() == {
        "torchserve_workers": 1,
        "torchserve_batch_size": 1,
        "torchserve_max_batch_delay_ms": 5,
        "torchserve_job_queue_size": 1000,
        "torchserve_decode_input_request": False,
        "tfserving_batching": False,
        "tfserving_max_batch_size": 32,
        "tfserving_batch_timeout_us": 1000,
        "tfserving_num_batch_threads": 2,
        "tfserving_max_enqueued_batches": 1000,
        "tfserving_kind": "auto",
        "tls": None,
        "torchserve_token_auth": False,
        "triton_kind": "auto",
        "triton_instances": 1,
        "triton_max_batch_size": 1024,
        "triton_dynamic_batching": False,
        "triton_max_queue_delay_us": 0,
        "triton_preferred_batch_sizes": (),
        "triton_response_cache": False,
        "triton_cache_mb": 256,
        "cpus": None,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("torchserve_workers", 0),
        ("torchserve_batch_size", -1),
        ("torchserve_max_batch_delay_ms", -5),
        ("tfserving_max_batch_size", 0),
        ("tfserving_num_batch_threads", 0),
        ("tfserving_kind", "docker"),
        ("torchserve_workers", "many"),
        ("triton_instances", 0),
        ("triton_kind", "docker"),
        ("triton_max_batch_size", 0),
    ],
)
def test_bad_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        ServerSettings(**{field: value})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"triton_preferred_batch_sizes": (4,)}, "needs triton_dynamic_batching"),
        ({"triton_dynamic_batching": True, "triton_preferred_batch_sizes": (64,),
          "triton_max_batch_size": 32}, "outside 1..triton_max_batch_size"),
        ({"triton_dynamic_batching": True, "triton_preferred_batch_sizes": (4, 4)}, "lists a size twice"),
    ],
)
def test_triton_batching_that_triton_would_refuse_is_refused_here(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServerSettings(**fields)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="torchserve_worker\\b"):
        ServerSettings(torchserve_worker=2)


def test_round_trips_through_a_dict() -> None:
    settings = ServerSettings(torchserve_batch_size=8, tfserving_batching=True)
    assert ServerSettings(**settings.model_dump()) == settings
