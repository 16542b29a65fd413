"""What both blob adapters need to stream bytes through blocking calls without blocking the loop.

`WorkerThreads` is a store's own thread pool: file and minio calls are blocking, and running them
on the loop's default executor could starve it (it also resolves host names). `blocks` regroups
a caller's chunks, whatever their sizes, into fixed-size blocks so each blocking call moves a
worthwhile amount of data and memory stays bounded by a block or two; `batches` groups them
likewise without copying them, for a writer that gathers its pieces (`os.writev`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from aorta.errors import Invalid, Unavailable

P = ParamSpec("P")
T = TypeVar("T")


class WorkerThreads:
    """A bounded thread pool whose calls look like coroutines.

    Cancellation: a thread cannot be interrupted, so a cancelled `run` waits for its call to
    finish before re-raising `CancelledError`. Whatever the call touched (a file descriptor, an
    HTTP connection, a multipart upload) is therefore idle when the caller cleans up.
    """

    def __init__(self, name: str, workers: int) -> None:
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Starts `fn(*args, **kwargs)` in a worker thread; collect it with `finish` (or `settle`).

        `Unavailable` once `close` has been called.
        """
        if self._closed:
            raise Unavailable(f"the blob store is closed ({self._name})")
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def finish(self, future: asyncio.Future[T]) -> T:
        """The outcome of a submitted call; if cancelled meanwhile, waits for the call first."""
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await settle(future)
            raise

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs `fn(*args, **kwargs)` in a worker thread and returns (or raises) its outcome."""
        return await self.finish(self.submit(fn, *args, **kwargs))

    async def close(self) -> None:
        """Refuses new calls and waits for the ones in flight."""
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)


async def settle(future: asyncio.Future[T]) -> None:
    """Waits until `future` is done, whatever happens meanwhile, and consumes its outcome.

    Used while a cancellation is already on its way out: further cancellations are absorbed
    because the caller re-raises the first one once the blocking call is over.
    """
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            continue
    if not future.cancelled():
        future.exception()


async def blocks(
    chunks: AsyncIterable[bytes | memoryview], size: int
) -> AsyncGenerator[bytearray, None]:
    """Regroups `chunks` into blocks of exactly `size` bytes; the last one may be shorter.

    Nothing is yielded for an empty stream. Each block is a new buffer the consumer owns: the
    generator drops it, and only then allocates the next one, when asked for the next block; so
    memory is one block being filled plus whatever blocks the consumer still holds. Chunks may
    be any bytes-like object; anything else raises `Invalid`.
    """
    buffer = bytearray(size)
    filled = 0
    async for chunk in chunks:
        try:
            raw = memoryview(chunk)
        except TypeError:
            raise Invalid(
                f"blob data must be bytes, got a chunk of type {type(chunk).__name__}"
            ) from None
        # Released at once so a caller may reuse (even resize) its buffer after we are done.
        with raw, raw.cast("B") as view:
            position = 0
            while position < len(view):
                taken = min(len(view) - position, size - filled)
                buffer[filled : filled + taken] = view[position : position + taken]
                filled += taken
                position += taken
                if filled == size:
                    yield buffer
                    # Allocated only now, once the consumer is done with the previous block.
                    buffer = bytearray(size)
                    filled = 0
    if filled:
        del buffer[filled:]
        yield buffer


COALESCE_BELOW = 16 * 1024
"""Chunks smaller than this are copied together into one piece of a batch."""


async def batches(
    chunks: AsyncIterable[bytes | memoryview], size: int
) -> AsyncGenerator[list[bytes | bytearray | memoryview], None]:
    """Groups `chunks` into batches of at least `size` bytes, the last one possibly fewer.

    A chunk of `COALESCE_BELOW` bytes or more that is `bytes`, or a read-only byte view of
    `bytes` (a chunk sliced out of a gRPC message), is kept as it is, uncopied: it is
    immutable, so nothing can change it while it waits to be written. A smaller one, or any
    other bytes-like object (a buffer its caller may reuse), is copied; small ones go together
    into one piece, so a batch has at most a few hundred pieces whatever the chunk sizes.
    Empty chunks are skipped and nothing is yielded for an empty stream; anything not
    bytes-like raises `Invalid`. Memory is one batch being filled plus whatever batches the
    consumer still holds.
    """
    batch: list[bytes | bytearray | memoryview] = []
    filled = 0
    small: bytearray | None = None  # the piece small chunks are being copied into
    async for chunk in chunks:
        if _immutable(chunk) and len(chunk) >= COALESCE_BELOW:
            batch.append(chunk)
            small = None
            filled += len(chunk)
        else:
            try:
                raw = memoryview(chunk)
            except TypeError:
                raise Invalid(
                    f"blob data must be bytes, got a chunk of type {type(chunk).__name__}"
                ) from None
            # Released at once so a caller may reuse (even resize) its buffer after we are done.
            with raw, raw.cast("B") as view:
                if len(view) >= COALESCE_BELOW:
                    batch.append(bytes(view))
                    small = None
                elif small is not None:
                    small += view
                elif view:
                    small = bytearray(view)
                    batch.append(small)
                filled += len(view)
        if filled >= size:
            yield batch
            batch, filled, small = [], 0, None
    if batch:
        yield batch


def _immutable(chunk: object) -> bool:
    """Whether `chunk` is `bytes` or a contiguous, read-only byte view of `bytes`."""
    if type(chunk) is bytes:
        return True
    return (
        type(chunk) is memoryview
        and chunk.readonly
        and chunk.c_contiguous
        and chunk.format == "B"
        and type(chunk.obj) is bytes
    )


def check_range(offset: int, length: int | None, chunk_size: int) -> None:
    """`Invalid` unless `get`'s range arguments make sense."""
    if offset < 0:
        raise Invalid(f"blob read offset {offset} is negative")
    if length is not None and length < 0:
        raise Invalid(f"blob read length {length} is negative")
    if chunk_size < 1:
        raise Invalid(f"blob read chunk size {chunk_size} is below 1")
