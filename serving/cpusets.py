"""CPU sets: which cores the servers get and which the load generator gets, checked before anything starts.

Why: on a small machine the generator and the server it measures fight for the same cores, and the
generator's lateness (and the server's latency) then measure that fight. Pinning both to disjoint
sets (`taskset` for servers, `sched_setaffinity` in each load process; children inherit it) keeps
them apart. Sets are written as Linux CPU lists ("0", "0-2,5"), as in /proc/<pid>/status.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SPLIT_MIN_CPUS",
    "CpuPlan",
    "CpuSetError",
    "available_cpus",
    "check_available",
    "default_plan",
    "format_cpu_list",
    "parse_cpu_list",
    "resolve_plan",
]

DEFAULT_SPLIT_MIN_CPUS = 4  # below this a default split would starve one side: stay unpinned


class CpuSetError(ValueError):
    """A CPU set that cannot be used; the message says which set and how to fix it."""


def parse_cpu_list(text: str, *, what: str = "CPU set") -> tuple[int, ...]:
    """`"0-2,5"` -> (0, 1, 2, 5): sorted, distinct. Raises CpuSetError naming `what` on bad syntax."""
    cpus: set[int] = set()
    parts = [part.strip() for part in str(text).split(",")]
    if not text or not str(text).strip() or any(not part for part in parts):
        raise CpuSetError(f"{what} {text!r} is empty or has an empty item: write CPU numbers like 0-2,5")
    for part in parts:
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise CpuSetError(
                f"{what} {text!r}: {part!r} is not a CPU number or range: write e.g. 0-2,5"
            ) from None
        if first < 0 or last < first:
            raise CpuSetError(f"{what} {text!r}: range {part!r} is backwards or negative: write low-high")
        cpus.update(range(first, last + 1))
    return tuple(sorted(cpus))


def format_cpu_list(cpus: Iterable[int]) -> str:
    """(0, 1, 2, 5) -> `"0-2,5"` (the form taskset and /proc/<pid>/status use)."""
    ordered = sorted(set(cpus))
    ranges: list[str] = []
    start = prev = None
    for cpu in ordered:
        if prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            ranges.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = cpu
    if start is not None:
        ranges.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(ranges)


def available_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on (its affinity: a container or cgroup may allow fewer)."""
    return tuple(sorted(os.sched_getaffinity(0)))


def check_available(cpus: Collection[int], *, what: str, available: Collection[int] | None = None) -> None:
    """Refuse a set naming CPUs this machine (or this process's affinity) does not have."""
    have = tuple(sorted(available if available is not None else available_cpus()))
    missing = sorted(set(cpus) - set(have))
    if missing:
        raise CpuSetError(
            f"{what} names CPU(s) {format_cpu_list(missing)} that this machine does not offer "
            f"(available: {format_cpu_list(have)}): choose CPUs from {format_cpu_list(have)}"
        )
    if not cpus:
        raise CpuSetError(f"{what} is empty: give at least one CPU from {format_cpu_list(have)}")


@dataclass(frozen=True)
class CpuPlan:
    """Where servers and load processes run; None for a side means unpinned (any CPU)."""

    servers: tuple[int, ...] | None
    load: tuple[int, ...] | None
    source: str  # "given" (matrix or flags), "default" (the automatic split) or "none" (unpinned)

    def describe(self) -> dict[str, object]:
        """As recorded in manifest.json: CPU lists as text, plus what the machine offered."""
        return {
            "servers": format_cpu_list(self.servers) if self.servers is not None else None,
            "load": format_cpu_list(self.load) if self.load is not None else None,
            "source": self.source,
            "available": format_cpu_list(available_cpus()),
        }


def default_plan(available: Collection[int] | None = None) -> CpuPlan:
    """A quarter of the CPUs (at least one, the highest-numbered) for load, the rest for servers.

    Below DEFAULT_SPLIT_MIN_CPUS CPUs both stay unpinned: giving a 2-core server one core halves
    it, which is a choice the user should make explicitly (`--cpus`).
    """
    have = tuple(sorted(available if available is not None else available_cpus()))
    if len(have) < DEFAULT_SPLIT_MIN_CPUS:
        return CpuPlan(servers=None, load=None, source="none")
    n_load = max(1, len(have) // 4)
    return CpuPlan(servers=have[:-n_load], load=have[-n_load:], source="default")


def resolve_plan(
    servers: str | None,
    load: str | None,
    *,
    use_default: bool = True,
    available: Collection[int] | None = None,
    names: tuple[str, str] = ("server CPU set", "load CPU set"),
) -> CpuPlan:
    """Parse and check both sets: each on this machine, the two disjoint. Neither given: the default.

    "all" for a side means unpinned. Raises CpuSetError naming the set (`names`) and the fix.
    """
    have = tuple(sorted(available if available is not None else available_cpus()))
    if servers is None and load is None:
        return default_plan(have) if use_default else CpuPlan(None, None, "none")
    parsed: list[tuple[int, ...] | None] = []
    for text, what in zip((servers, load), names, strict=True):
        if text is None or str(text).strip().lower() == "all":
            parsed.append(None)
            continue
        cpus = parse_cpu_list(str(text), what=what)
        check_available(cpus, what=f"{what} {text!r}", available=have)
        parsed.append(cpus)
    server_cpus, load_cpus = parsed
    if server_cpus is not None and load_cpus is not None:
        shared = sorted(set(server_cpus) & set(load_cpus))
        if shared:
            raise CpuSetError(
                f"{names[0]} {format_cpu_list(server_cpus)} and {names[1]} {format_cpu_list(load_cpus)} "
                f"overlap on CPU(s) {format_cpu_list(shared)}: give them disjoint sets, e.g. "
                f"{_example_split(have)}"
            )
    source = "given" if (server_cpus is not None or load_cpus is not None) else "none"
    return CpuPlan(servers=server_cpus, load=load_cpus, source=source)


def _example_split(have: tuple[int, ...]) -> str:
    if len(have) < 2:
        return "(this machine has one CPU: leave one side unpinned with 'all')"
    plan = default_plan(have) if len(have) >= DEFAULT_SPLIT_MIN_CPUS else CpuPlan(have[:-1], have[-1:], "")
    assert plan.servers is not None and plan.load is not None
    return f"servers {format_cpu_list(plan.servers)} and load {format_cpu_list(plan.load)}"
