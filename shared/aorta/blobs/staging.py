"""The local store's staging area: how a put becomes an object atomically, and how the leftovers
of a crashed process are found and removed.

A put writes `<root>/.aorta/staging/<store instance>/<random>.part` (same filesystem as the
objects; a large file's pages leave the page cache behind it, `aorta.blobs.page_cache`), fsyncs
it, renames it to the object's path (`os.replace`, atomic on POSIX) and fsyncs the folders
whose entries changed, so the rename itself survives a power loss.

Each store instance owns its staging folder and holds an exclusive `flock` on a `lock` file in
it for its lifetime. A process that dies loses its lock, so whoever opens the store next finds
that folder unlocked and removes it: crash leftovers go, while the uploads of another live
process sharing the root stay. Everything here blocks; the store calls it from its threads.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from aorta.blobs.page_cache import DropBehind
from aorta.blobs.port import BlobInfo
from aorta.errors import Conflict

# A staging folder still being set up (see `claim_staging`) is left alone for this long.
_SETUP_GRACE_SECONDS = 60.0
# The most pieces one writev takes (POSIX guarantees at least 16; Linux takes 1024).
_IOV_MAX = max(16, os.sysconf("SC_IOV_MAX"))
# Puts racing with deletes that prune empty folders retry the rename this many times.
_RENAME_ATTEMPTS = 8


def file_info(key: str, status: os.stat_result, sha256: str | None = None) -> BlobInfo:
    """The `BlobInfo` of an object file."""
    modified = datetime.fromtimestamp(status.st_mtime, UTC)
    return BlobInfo(key=key, size=status.st_size, modified=modified, sha256=sha256)


class StagedFile:
    """An object being written: a file in the staging folder, hashed as it is written."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1
        self._hash = hashlib.sha256()
        self._size = 0
        self._cache = DropBehind(self._fd)  # for the file `open` opens

    def open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._fd = os.open(self._path, flags, 0o666)
        self._cache = DropBehind(self._fd)

    def write(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        """Appends `pieces` to the file in one gathered write (a few, for many pieces)."""
        for piece in pieces:
            self._hash.update(piece)
        self._size += _write_all(self._fd, pieces)
        self._cache.moved(self._size)

    def commit(self, root: Path, target: Path, key: str) -> BlobInfo:
        """Makes the file durable and renames it to `target`: the commit point of a put."""
        os.fsync(self._fd)
        self._cache.finished(self._size)
        status = os.fstat(self._fd)
        os.close(self._fd)
        self._fd = -1
        for _ in range(_RENAME_ATTEMPTS):
            created = _make_folders(root, target.parent, key)
            try:
                os.replace(self._path, target)
            except IsADirectoryError:
                # An empty folder left by a crash mid-delete may stand in the way; a folder
                # holding other objects is a real conflict.
                try:
                    target.rmdir()
                except OSError:
                    raise Conflict(
                        f"blob {key!r} cannot be stored: other objects have keys below it"
                    ) from None
                continue
            except (FileNotFoundError, NotADirectoryError):
                continue  # a concurrent delete pruned a folder we had just made
            for folder in {*created, target.parent}:
                _fsync_folder(folder)
            return file_info(key, status, self._hash.hexdigest())
        raise Conflict(f"blob {key!r} could not be stored: its folder kept disappearing")

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._path.unlink(missing_ok=True)


def _write_all(fd: int, pieces: Sequence[bytes | bytearray | memoryview]) -> int:
    """Writes `pieces` one after another with as few `writev` calls as the system allows;
    returns how many bytes that was."""
    views = [memoryview(piece) for piece in pieces]
    total = 0
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        total += written
        # A short write (a signal, a full disk's last blocks) resumes where it stopped.
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]
    return total


def _make_folders(root: Path, folder: Path, key: str) -> set[Path]:
    """Creates the folders from `root` down to `folder`; returns the parents whose entries
    changed (they need an fsync). `Conflict` when an object stands where a folder must be."""
    changed: set[Path] = set()
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        try:
            current.mkdir()
            changed.add(current.parent)
        except FileExistsError:
            if not current.is_dir():
                existing = current.relative_to(root).as_posix()
                raise Conflict(
                    f"blob {key!r} cannot be stored: {existing!r} is an object, not a folder"
                ) from None
    return changed


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def claim_staging(area: Path) -> tuple[Path, int]:
    """Creates this instance's staging folder, already locked when it appears under its name.

    The folder is built under a `.new-` name, its lock taken, then renamed: a cleaner can never
    find it unlocked while its owner lives.
    """
    area.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    building = area / f".new-{name}"
    building.mkdir()
    fd = os.open(building / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    final = area / name
    os.replace(building, final)
    return final, fd


def remove_stale_staging(area: Path) -> int:
    """Removes the staging folders whose owner died (their lock is free); returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(area))
    except FileNotFoundError:
        return 0
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith(".new-"):
            # Being set up right now, or left by a crash during set-up (it holds no data).
            try:
                age = time.time() - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue  # its owner just renamed it
            if age > _SETUP_GRACE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
            continue
        if not entry.is_dir(follow_symlinks=False):
            path.unlink(missing_ok=True)
            continue
        try:
            fd = os.open(path / "lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            shutil.rmtree(path, ignore_errors=True)  # a removal interrupted by a crash
            removed += 1
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its owner is alive
        else:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        finally:
            os.close(fd)
    return removed
