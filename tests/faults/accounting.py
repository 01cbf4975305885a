"""Did a run keep every request? Records expected (from the seeded schedule) against records found.

The open-loop schedule is fixed before the run by (arrival kind, rate per process, seed, stream):
`loadtest.make_arrivals(...)` yields the very offsets the engine launched, so the number of arrivals
due in [start, measure_end) is known exactly without trusting the generator's own counters. Each
stream's records must then be exactly seq 0..n-1, once each: a missing seq is a lost record, a
repeated one a duplicate. Read through the format's own reader (`loadtest.read_records`).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path

from loadtest import RunHeader, read_header, read_records, stream_seed
from loadtest._arrivals import make_arrivals
from loadtest._schema import run_streams

NS = 1_000_000_000
TIMEOUT_SLACK_S = 0.05  # a timer fires a little after its due time


def expected_arrivals(header: RunHeader) -> int:
    """Arrivals the stream's schedule put in [start, measure_end): what a complete stream holds."""
    settings = header.settings
    rate = settings["rate"] / settings["processes"]
    start_ns = header.measure_start_ns - round(settings["warmup_s"] * NS)
    limit = header.measure_end_ns - start_ns
    count = 0
    arrivals = make_arrivals(settings["arrival"], rate, stream_seed(settings["seed"], header.stream))
    for offset in arrivals.offsets_ns():
        if offset >= limit:
            return count
        count += 1
    raise AssertionError("unreachable: arrivals never end")


@dataclass
class RunAudit:
    """Records expected vs found in one run directory, by status, with the errors each status carried."""

    expected: int = 0
    found: int = 0
    missing: int = 0  # seqs of the schedule with no record
    duplicated: int = 0  # records beyond the first for one (stream, seq)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)  # error text -> count
    ok_latencies_ms: list[float] = field(default_factory=list)
    ok_beyond_timeout: int = 0  # ok records whose service time exceeds the timeout: must stay 0

    @property
    def complete(self) -> bool:
        return self.found == self.expected and not self.missing and not self.duplicated


def _kind(error: str) -> str:
    """An error text without the numbers that differ per request (addresses, ports, times)."""
    words = []
    for word in error.split():
        digits = sum(ch.isdigit() for ch in word)
        words.append("N" if digits and digits >= len(word) // 2 else word)
    return " ".join(words)[:120]


def audit(run_dir: str | Path) -> RunAudit:
    result = RunAudit()
    for path in run_streams(run_dir):
        header = read_header(path)
        expected = expected_arrivals(header)
        timeout_ns = round((header.settings["timeout_s"] + TIMEOUT_SLACK_S) * NS)
        seqs: collections.Counter[int] = collections.Counter()
        for record in read_records(path):
            seqs[record.seq] += 1
            result.statuses[record.status] += 1
            if record.status == "ok":
                result.ok_latencies_ms.append((record.done_ns - record.scheduled_ns) / 1e6)
                if record.done_ns - record.sent_ns > timeout_ns:
                    result.ok_beyond_timeout += 1
            elif record.error:
                result.errors[f"{record.status}: {_kind(record.error)}"] += 1
        result.expected += expected
        result.found += sum(seqs.values())
        result.duplicated += sum(n - 1 for n in seqs.values() if n > 1)
        result.missing += sum(1 for seq in range(expected) if seq not in seqs)
    return result
