"""The service-level objective every verdict is judged against, as a matrix states it and a manifest
records it: the `percentile` of latency <= `latency_ms`, and errors + drops <= `max_failure_rate`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Slo(BaseModel):
    """p`percentile` latency <= `latency_ms` and (errors + drops) / scheduled <= `max_failure_rate`.

    The matrix's `slo:` section, the manifest's `slo` and the analysis' judge are this one object.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    percentile: float = Field(default=99.0, gt=0, lt=100)
    latency_ms: float = Field(default=100.0, gt=0)
    max_failure_rate: float = Field(default=0.01, ge=0, le=1,
                                    description="the largest share of errors + drops a run may have")

    def describe(self) -> str:
        return (
            f"p{self.percentile:g} latency <= {self.latency_ms:g} ms and "
            f"errors + drops <= {self.max_failure_rate:.0%}"
        )

    def failures_exceed(self, error_rate: float, drop_rate: float) -> bool:
        """The failure rule: errors + drops above the limit miss the SLO whatever the latency."""
        return error_rate + drop_rate > self.max_failure_rate
