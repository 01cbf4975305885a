"""A format's older version that this inferload still reads comes back typed, with what the newer
version added set to what the older one meant (never to the reader's own defaults)."""

from __future__ import annotations

import json
from pathlib import Path

from format_cases import CASES

from inferload_formats import Manifest

MANIFEST = next(case for case in CASES if case.name == "manifest.json")


def test_a_version_1_manifest_reads_with_the_failure_limit_its_runs_were_judged_with(tmp_path: Path) -> None:
    """Version 2 added `slo.max_failure_rate`; every version 1 run was judged with 1 %."""
    path, written = MANIFEST.write(tmp_path)
    document = json.loads(path.read_text())
    document["schema_version"] = 1
    del document["slo"]["max_failure_rate"]
    path.write_text(json.dumps(document))
    read = Manifest.read(path)
    assert read.schema_version == 1
    assert read.slo.max_failure_rate == 0.01
    assert read.slo == written.slo


def test_a_records_header_from_before_the_clock_offset_reads_it_as_unknown(tmp_path: Path) -> None:
    """`wall_minus_monotonic_ns` came later within version 2: an older header has none (None), never
    the reading host's own offset."""
    records = next(case for case in CASES if case.name == "requests.jsonl")
    path, (header, _) = records.write(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    first = json.loads(lines[0])
    del first["wall_minus_monotonic_ns"]
    path.write_text(json.dumps(first) + "\n" + "".join(lines[1:]))
    read, _ = records.read(path)
    assert read.wall_minus_monotonic_ns is None
    assert read.hostname == header.hostname and read.stream == header.stream
