"""The per-platform folders of the host executors' default layout, and the removal of those
whose platform is gone.

    /var/tmp/aorta-runs-<uid>/        the per-user folder (`aorta-containers-<uid>` for the
                                      container executor): the platform's, writable by no other
      <platform key>/                 one platform's work root (`platform_key` of its data dir)
        data-dir                      0600: the resolved data dir it belongs to
        platform.lock                 0600: shared `flock` of every live executor working here

A platform on a temporary data dir (every test platform) or a removed installation would leave
its folder there forever. So each executor of the default layout records its data dir in its
folder and holds a shared lock on it for its whole life (`PlatformFolder.hold`), and at startup
removes the sibling folders whose data dir is gone and whose lock no one holds
(`remove_gone_platforms`). A folder made before the record existed is removed only once nothing
in it changed for `UNTOUCHED_FOR` seconds. Removal takes the folder's lock exclusively, checks
again, renames the folder to a name no platform uses and lets the lock go before deleting it:
a platform that opened the lock meanwhile finds it no longer names its folder and starts over
on a fresh one. A work dir chosen with `AORTA_SCHEDULER_WORK_DIR` is none of this.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path

from aorta.errors import AortaError, Invalid, Unavailable
from aorta.logger import get_logger

RECORD_NAME = "data-dir"
LOCK_NAME = "platform.lock"
UNTOUCHED_FOR = 7 * 24 * 3600.0
"""Seconds a folder without a record must have stayed unchanged before it is removed."""
FILE_MODE = 0o600
_KEY = re.compile(r"[0-9a-f]{16}")
_TRASH_PREFIX = ".gone-"
_FIX = "remove it or choose another work dir (AORTA_SCHEDULER_WORK_DIR)"

_log = get_logger(__name__)


def platform_key(data_dir: Path) -> str:
    """16 hex digits of the SHA-256 of `data_dir`'s resolved path: the same for every start of
    one platform, apart for platforms with different data dirs, and never a job folder's name
    (32 hex digits) that a sweep would take for one of its runs."""
    return _key_of(os.fsencode(Path(data_dir).resolve()))


def check_owned(folder: Path, what: str) -> None:
    """`Invalid` unless `folder` is a folder (not a link) of the platform's that no other user
    may write: whoever could rename entries in it could swap what it holds for a link."""
    status = os.lstat(folder)
    if not stat.S_ISDIR(status.st_mode):
        raise Invalid(f"{what} is not a folder (or is a link): {_FIX}")
    if status.st_uid != os.geteuid():
        raise Invalid(f"{what} belongs to uid {status.st_uid}, not to the platform: {_FIX}")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Invalid(f"{what} is writable by other users: chmod 0711 it, or {_FIX}")


class PlatformFolder:
    """One platform's work root in the default layout: `root` (`<per-user folder>/<key>`), the
    `data_dir` it belongs to, and the `mode` its executor makes folders with."""

    def __init__(self, root: Path, data_dir: Path, mode: int) -> None:
        self.root = Path(root).absolute()
        self._data_dir = Path(data_dir).resolve()
        self._mode = mode
        self._lock = -1

    async def settle(self) -> None:
        """`hold`, then `remove_gone_platforms` beside it, logging how many went; what fails is
        logged, never raised (the executor works on without)."""
        try:
            removed = await asyncio.to_thread(self._settle)
        except (AortaError, OSError) as error:
            _log.warning("platform folders not settled", root=str(self.root), error=str(error))
            return
        _log.info("folders of gone platforms removed", count=removed, folder=str(self.root.parent))

    def _settle(self) -> int:
        self.hold()
        return remove_gone_platforms(self.root.parent, self.root.name, uid=os.geteuid())

    def hold(self) -> None:
        """Takes the shared lock of the folder (making the folder and the per-user folder when
        missing) and records the data dir in it. Idempotent; blocks while a removal holds the
        lock. `Invalid` when either folder is a link, another user's or writable by others."""
        if self._lock >= 0:
            return
        for _ in range(3):  # again only when a removal took the folder meanwhile
            self.make()
            self._lock = _locked(self.root / LOCK_NAME, fcntl.LOCK_SH)
            if self._lock >= 0:
                break
        else:
            raise Unavailable(f"the work dir {self.root} was removed each time it was made")
        record = os.fsencode(self._data_dir)
        if _recorded(self.root) != record:
            _write_atomically(self.root / RECORD_NAME, record)

    def make(self) -> None:
        """Makes the per-user folder and the folder itself where missing, then checks both
        (`check_owned`). Blocks."""
        user_folder = self.root.parent
        for folder, what in (
            (user_folder, f"the folder {user_folder} above the work dir"),
            (self.root, f"the work dir {self.root}"),
        ):
            _make_folder(folder, self._mode)
            check_owned(folder, what)

    def release(self) -> None:
        """Lets the lock go (the process' end does the same). Idempotent."""
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1


def remove_gone_platforms(
    user_folder: Path, keep: str, *, uid: int, now: float | None = None
) -> int:
    """Removes the platform folders in `user_folder` (a checked per-user folder) other than
    `keep` whose recorded data dir is gone, or which have no record and were untouched for
    `UNTOUCHED_FOR` seconds before `now`, unless their lock is held; and what an earlier
    removal left half done. Only folders, never links, owned by `uid` and named by a platform
    key. How many were removed; a folder that cannot be judged or removed is logged and kept.
    Blocks."""
    now = time.time() if now is None else now
    removed = 0
    with os.scandir(user_folder) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        path = user_folder / name
        try:
            if not _owned_folder(path, uid):
                continue
            if name.startswith(_TRASH_PREFIX):
                _remove_tree(path)
            elif _KEY.fullmatch(name) and name != keep and _remove_if_gone(path, now):
                removed += 1
        except OSError as error:
            _log.warning("platform folder not removed", folder=str(path), error=str(error))
    return removed


def _remove_if_gone(folder: Path, now: float) -> bool:
    folder_mtime = os.lstat(folder).st_mtime  # before the lock file is made in it
    if not _gone(folder, folder_mtime, now):
        return False
    lock = _locked(folder / LOCK_NAME, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if lock < 0:
        return False  # a live platform holds it, or another removal does
    try:
        # Again while no platform can take it: one may have recorded itself meanwhile.
        if not _gone(folder, folder_mtime, now):
            return False
        trash = folder.with_name(f"{_TRASH_PREFIX}{folder.name}-{secrets.token_hex(4)}")
        os.rename(folder, trash)
    finally:
        os.close(lock)
    _log.info("folder of a gone platform removed", folder=str(folder))
    _remove_tree(trash)
    return True


def _gone(folder: Path, folder_mtime: float, now: float) -> bool:
    """Whether the folder's recorded data dir is gone; without a record, whether nothing in the
    folder changed for `UNTOUCHED_FOR` seconds."""
    record = _recorded(folder)
    if record is not None and _key_of(record) == folder.name:
        try:
            os.lstat(record)
        except (FileNotFoundError, NotADirectoryError):
            return True
        return False
    touched = [folder_mtime]
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                touched.append(entry.stat(follow_symlinks=False).st_mtime)
    return now - max(touched) >= UNTOUCHED_FOR


def _recorded(folder: Path) -> bytes | None:
    """The data dir recorded in `folder`; None without a record (or a link, or no file)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(folder / RECORD_NAME, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return os.read(descriptor, 4096)
    finally:
        os.close(descriptor)


def _locked(path: Path, operation: int) -> int:
    """The descriptor of the lock file `path` once locked by `operation` and still the file
    `path` names; -1 when a holder keeps it (non-blocking) or it was renamed away meanwhile."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags, FILE_MODE)
    except FileNotFoundError:
        return -1  # its folder was renamed away
    try:
        fcntl.flock(descriptor, operation)
        if os.fstat(descriptor).st_ino == os.lstat(path).st_ino:
            return descriptor
    except (BlockingIOError, FileNotFoundError):
        pass
    except BaseException:
        os.close(descriptor)
        raise
    os.close(descriptor)
    return -1


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}-{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, FILE_MODE)
    try:
        os.write(descriptor, content)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def _make_folder(folder: Path, mode: int) -> None:
    try:
        os.mkdir(folder, mode)
    except FileExistsError:
        return  # checked by the caller like any other
    os.chmod(folder, mode)  # mkdir's mode is cut by the umask


def _owned_folder(path: Path, uid: int) -> bool:
    status = os.lstat(path)
    return stat.S_ISDIR(status.st_mode) and status.st_uid == uid


def _remove_tree(folder: Path) -> None:
    """Removes `folder` without following links; folders an operator made read-only are made
    writable first."""
    try:
        shutil.rmtree(folder)
    except PermissionError:
        pending = [folder]
        while pending:
            current = pending.pop()
            os.chmod(current, stat.S_IRWXU)
            with os.scandir(current) as entries:
                pending += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        shutil.rmtree(folder)


def _key_of(path: bytes) -> str:
    return hashlib.sha256(path).hexdigest()[:16]
