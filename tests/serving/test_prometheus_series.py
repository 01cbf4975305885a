"""parse_metrics keeps what window deltas need from the servers' real exposition text: every counter,
gauge and histogram _sum/_count per label set, never buckets, `_created` or host labels.

The texts under fixtures/metrics/ were captured from the running servers (small model) by
fixtures/capture_metrics.py, with the number of requests sent per protocol beside each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.metrics_file import ServerSample, parse_series_key, series_key
from serving.prometheus import parse_metrics

FIXTURES = Path(__file__).parent / "fixtures" / "metrics"


def _captured(name: str) -> tuple[ServerSample, dict]:
    series = parse_metrics((FIXTURES / f"{name}.prom").read_text())
    sent = json.loads((FIXTURES / f"{name}.json").read_text())
    sample = ServerSample(0, sent["server"], sent["kind"], "none", None, None, None, series)
    return sample, sent


def test_tfs_compat_counts_each_predict_once_per_entry_point_in_microseconds() -> None:
    sample, sent = _captured("tfs-compat")
    rest = sent["sent"]["rest-json"] + sent["sent"]["rest-binary"]
    grpc = sent["sent"]["grpc"]
    latency = ":tensorflow:serving:request_latency"
    assert sample.total(f"{latency}_count", API="predict", entrypoint="REST") == rest
    assert sample.total(f"{latency}_count", API="Predict", entrypoint="GRPC") == grpc
    assert sample.total(":tensorflow:serving:runtime_latency_count", API="Predict") == rest + grpc
    # microseconds, as TF Serving: a predict of the small model takes more than 10 us and less than 10 s
    mean_us = sample.total(f"{latency}_sum", API="Predict") / grpc  # type: ignore[operator]
    assert 10 < mean_us < 10_000_000
    # every request, status polls included, by model and status only (TF Serving's labels)
    assert sample.total(":tensorflow:serving:request_count_total", status="OK") >= rest + grpc  # type: ignore[operator]
    assert sample.label_values(":tensorflow:serving:request_count_total", "status") == {"OK"}


def test_tfs_compat_without_batching_exports_no_queue() -> None:
    sample, _ = _captured("tfs-compat")
    assert sample.total(":tensorflow:serving:batching_session:queuing_latency_count") is None


def test_tfs_compat_with_batching_times_each_request_in_the_queue() -> None:
    sample, sent = _captured("tfs-compat-batching")
    requests = sum(sent["sent"].values())
    queue = ":tensorflow:serving:batching_session:queuing_latency"
    assert sample.total(f"{queue}_count", thread_pool_name="batch_threads") == requests
    assert sample.total(f"{queue}_sum") > 0  # type: ignore[operator]
    # the session run goes through the queue, so it takes at least as long in total
    assert sample.total(":tensorflow:serving:runtime_latency_sum") >= sample.total(f"{queue}_sum")  # type: ignore[operator]


def test_torchserve_counts_every_inference_and_times_rest_ones() -> None:
    sample, sent = _captured("torchserve")
    requests = sum(sent["sent"].values())
    assert sample.total("ts_inference_requests_total", model_name="linear") == requests
    # TorchServe 0.12 adds to the latency counters in RestJob only: gRPC requests are not timed
    assert sample.total("ts_queue_latency_microseconds_total", model_name="linear") > 0  # type: ignore[operator]
    inference = sample.total("ts_inference_latency_microseconds_total", model_name="linear")
    assert inference > sample.total("ts_queue_latency_microseconds_total")  # type: ignore[operator]


@pytest.mark.parametrize("name", ["tfs-compat", "tfs-compat-batching", "torchserve"])
def test_no_buckets_created_timestamps_or_host_labels_are_kept(name: str) -> None:
    sample, _ = _captured(name)
    for key in sample.metrics:
        series, labels = parse_series_key(key)
        assert not series.endswith(("_bucket", "_created")), key
        assert not {"le", "quantile", "hostname", "Hostname"} & set(labels), key
        assert not series.startswith(("python_", "process_")), key


@pytest.mark.parametrize(
    ("name", "labels", "key"),
    [
        ("up", {}, "up"),
        ("a_total", {"b": "2", "a": "1"}, 'a_total{a="1",b="2"}'),
        (":tensorflow:serving:x", {"API": "Predict"}, ':tensorflow:serving:x{API="Predict"}'),
        ("q", {"v": 'say "hi"\\ \n'}, 'q{v="say \\"hi\\"\\\\ \\n"}'),
    ],
)
def test_series_keys_are_prometheus_spelling_and_round_trip(
    name: str, labels: dict[str, str], key: str
) -> None:
    assert series_key(name, labels) == key
    assert parse_series_key(key) == (name, labels)


def test_series_with_equal_keys_after_dropping_host_labels_are_added() -> None:
    text = 'c_total{hostname="a",m="x"} 1\nc_total{hostname="b",m="x"} 2\n'
    assert parse_metrics("# TYPE c counter\n" + text) == {'c_total{m="x"}': 3.0}


def test_text_that_is_not_prometheus_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_metrics("this is not { prometheus")
