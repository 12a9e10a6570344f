"""`chatdb bench`: the plan's performance goals, measured on the configured database."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption, count_param


def _seconds(value: str) -> float:
    from chatdb.errors import UsageError
    from chatdb.timeparse import parse_seconds

    try:
        return parse_seconds(value)
    except UsageError as exc:
        raise typer.BadParameter(exc.message) from None


def bench(
    ctx: typer.Context,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            metavar="DURATION",
            parser=_seconds,
            help="Time spent measuring, both phases together: 30s, 2min, or seconds.",
        ),
    ] = "30s",  # type: ignore[assignment]  # Typer parses the default text with _seconds
    clients: Annotated[
        int,
        typer.Option(
            "--clients", metavar="N", parser=count_param(1), help="Concurrent clients in the concurrency run."
        ),
    ] = 100,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            parser=count_param(1),
            help="Processes hosting the clients (default: one per core, at least 2).",
            show_default=False,
        ),
    ] = None,
    connections: Annotated[
        int | None,
        typer.Option(
            "--connections",
            metavar="N",
            parser=count_param(1),
            show_default=False,
            help="Server connections the clients share (default: all clients, or what max_connections leaves).",
        ),
    ] = None,
    pause: Annotated[
        float,
        typer.Option(
            "--pause",
            metavar="DURATION",
            parser=_seconds,
            help="Mean pause of each concurrent client between operations (0: back to back).",
        ),
    ] = "0",  # type: ignore[assignment]  # Typer parses the default text with _seconds
    sample: Annotated[
        int,
        typer.Option(
            "--sample", metavar="N", parser=count_param(1), help="Existing conversations the reads are spread over."
        ),
    ] = 1000,
    check: Annotated[bool, typer.Option("--check", help="Exit with 1 when a goal is not met (for CI).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Measure history reads, recent conversations and message inserts against the plan's goals.

    Times the plan's three patterns through chatdb's repositories and, in the
    same run, through raw psycopg (the floor), then runs N concurrent clients.
    Reads a random sample of the existing conversations and never changes
    them; writes only to its own user (chatdb-bench-...), deleted at the end.
    Run `chatdb seed` first on an empty database for meaningful figures.
    Exits with 1 when any operation failed (the report is printed first).

    Example:

        chatdb bench

        chatdb bench --clients 200 --duration 60s --json
    """
    from chatdb.bench.run import BenchOptions, run_bench

    options = BenchOptions(
        duration=duration,
        clients=clients,
        workers=workers,
        connections=connections,
        sample=sample,
        pause=pause,
    )
    db = state(ctx).database()
    report = run_bench(db, options, phase=None if as_json else out.info)
    if as_json:
        out.emit_json(report)
    else:
        _render(report)
    if report.errors:
        from chatdb.errors import BenchErrorsError

        load = report.concurrency
        first = next(iter(load.error_messages), "")
        raise BenchErrorsError(f"{report.errors} of {load.operations} operations failed under load: {first}")
    if check and not report.passed:
        raise typer.Exit(1)


def _render(report: Any) -> None:  # a BenchReport, imported lazily
    load = report.concurrency
    labels = {"history": "history read (20)", "recent": "recent conversations (50)", "add": "add message"}
    rows = []

    def judged(key: str) -> tuple[str, str]:
        # The report decides every goal; the table only shows its decision.
        goal = report.goal(key)
        return (goal.target, goal.status) if goal else ("—", "—")

    for name, result in report.sequential.items():
        rows.append(
            (
                labels[name],
                result.chatdb.p50,
                result.chatdb.p95,
                result.chatdb.p99,
                result.raw.p95,
                result.ratio_p95,
                *judged(name),
            )
        )
    for name, latency in load.patterns.items():
        rows.append(
            (
                f"{labels[name]}, {load.clients} clients",
                latency.p50,
                latency.p95,
                latency.p99,
                None,
                None,
                *judged(f"{name}_under_load"),
            )
        )
    rows.append(
        (
            f"{load.clients:,} clients: {out.rate(load.throughput)} ops/s, {load.errors:,} errors",
            load.overall.p50,
            load.overall.p95,
            load.overall.p99,
            None,
            None,
            *judged("clients"),
        )
    )
    number = {c: out.Column(c, "number") for c in ("p50 ms", "p95 ms", "p99 ms", "raw p95 ms", "× raw")}
    out.table(
        [out.Column("Pattern", "text"), *number.values(), out.Column("Goal"), out.Column("Result")],
        [tuple(f"{v:,.2f}" if isinstance(v, float) else v for v in row) for row in rows],
    )
    limits = report.limits
    out.key_values(
        [
            ("Database", report.database),
            (
                "Server",
                f"PostgreSQL {report.server_version}, max_connections {limits.max_connections} "
                f"({limits.reserved} reserved, {limits.in_use} in use at start)",
            ),
            (
                "Data",
                f"about {report.conversations:,} conversations, {report.messages:,} messages; "
                f"reads spread over {report.read_sample} of them",
            ),
            (
                "Concurrency",
                f"{load.clients} clients as threads in {load.workers} processes, sharing "
                f"{load.connections} connections (pools of {', '.join(map(str, load.pool_sizes))}), "
                + (
                    f"pausing {load.pause:g} s on average between operations"
                    if load.pause
                    else "operations back to back"
                ),
            ),
            ("Prepared statements", "on" if report.prepared_statements else "off"),
            (
                "Removed",
                f"{report.cleanup.get('conversations', 0)} conversations, "
                f"{report.cleanup.get('messages', 0)} messages, {report.cleanup.get('users', 0)} user",
            ),
        ]
    )
    if load.limited_by == "max_connections":
        out.warn(
            f"the server's max_connections ({limits.max_connections}) is the limit: "
            f"{load.clients} clients shared {load.connections} connections"
        )
    if report.own_data_only:
        out.warn("the database holds no other conversations: reads used the benchmark's own few rows")
    for message, count in load.error_messages.items():
        out.warn(f"{count} × {message}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
