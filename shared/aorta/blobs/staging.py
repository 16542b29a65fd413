"""The local store's staging area: how a put becomes an object atomically, and how the leftovers
of a crashed process are found and removed.

A put writes `<root>/.aorta/staging/<store instance>/<random>.part` (same filesystem as the
objects), fsyncs it, renames it to the object's path (`os.replace`, atomic on POSIX) and fsyncs
the folders whose entries changed, so the rename itself survives a power loss.

Each store instance owns its staging folder and holds an exclusive `flock` on a `lock` file in
it for its lifetime. A process that dies loses its lock, so whoever opens the store next finds
that folder unlocked and removes it: crash leftovers go, while the uploads of another live
process sharing the root stay. Everything here blocks; the store calls it from its threads.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aorta.blobs.port import BlobInfo
from aorta.errors import Conflict

# A staging folder still being set up (see `claim_staging`) is left alone for this long.
_SETUP_GRACE_SECONDS = 60.0
DIRECT_ALIGNMENT = 4096
"""Bytes a direct write's buffer, length and offset are multiples of (the common block size)."""
# Puts racing with deletes that prune empty folders retry the rename this many times.
_RENAME_ATTEMPTS = 8


def file_info(key: str, status: os.stat_result, sha256: str | None = None) -> BlobInfo:
    """The `BlobInfo` of an object file."""
    modified = datetime.fromtimestamp(status.st_mtime, UTC)
    return BlobInfo(key=key, size=status.st_size, modified=modified, sha256=sha256)


class StagedFile:
    """An object being written: a file in the staging folder, hashed as it is written.

    Where the filesystem allows it, whole blocks go to the disk with `O_DIRECT`, past the page
    cache: a buffered write costs the kernel a copy into the cache and, once memory is short,
    reclaiming it, which the profiles of uploads show as more CPU than all the rest of the
    gateway's work; a direct write costs almost none. Each block is copied first into a
    page-aligned buffer (what `O_DIRECT` requires), a far cheaper copy. A block whose length is
    not a multiple of `DIRECT_ALIGNMENT` (a file's last block) and any filesystem that refuses
    direct I/O (tmpfs) get ordinary writes from then on.
    """

    def __init__(self, path: Path, *, direct: bool = True) -> None:
        self._path = path
        self._fd = -1
        self._hash = hashlib.sha256()
        self._want_direct = direct and hasattr(os, "O_DIRECT")
        self._direct = False
        self._aligned: mmap.mmap | None = None

    def open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        if self._want_direct:
            try:
                self._fd = os.open(self._path, flags | os.O_DIRECT, 0o666)
            except OSError as error:
                if error.errno != errno.EINVAL:
                    raise
            else:
                self._direct = True
                return
        self._fd = os.open(self._path, flags, 0o666)

    def write(self, block: bytearray) -> None:
        self._hash.update(block)
        if self._direct and len(block) % DIRECT_ALIGNMENT == 0:
            self._write_all(self._aligned_copy(block))
            return
        self._buffered()
        self._write_all(block)

    def _aligned_copy(self, block: bytearray) -> mmap.mmap:
        """`block` in a page-aligned buffer of its length (an anonymous mapping), reused."""
        if self._aligned is None or len(self._aligned) != len(block):
            self._release_aligned()
            self._aligned = mmap.mmap(-1, len(block))
        self._aligned[:] = block
        return self._aligned

    def _write_all(self, data: bytearray | mmap.mmap) -> None:
        with memoryview(data) as view:
            written = 0
            while written < len(view):
                try:
                    written += os.write(self._fd, view[written:])
                except OSError as error:
                    # Refused direct I/O (an unaligned rest after a short write, a filesystem
                    # that accepted O_DIRECT at open only): go on through the page cache.
                    if error.errno != errno.EINVAL or not self._direct:
                        raise
                    self._buffered()

    def _buffered(self) -> None:
        """Ordinary, cached writes from now on."""
        if self._direct:
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
            self._direct = False

    def _release_aligned(self) -> None:
        if self._aligned is not None:
            self._aligned.close()
            self._aligned = None

    def commit(self, root: Path, target: Path, key: str) -> BlobInfo:
        """Makes the file durable and renames it to `target`: the commit point of a put."""
        self._release_aligned()
        os.fsync(self._fd)
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
        self._release_aligned()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._path.unlink(missing_ok=True)


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
