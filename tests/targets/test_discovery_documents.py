"""How the served model's input width is read from what each server returns: TF Serving's metadata
document (serving_default's one input, last dimension) and TorchServe's description list (our
handler's describe_handle JSON in `customizedMetadata`). Documents as the servers write them; the
real servers answer in test_target_bad_input.py and the Locust tests."""

from __future__ import annotations

import json

import pytest

from loadtest._discovery import DescriptionUnavailable, _tfserving_shape, _torchserve_shape

URL = "http://box:8501/v1/models/linear/metadata"


def tensor(*dims: int) -> dict:
    return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims],
                                                  "unknown_rank": False}, "name": "x:0"}


def metadata(signatures: dict) -> dict:
    return {"model_spec": {"name": "linear", "version": "1", "signature_name": ""},
            "metadata": {"signature_def": {"signature_def": signatures}}}


@pytest.mark.parametrize(
    ("signatures", "expected"),
    [
        ({"serving_default": {"inputs": {"x": tensor(-1, 1024)},
                              "outputs": {"class_ids": tensor(-1), "scores": tensor(-1, 64)}}}, (1024, 64)),
        ({"serving_default": {"inputs": {"x": tensor(-1, 8)}, "outputs": {"class_ids": tensor(-1)}}},
         (8, None)),
        # an unknown width (-1) or two inputs: the width cannot be told
        ({"serving_default": {"inputs": {"x": tensor(-1, -1)}, "outputs": {}}}, (None, None)),
        ({"serving_default": {"inputs": {"a": tensor(-1, 8), "b": tensor(-1, 8)}, "outputs": {}}},
         (None, None)),
        ({"serving_default": {"inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": {"unknown_rank": True}}},
                              "outputs": {}}}, (None, None)),
    ],
)
def test_tf_serving_width_is_the_serving_default_inputs_last_dimension(
    signatures: dict, expected: tuple
) -> None:
    assert _tfserving_shape(metadata(signatures), URL) == expected


def test_a_model_without_serving_default_says_which_signatures_it_has() -> None:
    expected = r"no 'serving_default' signature \(it has \['predict_bytes'\]\)"
    with pytest.raises(DescriptionUnavailable, match=expected):
        _tfserving_shape(metadata({"predict_bytes": {"inputs": {}, "outputs": {}}}), URL)


def test_a_document_that_is_not_tf_serving_metadata_is_named() -> None:
    with pytest.raises(DescriptionUnavailable, match="is not a TF Serving model metadata document"):
        _tfserving_shape({"models": []}, URL)


@pytest.mark.parametrize(
    ("custom", "expected"),
    [
        (json.dumps({"features": 1024, "classes": 64}), (1024, 64)),
        ({"features": 8, "classes": 4}, (8, 4)),
        (None, (None, None)),  # a handler without describe_handle
        ("", (None, None)),
        ("not json", (None, None)),
        (json.dumps({"features": -3}), (None, None)),
    ],
)
def test_torchserve_width_comes_from_the_handlers_description(custom: object, expected: tuple) -> None:
    version = {"modelName": "linear", "modelVersion": "1", "workers": []}
    if custom is not None:
        version["customizedMetadata"] = custom
    assert _torchserve_shape([version], "http://box:8081/models/linear?customized=true") == expected


def test_a_torchserve_answer_that_is_not_a_model_description_is_named() -> None:
    with pytest.raises(DescriptionUnavailable, match="is not a TorchServe model description"):
        _torchserve_shape({"code": 200}, "http://box:8081/models/linear?customized=true")
