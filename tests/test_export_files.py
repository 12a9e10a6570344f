"""The files chatdb writes, against an attacker and a full disk.

Temporaries are created exclusively under unpredictable names, never through a
planted link; a destination that is not a regular file is refused, never
replaced; hostile names work or are refused in one line; temporaries left by
killed runs are cleaned up (and only those); a full disk names the file and
leaves no final name unless data and manifest are both complete.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed, snapshot
from processes import kill_when, start

from chatdb.errors import DestinationError
from chatdb.jobs.atomic_files import TEMPORARY_NAME, check_destination
from chatdb.jobs.files import manifest_path

OLD = "2020-01-01T00:00:00+00:00"
NOBODY = 65534


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def assert_export(path: Path, conversations: int) -> None:
    """A whole, private export with its private manifest."""
    data = path.read_bytes()
    lines = (gzip.decompress(data) if path.name.endswith(".gz") else data).splitlines()
    assert len(lines) == conversations
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["conversations"] == conversations
    for file in (path, manifest_path(path)):
        assert stat.S_ISREG(os.lstat(file).st_mode) and os.lstat(file).st_mode & 0o777 == 0o600, file


# --- planted links and guessed names -------------------------------------------------------------


@pytest.fixture
def guessed_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An attacker who knows the "random" part of the temporaries' names.

    Every other draw is the guessed one, so each file the writer creates (the
    export, then its manifest) first meets a name the attacker planted.
    """
    import secrets

    import chatdb.jobs.atomic_files as files

    known = "0123456789abcdef"
    draws = iter(range(10**6))
    monkeypatch.setattr(
        files.secrets, "token_hex", lambda n: known if next(draws) % 2 == 0 else secrets.token_bytes(n).hex()
    )
    return [known]


def plant(kind: str, at: Path, victim: Path) -> None:
    if kind == "symlink to a file":
        at.symlink_to(victim)
    elif kind == "dangling symlink":
        at.symlink_to(victim.parent / "created-through-the-link")
    elif kind == "symlink to a directory":
        at.symlink_to(victim.parent)
    else:  # a hard link to the victim: writing to it would change the victim
        os.link(victim, at)


@pytest.mark.parametrize("kind", ["symlink to a file", "dangling symlink", "symlink to a directory", "hard link"])
def test_a_link_planted_at_the_temporary_name_is_never_followed(
    cli: Cli, migrated_db: TestDatabase, tmp_path: Path, guessed_tokens: list[str], kind: str
) -> None:
    seed(migrated_db, 4)
    out_dir, elsewhere = tmp_path / "shared", tmp_path / "elsewhere"
    out_dir.mkdir()
    elsewhere.mkdir()
    victim = elsewhere / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    target = out_dir / "all.jsonl"
    # Every name the writer could pick: the old predictable one and the ones the attacker guessed.
    names = [f".{target.name}.{os.getpid()}.tmp", f".{manifest_path(target).name}.{os.getpid()}.tmp"]
    for token in guessed_tokens:
        for name in (target.name, manifest_path(target).name):
            names.append(f".{name}.chatdb-{os.getpid()}-{token}.tmp")
    for name in names:
        plant(kind, out_dir / name, victim)
    result = cli("export", "-o", str(target), "--quiet")
    assert result.exit_code == 0, result.stderr
    assert_export(target, 4)
    assert victim.read_text() == "precious\n" and victim.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in elsewhere.iterdir()) == ["victim"]
    # The planted names are left as they were: chatdb neither used nor removed them.
    for name in names:
        assert os.path.lexists(out_dir / name), name


def test_a_shared_sticky_directory(cli: Cli, migrated_db: TestDatabase, tmp_path: Path, guessed_tokens) -> None:
    """A world-writable sticky directory (like /tmp) where another user plants links and look-alikes."""
    seed(migrated_db, 3)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = shared / "report.jsonl.gz"
    planted = [shared / f".{target.name}.chatdb-{os.getpid()}-{token}.tmp" for token in guessed_tokens]
    planted.append(shared / f".{target.name}.{os.getpid()}.tmp")  # the name a predictable writer would use
    dead = shared / f".other.jsonl.chatdb-999999-{'a' * 16}.tmp"  # looks stale, but is not ours
    for link in planted:
        link.symlink_to(victim)
        os.lchown(link, NOBODY, NOBODY)
    dead.write_text("someone else's\n")
    os.chown(dead, NOBODY, NOBODY)
    result = cli("export", "-o", str(target), "--quiet")
    assert result.exit_code == 0, result.stderr
    assert victim.read_text() == "precious\n"
    assert dead.read_text() == "someone else's\n"
    assert all(os.path.islink(link) for link in planted)
    assert os.lstat(target).st_uid == os.geteuid() and os.lstat(target).st_mode & 0o777 == 0o600
    # The attacker then puts a link at the final name: chatdb refuses it rather than replace or follow it.
    target.unlink()
    target.symlink_to(victim)
    assert_one_line_error(cli("export", "-o", str(target)), 2, "symbolic link", "not a regular file")
    assert victim.read_text() == "precious\n" and os.path.islink(target)


@pytest.mark.parametrize(
    "name",
    [
        "with spaces.jsonl",
        "new\nline.jsonl",
        "-leading-dash.jsonl",
        "--help",
        "données-😀-ελληνικά.jsonl.gz",
        "x" * 241,
        ".hidden.jsonl",
        "ends with a space .jsonl ",
    ],
    ids=["spaces", "newline", "dash", "option-like", "unicode", "241-bytes", "hidden", "trailing-space"],
)
def test_hostile_file_names_export_and_import_back(
    cli: Cli, migrated_db: TestDatabase, tmp_path: Path, name: str
) -> None:
    seed(migrated_db, 3)
    original = snapshot(migrated_db)
    target = tmp_path / name
    result = cli("export", f"--output={target}", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert sorted(tmp_path.iterdir()) == sorted([target, manifest_path(target)])  # no temporary left
    assert_export(target, 3)
    migrated_db.sql("DELETE FROM conversations")
    imported = cli("import", str(target), "--json")
    assert imported.exit_code == 0, imported.stderr
    assert imported.json()["manifest_checked"] is True
    assert snapshot(migrated_db) == original


@pytest.mark.parametrize("length", [242, 255, 300])
def test_a_name_too_long_for_the_manifest_is_one_line_naming_the_option(
    cli: Cli, migrated_db: TestDatabase, tmp_path: Path, length: int
) -> None:
    seed(migrated_db, 2, status="archived")
    long = tmp_path / ("é" * (length // 2) + "x" * (length % 2))  # two bytes a character
    assert_one_line_error(cli("export", "-o", str(long)), 2, "-o", "too long")
    assert_one_line_error(cli("prune", "--older-than", "1y", "--yes", "--export", str(long)), 2, "--export", "too long")
    assert list(tmp_path.iterdir()) == [] and count(migrated_db) == 2


# --- destinations that are not regular files --------------------------------------------------------


def make(kind: str, path: Path) -> None:
    if kind == "character device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "symlink":
        (path.parent / "real.jsonl").write_text("kept\n")
        path.symlink_to(path.parent / "real.jsonl")
    else:
        path.symlink_to(path.parent / "nowhere.jsonl")


KINDS = ["character device", "FIFO", "directory", "socket", "symlink", "dangling symlink"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["file", "manifest"])
def test_a_destination_that_is_not_a_regular_file_is_refused_and_left_alone(
    cli: Cli, migrated_db: TestDatabase, tmp_path: Path, kind: str, where: str
) -> None:
    seed(migrated_db, 2, status="archived")
    target = tmp_path / "out.jsonl"
    node = target if where == "file" else manifest_path(target)
    make(kind, node)
    before = sorted((p.name, os.lstat(p).st_mode, os.lstat(p).st_ino) for p in tmp_path.iterdir())
    result = cli("export", "-o", str(target))
    assert_one_line_error(result, 2, str(node), "not a regular file", "use -o - for stdout")
    pruned = cli("prune", "--older-than", "1y", "--yes", "--export", str(target))
    assert pruned.exit_code in (1, 2) and count(migrated_db) == 2, pruned.stderr
    assert sorted((p.name, os.lstat(p).st_mode, os.lstat(p).st_ino) for p in tmp_path.iterdir()) == before


def test_dev_null_and_friends_are_refused_by_the_library() -> None:
    for device in ("/dev/null", "/dev/full", "/dev/stdout", "/dev/zero"):
        if os.path.lexists(device):
            with pytest.raises(DestinationError, match="not a regular file"):
                check_destination(Path(device))


# --- temporaries left behind by killed runs ---------------------------------------------------------


def test_temporaries_of_killed_runs_are_removed_by_the_next_write_to_the_directory(
    cli: Cli, migrated_db: TestDatabase, tmp_path: Path
) -> None:
    seed(migrated_db, 1000, status="archived", updated=OLD, messages=1)
    proc = start(migrated_db, "export", "-o", str(tmp_path / "first.jsonl"), "--batch-size", "2", "--quiet")
    kill_when(proc, lambda: bool(temporaries(tmp_path)))
    # And one of a writer that ended long ago (its pid is free), written to another name.
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / f".second.jsonl.gz.chatdb-{gone.pid}-{'a' * 16}.tmp").write_bytes(b"personal data")
    killed = temporaries(tmp_path)
    assert len(killed) == 2 and all(TEMPORARY_NAME.fullmatch(p.name) for p in killed)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in killed if p.name.startswith(".first"))
    # Not stale: a temporary of another user, a link, and one whose writer still runs.
    theirs = tmp_path / f".theirs.chatdb-999999-{'b' * 16}.tmp"
    theirs.write_text("x")
    os.chown(theirs, NOBODY, NOBODY)
    link = tmp_path / f".link.chatdb-999999-{'c' * 16}.tmp"
    link.symlink_to(tmp_path / "first.jsonl")
    live = subprocess.Popen(["sleep", "600"])
    running = tmp_path / f".running.chatdb-{live.pid}-{'d' * 16}.tmp"
    running.write_text("x")
    try:
        # Another name in the same directory (prune, here) cleans up; then an export finds nothing left.
        result = cli("prune", "--older-than", "1y", "--yes", "--export", str(tmp_path / "pruned.jsonl"))
        assert result.exit_code == 0, result.stderr
        assert "Removed 2 stale temporary files" in result.stderr and str(tmp_path) in result.stderr
        again = cli("export", "-o", str(tmp_path / "third.jsonl"), "--json")
        assert again.exit_code == 0 and again.json()["removed_temporaries"] == 0
        assert sorted(temporaries(tmp_path)) == sorted([theirs, link, running])
    finally:
        live.kill()
        live.wait()


def test_a_temporary_being_written_is_never_taken_for_stale(migrated_db: TestDatabase, tmp_path: Path) -> None:
    import fcntl

    from chatdb.jobs.atomic_files import remove_stale_temporaries

    seed(migrated_db, 1500, updated=OLD, messages=1)
    writer = start(migrated_db, "export", "-o", str(tmp_path / "slow.jsonl"), "--batch-size", "1", "--quiet")
    try:
        while not temporaries(tmp_path):
            assert writer.poll() is None, writer.communicate()
        # A writer in another pid namespace (a container sharing the directory): its pid means
        # nothing here, but it holds the temporary's lock.
        elsewhere = tmp_path / f".elsewhere.jsonl.chatdb-999999-{'e' * 16}.tmp"
        elsewhere.write_text("x")
        with open(elsewhere, "rb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            assert remove_stale_temporaries(tmp_path) == 0
            assert len(temporaries(tmp_path)) == 2 and writer.poll() is None
        assert remove_stale_temporaries(tmp_path) == 1  # the lock is free: the writer is gone
        assert not elsewhere.exists() and len(temporaries(tmp_path)) == 1
    finally:
        writer.kill()
        writer.communicate()


# --- a full disk ------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 64 kB mounted for the test (root only; CI runs as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` so that exactly ``leave`` bytes of blocks stay free."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        except OSError:
            pass
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    size = (disk / "filler").stat().st_size
    os.truncate(disk / "filler", max(0, size + free - leave))
    assert os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize == leave


def test_a_full_disk_names_the_file_and_leaves_nothing(cli: Cli, migrated_db: TestDatabase, small_disk: Path) -> None:
    seed(migrated_db, 400, messages=2, status="archived", updated=OLD)
    for args in (
        ("export", "-o", str(small_disk / "all.jsonl")),
        ("prune", "--older-than", "1y", "--yes", "--export", str(small_disk / "pruned.jsonl")),
    ):
        result = cli(*args)
        assert_one_line_error(
            result, 1, f"cannot write {small_disk}/", "No space left on device", "nothing was written under"
        )
        assert list(small_disk.iterdir()) == []
    assert count(migrated_db) == 400  # prune deleted nothing


@pytest.mark.parametrize("name", ["all.jsonl", "all.jsonl.gz"])
def test_when_only_the_manifest_does_not_fit_neither_name_appears(
    cli: Cli, migrated_db: TestDatabase, tmp_path: Path, small_disk: Path, name: str
) -> None:
    seed(migrated_db, 20, messages=2, status="archived", updated=OLD)
    # The same export elsewhere says how big the data file is (the export is deterministic).
    sized = cli("export", "-o", str(tmp_path / name), "--json")
    page = os.statvfs(small_disk).f_frsize
    data_pages = -(-sized.json()["bytes"] // page)
    for args in (
        ("export", "-o", str(small_disk / name)),
        ("prune", "--older-than", "1y", "--yes", "--export", str(small_disk / f"p-{name}")),
    ):
        fill(small_disk, data_pages * page)  # room for the data file, not for its manifest as well
        result = cli(*args)
        assert_one_line_error(
            result, 1, f"{name}.manifest.json", "No space left on device", "nothing was written under it or under"
        )
        assert [p.name for p in small_disk.iterdir()] == ["filler"]
        (small_disk / "filler").unlink()
    assert count(migrated_db) == 20
