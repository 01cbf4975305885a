"""The runner on the session's shared server stack (tests/conftest.py's `small_stack`): real stages,
but `start_server` hands out the stack's running server instead of starting one, and `down` leaves it
running (its fixture stops it). For real-server matrix tests that neither restart nor reconfigure a
server: they save a server start per run."""

from __future__ import annotations

from typing import Any

from inferload.stages import RealStages


class SharedServers:
    """One server of the shared stack, as the runner sees running servers."""

    def __init__(self, stack: Any, server: str) -> None:
        self.stack, self.server = stack, server
        self.tfserving_kind = stack.tfserving_kind
        self.triton_kind = stack.triton_kind

    def alive(self, server: str) -> bool:
        return bool(self.stack.alive(server))

    def down(self) -> None:
        """The stack is shared: its fixture stops it."""

    def monitored(self) -> list[Any]:
        return [m for m in self.stack.monitored() if m.name == self.server]


class OnSharedStack(RealStages):
    """The real stages, with the shared stack's running servers instead of new ones (matrices with the
    stack's default server settings; pass `ports=stack.ports` to the runner)."""

    def __init__(self, stack: Any) -> None:
        super().__init__()
        self.stack = stack

    def start_server(self, server: str, config: Any, **_: Any) -> SharedServers:
        return SharedServers(self.stack, server)
