"""Maintenance jobs: archive, unarchive, export, import and prune.

Each job is a library function that takes a :class:`~chatdb.filters.ConversationFilter`
(or a file), reports progress through an optional callback, and returns a
result object with ``as_dict()``. The command line only renders them.
"""
