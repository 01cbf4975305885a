"""The `--cpus` flags and the matrix's `cpus:` section, turned into checked CPU sets before anything starts.

`serve up --cpus` and `load --cpus` take a CPU list ("0-2,5"), `auto` (the default split of
serving/cpusets.py: pinned only on machines with >= 4 CPUs) or `all` (unpinned). `load --cpus`
also refuses a set that overlaps the CPUs of servers recorded as running in `--state-dir`.
"""

from __future__ import annotations

from pathlib import Path

from serving.cpusets import CpuPlan, CpuSetError, default_plan, format_cpu_list, resolve_plan

__all__ = ["AUTO", "UNPINNED", "cpu_flag_help", "server_cpus", "load_cpus", "experiment_plan"]

AUTO = "auto"
UNPINNED = "all"


def cpu_flag_help(side: str) -> str:
    plan = default_plan()
    chosen = getattr(plan, side)
    default = format_cpu_list(chosen) if chosen is not None else "unpinned (fewer than 4 CPUs)"
    return (
        f"CPUs for the {side} processes: a list such as 0-2,5; 'auto' (default here: {default}); "
        "'all' for unpinned"
    )


def _side(text: str | None, side: str) -> tuple[int, ...] | None:
    if text is None or text.strip().lower() == AUTO:
        return getattr(default_plan(), side)
    names = ("--cpus (servers)", "--cpus (load)")
    plan = resolve_plan(text if side == "servers" else None, text if side == "load" else None,
                        use_default=False, names=names)
    return getattr(plan, side)


def server_cpus(text: str | None) -> tuple[int, ...] | None:
    """`serve up --cpus`: the servers' set, or None (unpinned). Raises CpuSetError."""
    return _side(text, "servers")


def load_cpus(text: str | None, *, state_dir: Path | None = None) -> tuple[int, ...] | None:
    """`load --cpus`: the load set, checked against the running servers' set in `state_dir`."""
    cpus = _side(text, "load")
    if cpus is None or state_dir is None:
        return cpus
    servers = _running_server_cpus(state_dir)
    if servers is not None:
        shared = sorted(set(servers) & set(cpus))
        if shared:
            raise CpuSetError(
                f"load CPUs {format_cpu_list(cpus)} overlap the CPUs {format_cpu_list(servers)} of the "
                f"servers running from {state_dir} on CPU(s) {format_cpu_list(shared)}: give --cpus a "
                "disjoint set "
                "(or 'all' to run unpinned)"
            )
    return cpus


def _running_server_cpus(state_dir: Path) -> tuple[int, ...] | None:
    from serving.stack import StackError, load

    try:
        stack = load(state_dir)
    except (StackError, OSError, ValueError):
        return None
    if stack is None or not any(stack.alive(name) for name in stack.servers):
        return None
    return stack.settings.cpus


def experiment_plan(servers: str | None, load: str | None, *, pinned_servers: bool = True) -> CpuPlan:
    """The matrix's `cpus:` section: both sides checked on this machine, disjoint; absent: the default.

    `pinned_servers` False (servers we do not start: compose, external) leaves the servers unpinned.
    """
    plan = resolve_plan(servers, load, names=("cpus.servers", "cpus.load"))
    if not pinned_servers and plan.servers is not None:
        if plan.source == "given" and servers is not None and servers.strip().lower() != UNPINNED:
            raise CpuSetError(
                "cpus.servers pins servers that inferload does not start (this target's servers run "
                "elsewhere): remove cpus.servers, or use target kind local"
            )
        plan = CpuPlan(servers=None, load=plan.load, source=plan.source)
    return plan
