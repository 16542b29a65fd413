"""The local-folder blob store: the embedded platform's default, one file per object.

An object `a/b/c.txt` is the file `<root>/a/b/c.txt`, so an operator or a person can look at
the bytes directly. Writes never show a partial file under its final name: `put` writes into a
staging folder of its own under `<root>/.aorta/staging/` and renames into place once the file is
durable; a store opening removes what dead stores left there (`aorta.blobs.staging`).

All file I/O runs in the store's own threads, a few MiB per call, so a many-GiB put or get
never blocks the event loop for long. A put writes one batch of chunks (4 MiB, gathered
uncopied into one `writev`) while the next one fills; a get reads the next chunk while its
consumer takes the current one. Large objects do not stay in the page cache
(`aorta.blobs.page_cache`).

What a folder cannot mirror from S3: a key and a key below it (`a/b` and `a/b/c`) cannot both
exist, because `a/b` would have to be a file and a folder at once; `put` raises `Conflict`. On a
case-insensitive filesystem (macOS by default) keys differing only in case name one object.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from aorta.blobs.keys import RESERVED_SEGMENT, check_key, check_prefix
from aorta.blobs.page_cache import DropBehind
from aorta.blobs.port import DEFAULT_CHUNK_SIZE, BlobInfo
from aorta.blobs.staging import StagedFile, claim_staging, file_info, remove_stale_staging
from aorta.blobs.streams import WorkerThreads, batches, check_range, settle
from aorta.errors import AortaError, Internal, Invalid, NotFound, Unavailable
from aorta.logger import get_logger

_log = get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

BATCH_BYTES = 4 << 20
"""How many bytes of a put's chunks go to the file in one call."""
_DELETE_BATCH = 256


class LocalBlobStore:
    """A `BlobStore` over a folder (see the module docstring for the layout and guarantees).

    Constructing it blocks (it creates the folders, takes its lock and removes stale staging
    folders); from async code use `await LocalBlobStore.open(root)`.
    """

    def __init__(self, root: Path, *, workers: int = 8) -> None:
        self._root = Path(root).absolute()
        self._root.mkdir(parents=True, exist_ok=True)
        area = self._root / RESERVED_SEGMENT / "staging"
        removed = remove_stale_staging(area)
        if removed:
            _log.info("removed stale staging folders", root=str(self._root), count=removed)
        self._staging, self._lock_fd = claim_staging(area)
        self._threads = WorkerThreads("aorta-blobs-local", workers)
        self._closed = False

    @classmethod
    async def open(cls, root: Path, *, workers: int = 8) -> LocalBlobStore:
        """Opens (creating if needed) the store at `root` without blocking the loop."""
        return await asyncio.to_thread(cls, root, workers=workers)

    @property
    def root(self) -> Path:
        return self._root

    async def put(self, key: str, chunks: AsyncIterable[bytes | memoryview]) -> BlobInfo:
        target = self._path(key)
        staged = StagedFile(self._staging / f"{uuid.uuid4().hex}.part")
        writing: asyncio.Future[None] | None = None
        try:
            await self._io(staged.open)
            async with aclosing(batches(chunks, BATCH_BYTES)) as source:
                async for batch in source:
                    if writing is not None:
                        # One batch on its way to the file while the next one fills: the
                        # sender is not kept waiting on the disk, nor the disk on the sender.
                        previous, writing = writing, None
                        await self._finish(previous)
                    writing = self._threads.submit(staged.write, batch)
            if writing is not None:
                previous, writing = writing, None
                await self._finish(previous)
            return await self._io(staged.commit, self._root, target, key)
        except BaseException:
            if writing is not None:
                await settle(writing)  # its thread must be off the file before it goes
            # A staging file that cannot be removed now goes when this store closes or,
            # after a crash, when the next one opens: never mask the original error.
            with contextlib.suppress(AortaError):
                await self._io(staged.discard)
            raise

    async def get(
        self,
        key: str,
        *,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncGenerator[bytes, None]:
        path = self._path(key)
        check_range(offset, length, chunk_size)
        fd = await self._io(_open_object, path, key)
        reader = _Reader(fd, offset, length, chunk_size)
        reading: asyncio.Future[bytes] | None = None
        try:
            reading = self._threads.submit(reader.next)
            while data := await self._finish(reading):
                # The next chunk is read while this one is on its way: a file read from the
                # disk (large ones leave the page cache) streams at the slower of the two.
                reading = self._threads.submit(reader.next)
                yield data
            reading = None
        finally:
            if reading is not None:
                await settle(reading)  # its thread must be off the descriptor first
            os.close(fd)

    async def stat(self, key: str) -> BlobInfo:
        path = self._path(key)
        return await self._io(_stat_object, path, key)

    async def list(self, prefix: str) -> AsyncGenerator[BlobInfo, None]:
        check_prefix(prefix)
        folder, _, start = prefix.rpartition("/")
        top = self._root.joinpath(*folder.split("/")) if folder else self._root
        key_prefix = folder + "/" if folder else ""
        pending = [iter(await self._io(_scan, top, key_prefix, start))]
        while pending:
            entry = next(pending[-1], None)
            if entry is None:
                pending.pop()
            elif entry.info is None:
                pending.append(iter(await self._io(_scan, entry.path, entry.key, "")))
            else:
                yield entry.info

    async def delete(self, key: str) -> None:
        path = self._path(key)
        if not await self._io(_delete_files, self._root, [path]):
            raise NotFound(f"blob {key!r} not found")

    async def delete_prefix(self, prefix: str) -> int:
        if prefix == "":
            raise Invalid("delete_prefix needs a non-empty prefix")
        check_prefix(prefix)
        deleted = 0
        batch: list[Path] = []
        async with aclosing(self.list(prefix)) as listing:
            async for info in listing:
                batch.append(self._path(info.key))
                if len(batch) == _DELETE_BATCH:
                    deleted += await self._io(_delete_files, self._root, batch)
                    batch = []
        if batch:
            deleted += await self._io(_delete_files, self._root, batch)
        return deleted

    async def copy(self, source: str, target: str) -> BlobInfo:
        """Streams `source` into `target` through `put`, so the copy is atomic, cancellable and
        returns a sha256 (a kernel copy could do neither)."""
        check_key(source)
        if source == target:
            return await self.stat(source)
        async with aclosing(self.get(source)) as data:
            return await self.put(target, data)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._threads.close()
        await asyncio.to_thread(shutil.rmtree, self._staging, ignore_errors=True)
        os.close(self._lock_fd)

    async def _io(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs blocking file work in a thread; OSErrors leave as `aorta.errors`."""
        return await self._finish(self._threads.submit(fn, *args, **kwargs))

    async def _finish(self, future: asyncio.Future[T]) -> T:
        """The outcome of file work submitted to the threads, OSErrors as `aorta.errors`."""
        try:
            return await self._threads.finish(future)
        except OSError as error:
            raise self._translate(error) from error

    def _translate(self, error: OSError) -> AortaError:
        where = f"the blob folder {str(self._root)!r}"
        reason = error.strerror or str(error)
        if error.errno in {errno.ENOSPC, errno.EDQUOT}:
            return Unavailable(f"{where} is full: {reason}")
        if error.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
            return Internal(f"{where} cannot be written: {reason} ({error.filename})")
        return Internal(f"a file operation in {where} failed: {reason} ({error.filename})")

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*check_key(key).split("/"))


class _Reader:
    """Reads a range of an open object chunk by chunk (blocking; one call at a time), leaving a
    large range's pages out of the page cache behind it (`aorta.blobs.page_cache`)."""

    def __init__(self, fd: int, offset: int, length: int | None, chunk_size: int) -> None:
        self._fd = fd
        self._position = offset
        self._end = None if length is None else offset + length
        self._chunk_size = chunk_size
        self._cache = DropBehind(fd, offset)

    def next(self) -> bytes:
        """The next chunk, empty at the end of the range or of the file."""
        wanted = self._chunk_size
        if self._end is not None:
            wanted = min(wanted, self._end - self._position)
        data = os.pread(self._fd, wanted, self._position) if wanted > 0 else b""
        self._position += len(data)
        if data:
            self._cache.moved(self._position)
        else:
            self._cache.finished(self._position)
        return data


@dataclass(frozen=True)
class _Entry:
    path: Path
    key: str
    info: BlobInfo | None  # None for a folder


def _scan(folder: Path, key_prefix: str, start: str) -> list[_Entry]:
    """The objects and subfolders of `folder` whose names start with `start`, in key order."""
    found: list[tuple[str, _Entry]] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if not name.startswith(start) or (key_prefix == "" and name == RESERVED_SEGMENT):
                    continue
                key = key_prefix + name
                try:
                    check_key(key)
                    if entry.is_dir(follow_symlinks=False):
                        # Sorting a folder as "name/" puts its keys where they belong among
                        # its siblings' keys ("a-b" < "a/..." < "a0").
                        found.append((name + "/", _Entry(Path(entry.path), key + "/", None)))
                    elif entry.is_file(follow_symlinks=False):
                        info = file_info(key, entry.stat(follow_symlinks=False))
                        found.append((name, _Entry(Path(entry.path), key, info)))
                except (Invalid, FileNotFoundError):
                    continue  # a name no key can have, or deleted while we looked
    except (FileNotFoundError, NotADirectoryError):
        return []
    found.sort(key=lambda pair: pair[0])
    return [entry for _, entry in found]


def _open_object(path: Path, key: str) -> int:
    try:
        # Like stat and list, get sees regular files only, never what a symlink points to.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno in {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP}:
            raise NotFound(f"blob {key!r} not found") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotFound(f"blob {key!r} not found")
    return fd


def _stat_object(path: Path, key: str) -> BlobInfo:
    try:
        status = os.stat(path, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"blob {key!r} not found") from None
    if not stat.S_ISREG(status.st_mode):
        raise NotFound(f"blob {key!r} not found")
    return file_info(key, status)


def _delete_files(root: Path, paths: list[Path]) -> int:
    """Unlinks the object files that still exist, then removes the folders left empty."""
    deleted = 0
    folders: set[Path] = set()
    for path in paths:
        try:
            if not stat.S_ISREG(os.stat(path, follow_symlinks=False).st_mode):
                continue
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        deleted += 1
        folders.add(path.parent)
    # Deepest first, so a parent is tried after its children are gone.
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        _prune(root, folder)
    return deleted


def _prune(root: Path, folder: Path) -> None:
    """Removes `folder` and its ancestors below `root` while they are empty."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): a put may be using it, so stop here
        folder = folder.parent
