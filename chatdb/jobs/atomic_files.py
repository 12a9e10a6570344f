"""Files chatdb writes (exports, manifests): created safely and privately, published whole.

Every file chatdb writes (an export, its manifest) starts as a temporary in the
destination's directory, created exclusively (``O_CREAT|O_EXCL|O_NOFOLLOW``,
so a planted symbolic or hard link is never followed or reused) under an
unpredictable name, with mode 0600 (chat logs are personal data). The
temporary is named ``.NAME.chatdb-PID-RANDOM.tmp`` and its writer holds an
``flock`` on it, so a later run can tell a temporary left by a killed writer
(its process gone, the lock free) from one being written, and deletes the
former (:func:`remove_stale_temporaries`). An export is published only when the
data and its manifest are both complete and fsync'd: the manifest is renamed to
its final name first, then the data file, so a data file under its final name
always has its manifest. A destination that exists and is not a regular file
(a device such as ``/dev/null``, a FIFO, a socket, a directory, a symbolic
link) is refused, never replaced.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from chatdb.errors import DestinationError, FileWriteError
from chatdb.jobs.files import MANIFEST_SUFFIX, manifest_path

NAME_MAX = 255  # bytes in one file name, when the file system does not say
# .NAME.chatdb-PID-RANDOM.tmp (NAME shortened to fit; names may hold newlines)
TEMPORARY_NAME = re.compile(r"\..*\.chatdb-(?P<pid>[0-9]+)-[0-9a-f]{16}\.tmp", re.DOTALL)
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _directory_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return NAME_MAX


def check_destination(path: Path, *, with_manifest: bool = True) -> None:
    """Refuse (:class:`DestinationError`) a name chatdb must not write to.

    Its directory must exist; the name (and its manifest's name) must fit the
    file system; each must be free or a regular file, which is then replaced
    whole. Anything else (a device, FIFO, socket, directory or symbolic link)
    is refused rather than replaced or written through.
    """
    directory = _directory_of(path)
    if path.name in ("", ".", ".."):
        raise DestinationError(path, "that is a directory, not a file name")
    try:
        is_dir = stat.S_ISDIR(os.stat(directory).st_mode)
    except FileNotFoundError:
        raise DestinationError(path, f"directory {directory} does not exist") from None
    except OSError as exc:
        raise DestinationError(path, exc.strerror or str(exc)) from None
    if not is_dir:
        raise DestinationError(path, f"{directory} is not a directory")
    names = [path, manifest_path(path)] if with_manifest else [path]
    longest = max(len(os.fsencode(p.name)) for p in names)
    limit = _name_max(directory)
    if longest > limit:
        extra = f" with its {MANIFEST_SUFFIX} suffix" if with_manifest else ""
        raise DestinationError(
            path, f"the file name is too long: {longest} bytes{extra}, the file system allows {limit}"
        )
    for name in names:
        try:
            mode = os.lstat(name).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DestinationError(name, exc.strerror or str(exc)) from None
        if not stat.S_ISREG(mode):
            kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
            raise DestinationError(
                name, f"it is {kind}, not a regular file (chatdb creates or replaces only regular files)"
            )


@contextmanager
def _writing(path: Path, what: str = "nothing was written under that name") -> Iterator[None]:
    """OSError (a full disk, a quota, an I/O error) as one line naming the file."""
    try:
        yield
    except OSError as exc:
        raise FileWriteError(f"cannot write {path}: {exc.strerror or exc} ({what})") from None


def _temporary_name(final: str, limit: int) -> str:
    suffix = f".chatdb-{os.getpid()}-{secrets.token_hex(8)}.tmp"
    budget = max(0, limit - 1 - len(suffix))
    stem = os.fsdecode(os.fsencode(final)[:budget])
    return f".{stem}{suffix}"


def create_temporary(path: Path) -> tuple[Path, int]:
    """A new, empty, private (0600) temporary beside ``path``, created exclusively; returns (name, fd)."""
    directory = _directory_of(path)
    limit = _name_max(directory)
    for _ in range(16):
        tmp = directory / _temporary_name(path.name, limit)
        try:
            fd = os.open(tmp, _OPEN_NEW, 0o600)
        except FileExistsError:
            continue  # taken (by chance, or planted): draw another name
        except OSError as exc:
            raise FileWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        try:
            os.fchmod(fd, 0o600)  # whatever the umask or a default ACL
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # in use: not stale
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return tmp, fd
    raise FileWriteError(f"cannot write {path}: could not create a temporary file beside it")


class _HashingWriter:
    """Counts and hashes every byte on its way to the file."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class PendingFile:
    """A private temporary that becomes ``path`` on :meth:`publish` (``.gz``: compressed).

    :meth:`complete` flushes and fsyncs it; until :meth:`publish` (or
    :meth:`abort`) it stays open and locked, so no other run takes it for stale.
    """

    def __init__(
        self, path: Path, *, compress: bool | None = None, unwritten: str = "nothing was written under that name"
    ) -> None:
        check_destination(path, with_manifest=False)
        self.path = path
        self.unwritten = unwritten  # what is true when writing fails
        self.tmp, fd = create_temporary(path)
        self._raw = os.fdopen(fd, "wb", buffering=1 << 20)
        self._hashing = _HashingWriter(self._raw)
        compress = path.name.endswith(".gz") if compress is None else compress
        self._out: Any = (
            gzip.GzipFile(fileobj=self._hashing, mode="wb", compresslevel=6, mtime=0) if compress else self._hashing
        )
        self.completed = self.published = False

    def write(self, data: bytes) -> None:
        with _writing(self.path, self.unwritten):
            self._out.write(data)

    @property
    def sha256(self) -> str:
        return self._hashing.sha256.hexdigest()

    @property
    def size(self) -> int:
        return self._hashing.bytes

    def complete(self) -> None:
        """Everything written is on disk (flushed and fsync'd), still under the temporary name."""
        with _writing(self.path, self.unwritten):
            if self._out is not self._hashing:
                self._out.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
        self.completed = True

    def publish(self) -> None:
        """Rename the completed temporary to its final name (replacing a regular file only)."""
        assert self.completed
        check_destination(self.path, with_manifest=False)  # again: the name may have been taken meanwhile
        with _writing(self.path, self.unwritten):
            os.replace(self.tmp, self.path)
        self.published = True
        self._raw.close()

    def abort(self) -> None:
        """Delete the temporary (after a failure or a stop); nothing appears under the final name."""
        if self.published:
            return
        try:
            if self._out is not self._hashing:
                self._out.close()
        except (OSError, ValueError):
            pass  # a full disk: the file goes anyway
        try:
            self._raw.close()
        except (OSError, ValueError):
            pass
        finally:
            self.tmp.unlink(missing_ok=True)


class ExportFiles:
    """An export and its manifest, published together once both are complete.

    Creating it removes the stale temporaries of the destination's directory
    (:attr:`removed_temporaries` says how many) and refuses a destination that
    is not a regular file.
    """

    def __init__(self, path: Path, *, compress: bool | None = None) -> None:
        check_destination(path)
        self.path = path
        self.manifest = manifest_path(path)
        self.removed_temporaries = remove_stale_temporaries(_directory_of(path))
        self.data = PendingFile(path, compress=compress)
        self._manifest_file: PendingFile | None = None

    def write(self, data: bytes) -> None:
        self.data.write(data)

    @property
    def sha256(self) -> str:
        return self.data.sha256

    @property
    def size(self) -> int:
        return self.data.size

    def complete(self, manifest: Callable[[], dict[str, Any]]) -> None:
        """Finish the data file, then write the manifest ``manifest()`` gives (it may read :attr:`sha256`)."""
        self.data.complete()
        self._manifest_file = PendingFile(
            self.manifest, compress=False, unwritten=f"nothing was written under it or under {self.path}"
        )
        self._manifest_file.write((json.dumps(manifest(), indent=2, ensure_ascii=False) + "\n").encode())
        self._manifest_file.complete()

    def publish(self) -> None:
        """Both final names at once, as nearly as renames allow: the manifest first, then the data."""
        assert self._manifest_file is not None
        self._manifest_file.publish()
        try:
            self.data.publish()
        except BaseException:
            self.manifest.unlink(missing_ok=True)  # no manifest for a file that is not there
            raise
        _fsync_directory(_directory_of(self.path))

    def abort(self) -> None:
        self.data.abort()
        if self._manifest_file is not None:
            self._manifest_file.abort()


def remove_stale_temporaries(directory: Path) -> int:
    """Delete the temporaries that killed chatdb runs left in ``directory``; return how many went.

    A temporary is stale when it is a regular file owned by this user, its
    writer's process (the pid in its name) is gone, and nobody holds its lock.
    A planted link or a file of another user with a matching name is left alone.
    """
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        found = TEMPORARY_NAME.fullmatch(entry.name)
        if found is None or int(found["pid"]) == os.getpid() or _process_running(int(found["pid"])):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue  # a link (ELOOP), or gone already
        try:
            seen = os.fstat(fd)
            if not stat.S_ISREG(seen.st_mode) or seen.st_uid != os.geteuid():
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            now = os.lstat(entry.path)
            if (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue  # locked by a writer (another pid namespace), or not ours to remove
        finally:
            os.close(fd)
    if removed:
        _fsync_directory(directory)
    return removed


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory if str(directory) else ".", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """``data`` as a private JSON file that appears under ``path`` only when whole."""
    pending = PendingFile(path, compress=False)
    try:
        pending.write((json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
        pending.complete()
        pending.publish()
    except BaseException:
        pending.abort()
        raise
    _fsync_directory(_directory_of(path))
