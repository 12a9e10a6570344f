"""`chatdb bench`: the plan's query patterns, timed through chatdb and through raw psycopg.

:func:`chatdb.bench.runner.run_bench` does the work; :mod:`chatdb.bench.worker`
is the process that hosts concurrent clients. This package imports nothing at
module level, so a worker process loads only what its clients use.
"""
