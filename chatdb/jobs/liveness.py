"""Whether the process that holds the lease is gone, told from another process on the same machine.

A lease row names its holder's pid and, on Linux, where that pid means
something: the boot (``/proc/sys/kernel/random/boot_id``) and the pid
namespace (``/proc/self/ns/pid``), plus when the process started (so a pid
used again by a new process is not mistaken for the holder). A job that sees
the same boot and namespace can tell for certain that the holder was killed
(``kill -9``, a crash) and take the lease over at once. Anywhere else (another
host, another container, not Linux) it cannot, and the lease has to expire.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def _space() -> str | None:
    """This process's boot and pid namespace, or None where that cannot be read."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(PROC / "self/ns/pid")
    except OSError:
        return None
    return f"{boot} {namespace}"


def _started(pid: int) -> str | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of /proc/PID/stat), or None if gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count from its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def identity(pid: int | None = None) -> str | None:
    """``"BOOT NAMESPACE START"`` of ``pid`` (this process by default), or None off Linux."""
    space = _space()
    started = _started(pid or os.getpid())
    if space is None or started is None:
        return None
    return f"{space} {started}"


def is_gone(recorded: str | None, pid: int) -> bool:
    """True only when certain: ``pid`` shares this machine's boot and namespace, and is not that process."""
    space = _space()
    if recorded is None or space is None or not recorded.startswith(space + " "):
        return False
    return _started(pid) != recorded[len(space) + 1 :]
