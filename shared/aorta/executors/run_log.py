"""The captured output of one run: a bounded local file, pushed whole to the blob store.

The operator's stdout and stderr arrive as raw chunks and are appended as they come, so the file
holds exactly what the operator wrote, partial lines included. It never grows past `max_bytes`:
when it would, it is rewritten as a marker line followed by the most recent half of the output.
Because it stays small, each push to the blob store re-puts the whole file, atomically, and a
reader of the blob sees a consistent prefix of the output.

Lines the executor adds about the run (why it failed to start, a timeout) start with `[aorta]`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from aorta.blobs import BlobStore
from aorta.errors import NotFound
from aorta.opened_files import open_in_thread

NOTE_PREFIX = "[aorta] "
_CHUNK = 1 << 20
_TAIL_BYTES = 64 << 10


class RunLog:
    """The log file of one run. One writer (the run) appends; any number of readers read.

    Appends and notes are serialised; `push` reads a snapshot without blocking them (a
    truncation replaces the file, so a reader keeps the file it opened).
    """

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._size = 0
        self._dropped = 0
        self._marker_size = 0  # the marker line at the top of the file after a truncation
        self._ends_line = True
        self._version = 0
        self._pushed_version = -1
        self._lock = asyncio.Lock()
        self.created = False

    async def create(self) -> None:
        """Creates the file empty (replacing what a previous process left)."""
        async with self._lock:
            await asyncio.to_thread(self.create_blocking)

    def create_blocking(self) -> None:
        """`create` in the calling thread, before any other use of the log: for a run that
        makes its workspace in the same worker thread. Blocks."""
        # The file and nothing else: two system calls, no buffered file object.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        os.close(os.open(self.path, flags, 0o666))
        self.created = True

    async def append(self, data: bytes) -> None:
        """Appends raw output; truncates the file when it would pass `max_bytes`."""
        if data:
            async with self._lock:
                await asyncio.to_thread(self._append, data)

    async def note(self, text: str) -> None:
        """Appends a line from the executor, `[aorta] text`, on a line of its own."""
        line = ("" if self._ends_line else "\n") + NOTE_PREFIX + text + "\n"
        await self.append(line.encode("utf-8"))

    async def push(self, blobs: BlobStore, key: str, *, absent_when_empty: bool = False) -> None:
        """Puts the whole file under `key` unless nothing changed since the last push.

        Atomic (the blob store's put): a cancelled or failed push leaves the previous copy.

        `absent_when_empty`, for a log whose readers take a missing object for an empty log (an
        operator's, `Jobs.ReadLogs`): while nothing was written to the log `create` made, the
        object under `key` (an earlier attempt's) is deleted instead of an empty file put, so
        a run that wrote nothing costs the store no durable write.
        """
        version = self._version
        if version == self._pushed_version:
            return
        if absent_when_empty and self.created and version == 0:
            with contextlib.suppress(NotFound):
                await blobs.delete(key)
        else:
            await blobs.put(key, file_chunks(await open_for_reading(self.path)))
        self._pushed_version = version

    async def tail(self, lines: int) -> list[str]:
        """The last `lines` lines of the file (fewer when it has fewer)."""
        data = await asyncio.to_thread(_read_tail, self.path, _TAIL_BYTES)
        return data.decode("utf-8", errors="replace").splitlines()[-lines:]

    def _append(self, data: bytes) -> None:
        with self.path.open("ab") as file:
            file.write(data)
        self._size += len(data)
        self._ends_line = data.endswith(b"\n")
        self._version += 1
        if self._size > self._max_bytes:
            self._truncate()

    def _truncate(self) -> None:
        keep = self._max_bytes // 2
        with self.path.open("rb") as file:
            file.seek(max(0, self._size - keep))
            tail = file.read()
        # Start on a line boundary, unless the kept part is a single line.
        newline = tail.find(b"\n")
        if 0 <= newline < len(tail) - 1:
            tail = tail[newline + 1 :]
        # The tail never reaches the marker: the file is over twice the kept size.
        self._dropped += self._size - self._marker_size - len(tail)
        marker = (
            f"{NOTE_PREFIX}{self._dropped} bytes of earlier output were dropped to keep this "
            f"log under {self._max_bytes} bytes\n"
        ).encode()
        staged = self.path.with_name(self.path.name + ".part")
        staged.write_bytes(marker + tail)
        os.replace(staged, self.path)
        self._size = len(marker) + len(tail)
        self._marker_size = len(marker)


async def open_for_reading(path: Path) -> BinaryIO:
    """Opens `path` for `file_chunks`; `FileNotFoundError` when it does not exist. Cancelled
    while its thread opens the file (a log push cancelled as its run ends), it closes the file
    once opened (`open_in_thread`)."""
    return await open_in_thread(path.open, "rb")


def file_chunks(file: BinaryIO) -> AsyncGenerator[bytes, None]:
    """The bytes of an open file, a block at a time; closes it when done, when closed early,
    and when dropped without having been read at all (a put cancelled before its first read):
    a generator that never started never runs its own `finally`."""
    chunks = _chunks(file)
    weakref.finalize(chunks, file.close)
    return chunks


async def _chunks(file: BinaryIO) -> AsyncGenerator[bytes, None]:
    try:
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            yield chunk
    finally:
        file.close()


async def split_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    """The lines of a UTF-8 byte stream (invalid bytes replaced), without line endings.

    A last line with no newline is yielded too: it is what the operator has written so far.
    `chunks` is closed when this generator ends, early or not.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    try:
        async for chunk in chunks:
            pending += decoder.decode(chunk)
            *complete, pending = pending.split("\n")
            for line in complete:
                yield line.removesuffix("\r")
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending.removesuffix("\r")
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _read_tail(path: Path, size: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - size))
            return file.read()
    except FileNotFoundError:
        return b""
