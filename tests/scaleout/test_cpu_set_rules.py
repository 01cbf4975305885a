"""CPU sets: parsed like Linux CPU lists, checked against the machine, disjoint, a sane default split."""

from __future__ import annotations

import pytest

from serving.cpusets import CpuSetError, default_plan, format_cpu_list, parse_cpu_list, resolve_plan

# (text, CPUs): the syntax of /proc/<pid>/status Cpus_allowed_list and `taskset --cpu-list`
PARSED = [
    ("0", (0,)),
    ("3", (3,)),
    ("0-3", (0, 1, 2, 3)),
    ("0-2,5", (0, 1, 2, 5)),
    ("5,0-1", (0, 1, 5)),
    (" 1 , 2 ", (1, 2)),
    ("2,2,1-2", (1, 2)),
]


@pytest.mark.parametrize(("text", "cpus"), PARSED)
def test_cpu_lists_parse_to_sorted_distinct_cpus(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize(
    ("cpus", "text"), [((0,), "0"), ((0, 1, 2), "0-2"), ((0, 1, 2, 5), "0-2,5"), ((1, 3, 4, 7), "1,3-4,7")]
)
def test_cpu_sets_format_as_compact_lists(cpus: tuple[int, ...], text: str) -> None:
    assert format_cpu_list(cpus) == text
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("text", ["", "a", "1-", "3-1", "-1", "1,,2", "0x1", "1.5"])
def test_malformed_cpu_lists_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(CpuSetError, match="load CPUs"):
        parse_cpu_list(text, what="load CPUs")


# (machine's CPUs, expected servers, expected load): a quarter (>= 1) for load from 4 CPUs up
DEFAULTS = [
    ((0,), None, None),
    ((0, 1), None, None),
    ((0, 1, 2), None, None),
    ((0, 1, 2, 3), (0, 1, 2), (3,)),
    (tuple(range(8)), (0, 1, 2, 3, 4, 5), (6, 7)),
    ((2, 3, 4, 5, 6), (2, 3, 4, 5), (6,)),
]


@pytest.mark.parametrize(("have", "servers", "load"), DEFAULTS)
def test_the_default_split_pins_only_machines_with_four_cpus_or_more(
    have: tuple[int, ...], servers: tuple[int, ...] | None, load: tuple[int, ...] | None
) -> None:
    plan = default_plan(have)
    assert (plan.servers, plan.load) == (servers, load)
    assert plan.source == ("default" if servers else "none")


def test_given_sets_are_kept_and_all_means_unpinned() -> None:
    plan = resolve_plan("0", "1", available=(0, 1))
    assert (plan.servers, plan.load, plan.source) == ((0,), (1,), "given")
    assert resolve_plan("all", "1", available=(0, 1)).servers is None
    assert resolve_plan(None, None, use_default=False, available=range(8)).load is None


def test_a_cpu_the_machine_does_not_have_is_refused_naming_the_set_and_the_choices() -> None:
    with pytest.raises(CpuSetError) as caught:
        resolve_plan("0", "5-6", available=(0, 1))
    message = str(caught.value)
    assert "load CPU set '5-6'" in message
    assert "5-6" in message and "available: 0-1" in message


def test_overlapping_server_and_load_sets_are_refused_with_a_disjoint_example() -> None:
    with pytest.raises(CpuSetError) as caught:
        resolve_plan("0-2", "2-3", available=range(4))
    message = str(caught.value)
    assert "overlap on CPU(s) 2" in message
    assert "servers 0-2 and load 3" in message
