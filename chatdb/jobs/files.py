"""What every export file shares: its manifest's name and kind, and how gzip is recognised.

Writing exports (privately, safely, whole) is :mod:`chatdb.jobs.atomic_files`;
reading them back is :mod:`chatdb.jobs.reading`. The manifest
(``FILE.manifest.json``) beside an export records what the file holds: counts,
and the sha256 of the bytes on disk (compressed, for ``.gz``).
"""

from __future__ import annotations

from pathlib import Path

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_KIND = "chatdb-export"
GZIP_MAGIC = b"\x1f\x8b"


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)
