"""The library names its parameters (``max_rows``); a command says its flags (``--max-rows``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from chatdb.errors import ChatdbError


@contextmanager
def as_flags(flags: Mapping[str, str]) -> Iterator[None]:
    """Re-word a :class:`ChatdbError` raised in the block so that its parameters read as ``flags``."""
    try:
        yield
    except ChatdbError as exc:
        message = exc.message
        for parameter in exc.parameters:
            if parameter in flags:
                message = re.sub(rf"(?<![\w.-]){re.escape(parameter)}(?![\w])", flags[parameter], message)
        exc.message = message
        exc.args = (message,)
        raise
