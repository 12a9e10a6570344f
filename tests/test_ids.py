"""UUIDv7 ids: well formed, time-ordered, strictly increasing within a process."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from chatdb.ids import uuid7, uuid7_time_ms


def test_version_variant_and_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= uuid7_time_ms(value) <= after + 1


def test_ids_strictly_increase_within_a_millisecond_and_across_threads() -> None:
    made: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def run(slot: list[uuid.UUID]) -> None:
        slot.extend(uuid7() for _ in range(20_000))

    threads = [threading.Thread(target=run, args=(slot,)) for slot in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ids in made:
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
    everything = [i for ids in made for i in ids]
    assert len(set(everything)) == len(everything)
    # Many ids share a millisecond, so the counter, not the clock, ordered them.
    assert len({uuid7_time_ms(i) for i in made[0]}) < len(made[0])


def test_ids_keep_increasing_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    first = uuid7()
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000_000_000_000)  # the year 2001
    later = [uuid7() for _ in range(100)]
    assert first < later[0] and later == sorted(later)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_continue_the_parents_sequence() -> None:
    uuid7()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, uuid7().bytes)
        os._exit(0)
    os.waitpid(pid, 0)
    child = uuid.UUID(bytes=os.read(read, 16))
    parent = uuid7()
    assert child != parent
