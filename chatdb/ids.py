"""Ids: time-ordered UUIDv7s for the rows chatdb writes, and reading ids and prefixes users type.


The plan's ``created_at DEFAULT NOW()`` is the start time of the transaction,
so every message written in one transaction has the same ``created_at``.
chatdb orders history by ``(created_at, id)``; giving messages UUIDv7 ids that
grow with every call in this process makes that order the order in which the
messages were added.

Layout: 48 bits of Unix time in milliseconds, the version (7), 12 + 62 bits
that start random in each new millisecond and grow by a random step for each
further id in the same millisecond (RFC 9562, section 6.2, method 2), and the
variant. The ids stay unique and ordered if the clock steps back: the last
timestamp is kept until the clock passes it again. A forked child starts
afresh, so parent and child never continue the same sequence.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

from chatdb.errors import InvalidIdError

_RANDOM_BITS = 74  # rand_a (12) + rand_b (62)
_RANDOM_LIMIT = 1 << _RANDOM_BITS
# A new millisecond starts in the lower half, leaving room for 2**41 further
# ids in that millisecond before the counter has to borrow the next one.
_START_BITS = _RANDOM_BITS - 1
_STEP_BITS = 32
# Like git's short hashes: fewer characters would match too much to be useful.
MIN_PREFIX_LENGTH = 4
_HEX = re.compile(r"^[0-9a-f]+$")

_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def _reset_after_fork() -> None:
    global _last_ms, _last_random, _lock
    _lock = threading.Lock()
    _last_ms = -1
    _last_random = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def uuid7() -> uuid.UUID:
    """A new UUIDv7, greater than every id this process made before."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            _last_random = int.from_bytes(os.urandom(10)) >> (80 - _START_BITS)
        else:
            _last_random += 1 + (int.from_bytes(os.urandom(4)) >> (32 - _STEP_BITS))
            if _last_random >= _RANDOM_LIMIT:
                _last_ms += 1
                _last_random = int.from_bytes(os.urandom(10)) >> (80 - _START_BITS)
        ms, rand = _last_ms, _last_random
    rand_a = rand >> 62
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID) -> int:
    """The Unix time in milliseconds written into a UUIDv7."""
    return value.int >> 80


def parse_uuid(value: str | uuid.UUID, what: str = "conversation id", parameter: str | None = None) -> uuid.UUID:
    """A UUID from a string, or an :class:`InvalidIdError` that says which value was wrong."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError):
        head = f"{{{parameter}}}: " if parameter else ""
        raise InvalidIdError(
            f"{head}malformed {what} {str(value)!r}: expected a UUID",
            parameters=(parameter,) if parameter else (),
        ) from None


def uuid_prefix_range(text: str, what: str = "conversation id") -> tuple[uuid.UUID, uuid.UUID]:
    """The smallest and largest UUID starting with the hex digits of ``text``.

    Dashes are ignored, case does not matter. Raises :class:`InvalidIdError`
    (a usage error) for anything that is not 4 to 32 hex digits.
    """
    digits = text.strip().lower().replace("-", "")
    if not digits or not _HEX.match(digits) or len(digits) > 32:
        raise InvalidIdError(f"malformed {what} {text.strip()!r}: expected a UUID or a prefix of one")
    if len(digits) < MIN_PREFIX_LENGTH:
        raise InvalidIdError(
            f"{what} prefix {text.strip()!r} is too short: give at least {MIN_PREFIX_LENGTH} hex digits"
        )
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
