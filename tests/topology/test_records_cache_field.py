"""Records carry `cache` since version 2 of the requests format; version 1 streams are still read."""

from __future__ import annotations

from pathlib import Path

import orjson

from loadtest import SCHEMA_VERSION, RecordWriter, RequestRecord, RunHeader, read_run
from loadtest._transports import cache_status


def test_records_round_trip_their_cache_status(tmp_path: Path) -> None:
    header = RunHeader(run="r", stream=0, settings={}, measure_start_ns=0, measure_end_ns=100)
    with RecordWriter(tmp_path / "requests.0.jsonl", header) as writer:
        for seq, cache in enumerate(("hit", "miss", "none")):
            writer.add(RequestRecord(seq, 0, "tfserving", "rest-json", 1, seq, seq, seq + 5, 10, 20,
                                     "ok", 200, None, cache))
    assert SCHEMA_VERSION == 2
    assert list(read_run(tmp_path).records["cache"]) == ["hit", "miss", "none"]


def test_version_1_streams_read_as_uncached(tmp_path: Path) -> None:
    header = {"schema": "inferload.requests", "schema_version": 1, "run": "old", "stream": 0, "settings": {},
              "measure_start_ns": 0, "measure_end_ns": 100}
    record = {"seq": 0, "stream": 0, "server": "torchserve", "protocol": "grpc", "batch": 1,
              "scheduled_ns": 1, "sent_ns": 2, "done_ns": 9, "bytes_out": 4, "bytes_in": 8, "status": "ok",
              "code": 0, "error": None}
    (tmp_path / "requests.jsonl").write_bytes(orjson.dumps(header) + b"\n" + orjson.dumps(record) + b"\n")
    records = read_run(tmp_path).records
    assert list(records["cache"]) == ["none"] and list(records["status"]) == ["ok"]


def test_the_cache_header_maps_to_hit_miss_or_none() -> None:
    table = {"HIT": "hit", "MISS": "miss", "EXPIRED": "miss", "BYPASS": "miss", "": "none", None: "none"}
    assert {header: cache_status(header) for header in table} == table
