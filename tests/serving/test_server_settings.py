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
    ],
)
def test_bad_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        ServerSettings(**{field: value})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="torchserve_worker\\b"):
        ServerSettings(torchserve_worker=2)


def test_round_trips_through_a_dict() -> None:
    settings = ServerSettings(torchserve_batch_size=8, tfserving_batching=True)
    assert ServerSettings(**settings.model_dump()) == settings
