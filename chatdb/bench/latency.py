"""Latency summaries: percentiles of raw samples, never averages of percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted samples."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Latency:
    """Milliseconds: how many samples, and their p50/p95/p99, mean and max."""

    count: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Latency:
        ordered = sorted(samples_ms)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 0.50),
            p95=percentile(ordered, 0.95),
            p99=percentile(ordered, 0.99),
            mean=sum(ordered) / len(ordered),
            max=ordered[-1],
        )

    def as_dict(self) -> dict[str, Any]:
        def ms(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 3)

        return {
            "count": self.count,
            "p50_ms": ms(self.p50),
            "p95_ms": ms(self.p95),
            "p99_ms": ms(self.p99),
            "mean_ms": ms(self.mean),
            "max_ms": ms(self.max),
        }
