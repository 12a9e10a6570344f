"""`chatdb bench`: the plan's query patterns, timed through chatdb and through raw psycopg.

:func:`chatdb.bench.run.run_bench` does the work: :mod:`~chatdb.bench.fixtures`
sets up and removes the benchmark's own rows, :mod:`~chatdb.bench.phases` runs
the sequential and the concurrency phase, :mod:`~chatdb.bench.worker` is the
process that hosts concurrent clients (and the parent's side of its protocol),
and :mod:`~chatdb.bench.report` holds the figures and decides the goals. This
package imports nothing at module level, so a worker process loads only what
its clients use.
"""
