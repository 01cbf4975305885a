"""Start a real stack on free loopback ports for a test and always stop it again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.artifacts import ArtifactLayout
from models.linear import LinearSpec
from serving import Ports, ServerSettings, Stack, up

SMALL = LinearSpec(classes=64, features=1024, seed=0)


@contextmanager
def running_stack(
    artifacts: ArtifactLayout,
    state_dir: Path,
    *,
    servers: tuple[str, ...],
    settings: ServerSettings | None = None,
) -> Iterator[Stack]:
    stack = up(
        artifacts,
        servers=servers,
        settings=settings or ServerSettings(),
        ports=Ports.free(),
        state_dir=state_dir,
        timeout_s=240,
    )
    try:
        yield stack
    finally:
        stack.down()
