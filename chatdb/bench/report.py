"""What a benchmark run measured, and the plan's goals decided on it (pass, fail or not run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatdb.bench.latency import Latency

GOALS_MS = {"history": 100.0, "add": 50.0}  # the plan's p95 goals
GOAL_CLIENTS = 100  # "100+ concurrent connections"


@dataclass(frozen=True)
class PatternResult:
    name: str
    chatdb: Latency
    raw: Latency
    goal_p95_ms: float | None

    @property
    def ratio_p50(self) -> float | None:
        return _ratio(self.chatdb.p50, self.raw.p50)

    @property
    def ratio_p95(self) -> float | None:
        return _ratio(self.chatdb.p95, self.raw.p95)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chatdb": self.chatdb.as_dict(),
            "raw": self.raw.as_dict(),
            "ratio_p50": self.ratio_p50,
            "ratio_p95": self.ratio_p95,
            "goal_p95_ms": self.goal_p95_ms,
        }


def _ratio(a: float, b: float) -> float | None:
    """chatdb's figure over raw psycopg's, from the millisecond figures the report shows.

    Dividing the reported (rounded) figures gives the reported ratio, so a
    reader can check one against the other.
    """
    if not (b and b == b and a == a):
        return None
    shown_a, shown_b = round(a, 3), round(b, 3)
    return round(shown_a / shown_b, 2) if shown_b else None


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int
    reserved: int  # for superusers and pg_use_reserved_connections
    in_use: int  # client connections open when the benchmark started

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved - self.in_use

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_connections": self.max_connections,
            "reserved": self.reserved,
            "in_use": self.in_use,
            "available": self.available,
        }


@dataclass(frozen=True)
class ConcurrencyResult:
    clients: int
    workers: int
    pause: float
    connections: int
    pool_sizes: list[int]
    limited_by: str  # "clients", "max_connections" or "connections" (the option)
    seconds: float
    patterns: dict[str, Latency]
    overall: Latency
    errors: int
    error_messages: dict[str, int]

    @property
    def operations(self) -> int:
        return self.overall.count + self.errors

    @property
    def throughput(self) -> float:
        return self.overall.count / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "workers": self.workers,
            "threads_per_worker": -(-self.clients // self.workers),
            "pause_seconds": self.pause,
            "connections": self.connections,
            "pool_sizes": self.pool_sizes,
            "limited_by": self.limited_by,
            "seconds": round(self.seconds, 3),
            "operations": self.operations,
            "throughput_per_second": round(self.throughput, 1),
            **{f"{k}": v for k, v in self.overall.as_dict().items() if k != "count"},
            "patterns": {name: latency.as_dict() for name, latency in self.patterns.items()},
            "errors": self.errors,
            "error_messages": self.error_messages,
        }


@dataclass(frozen=True)
class Goal:
    """One of the plan's goals, decided: ``key`` names it (``history``, ``add_under_load``, ``clients``)."""

    key: str
    name: str
    target: str  # what passes, shortly: "p95 < 100 ms"
    measured: str
    status: str  # "pass", "fail" or "not run"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "target": self.target,
            "measured": self.measured,
            "status": self.status,
        }


@dataclass(frozen=True)
class BenchReport:
    database: str
    server_version: str
    prepared_statements: bool
    conversations: int  # about, from the planner's statistics
    messages: int
    read_sample: int  # existing conversations the reads were spread over
    own_data_only: bool
    limits: ServerLimits
    sequential: dict[str, PatternResult]
    concurrency: ConcurrencyResult
    cleanup: dict[str, int]
    seconds: float

    @property
    def errors(self) -> int:
        return self.concurrency.errors

    @property
    def goals(self) -> list[Goal]:
        found = []
        load = self.concurrency.patterns
        for name, label in (("history", "history read"), ("add", "add message")):
            goal = GOALS_MS[name]
            for key, where, latency in (
                (name, "", self.sequential[name].chatdb),
                (f"{name}_under_load", " under load", load[name]),
            ):
                ok = latency.count > 0 and latency.p95 < goal
                found.append(
                    Goal(
                        key,
                        f"{label} p95 < {goal:g} ms{where}",
                        f"p95 < {goal:g} ms",
                        f"{latency.p95:.1f} ms",
                        "pass" if ok else "fail",
                    )
                )
        clients = self.concurrency.clients
        found.append(
            Goal(
                "clients",
                f"{GOAL_CLIENTS}+ concurrent clients, no errors",
                f"{GOAL_CLIENTS}+ clients, 0 errors",
                f"{clients} clients, {self.errors} errors",
                "not run" if clients < GOAL_CLIENTS else ("pass" if self.errors == 0 else "fail"),
            )
        )
        return found

    def goal(self, key: str) -> Goal | None:
        """The goal named ``key`` (None: the plan sets none for it, as for ``recent``)."""
        return next((goal for goal in self.goals if goal.key == key), None)

    @property
    def passed(self) -> bool:
        return all(goal.status == "pass" for goal in self.goals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "prepared_statements": self.prepared_statements,
            "data": {
                "conversations": self.conversations,
                "messages": self.messages,
                "read_sample": self.read_sample,
                "own_data_only": self.own_data_only,
            },
            "server": self.limits.as_dict(),
            "sequential": {name: result.as_dict() for name, result in self.sequential.items()},
            "concurrency": self.concurrency.as_dict(),
            "errors": self.errors,
            "goals": [goal.as_dict() for goal in self.goals],
            "passed": self.passed,
            "cleanup": self.cleanup,
            "seconds": round(self.seconds, 3),
        }
