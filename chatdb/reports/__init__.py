"""Read-only reports: schema status, conversation listings, history, statistics and doctor.

Each is a library function that takes a :class:`~chatdb.db.Database`, reads in
one transaction, and returns a result object with ``as_dict()``; the command
line only renders them.
"""
