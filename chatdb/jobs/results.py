"""What every job's result says first: one vocabulary and one JSON envelope for all of them."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar


class JobResult(Protocol):
    """What every job's result counts (its dataclass adds the rest)."""

    batches: int
    duration_seconds: float


ResultT = TypeVar("ResultT", bound=JobResult)


def rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def job_envelope(
    job: str,
    database: str,
    *,
    dry_run: bool,
    matched: int,
    changed: int,
    skipped: int,
    batches: int,
    duration_seconds: float,
    rows_per_second: float,
) -> dict[str, Any]:
    """The keys every job's result starts with, in this order; each job adds its own after them.

    ``matched``: conversations the run was about when it started; ``changed``:
    those it wrote (archived, exported, imported, deleted, created);
    ``skipped``: those it left (held by the application, already there,
    changed since an export), for the next run or for good.
    """
    return {
        "job": job,
        "database": database,
        "dry_run": dry_run,
        "matched": matched,
        "changed": changed,
        "skipped": skipped,
        "batches": batches,
        "duration_seconds": round(duration_seconds, 3),
        "rows_per_second": rows_per_second,
    }
