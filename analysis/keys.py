"""What identifies a cell (`CellKey`: its load, apart from the repetition) and a sweep line (`GroupKey`:
server x protocol x configuration x batch, the unit a verdict is about)."""

from __future__ import annotations

from dataclasses import dataclass

from inferload_formats import strict_fields


@strict_fields
@dataclass(frozen=True)
class CellKey:
    """What identifies a cell apart from its repetition number."""

    server: str
    protocol: str
    mode: str
    rate: float | None
    concurrency: int | None
    batch: int
    server_config_name: str
    repeat_share: float | None = None  # cache experiments: share of requests reusing an input
    arm: str = ""  # "b": an A/A check's twin, a line of its own (never more repetitions)

    @property
    def group(self) -> GroupKey:
        return GroupKey(self.server, self.protocol, self.server_config_name, self.batch, self.mode,
                        self.repeat_share, self.arm)

    def label(self) -> str:
        load = f"{self.rate:g}/s" if self.rate is not None else f"concurrency {self.concurrency}"
        return f"{self.group.label()} @ {load}"


@strict_fields
@dataclass(frozen=True, order=True)
class GroupKey:
    """A server x protocol x configuration x batch line of a sweep (the unit a verdict is about)."""

    server: str
    protocol: str
    server_config_name: str
    batch: int
    mode: str
    repeat_share: float | None = None  # one line per repeat share (None: the pool's uniform choice)
    arm: str = ""  # "b": an A/A check's twin of the line ("": the line itself; a string, so keys sort)

    def label(self) -> str:
        share = "" if self.repeat_share is None else f" repeat {self.repeat_share:g}"
        arm = " (A/A twin)" if self.arm == "b" else ""
        return f"{self.server} {self.protocol} [{self.server_config_name}] batch {self.batch}{share}{arm}"
