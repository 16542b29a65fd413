"""How the local store groups a put's chunks into batches and writes them gathered."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.blobs import staging
from aorta.blobs.streams import COALESCE_BELOW, batches
from aorta.errors import Invalid


async def stream(*chunks: object) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk  # type: ignore[misc]


async def collected(*chunks: object, size: int) -> list[list[bytes | bytearray]]:
    return [batch async for batch in batches(stream(*chunks), size)]


async def test_large_bytes_chunks_are_kept_uncopied() -> None:
    big = os.urandom(COALESCE_BELOW)
    other = os.urandom(COALESCE_BELOW)
    [[first, second]] = await collected(big, other, size=4 * COALESCE_BELOW)
    assert first is big and second is other


async def test_large_views_of_bytes_are_kept_uncopied_and_views_of_buffers_copied() -> None:
    """A chunk sliced out of a gRPC message is a read-only view of `bytes`: immutable too."""
    message = os.urandom(3 * COALESCE_BELOW)
    sliced = memoryview(message)[7 : 7 + 2 * COALESCE_BELOW]
    buffer = bytearray(message)
    read_only = memoryview(buffer).toreadonly()
    [[first, second]] = await collected(sliced, read_only, size=1 << 20)
    assert first is sliced
    assert second is not read_only and second == message
    buffer[:] = bytes(len(buffer))
    assert second == message


async def test_a_batch_ends_once_it_holds_its_size() -> None:
    chunk = b"x" * COALESCE_BELOW
    grouped = await collected(chunk, chunk, chunk, size=2 * COALESCE_BELOW)
    assert [len(batch) for batch in grouped] == [2, 1]
    assert await collected(size=COALESCE_BELOW) == []


async def test_small_chunks_are_copied_together() -> None:
    grouped = await collected(b"a", b"", b"bc", b"x" * COALESCE_BELOW, b"d", size=1 << 20)
    assert grouped == [[b"abc", b"x" * COALESCE_BELOW, b"d"]]


async def test_a_buffer_its_caller_reuses_is_copied() -> None:
    reused = bytearray(b"1" * COALESCE_BELOW)

    async def reusing() -> AsyncIterator[bytes]:
        yield reused  # type: ignore[misc]
        reused[:] = b"2" * COALESCE_BELOW  # resizing or rewriting it is the caller's right
        yield memoryview(reused)  # type: ignore[misc]

    [[first, second]] = [batch async for batch in batches(reusing(), 1 << 20)]
    assert (first, second) == (b"1" * COALESCE_BELOW, b"2" * COALESCE_BELOW)


async def test_anything_not_bytes_like_is_refused() -> None:
    with pytest.raises(Invalid, match="got a chunk of type str"):
        await collected("text", size=1)


def test_a_short_gathered_write_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writev = os.writev

    def short(fd: int, views: list[memoryview]) -> int:
        # At most 3 bytes per call, as a signal or a nearly full disk may cut a write.
        taken, budget = [], 3
        for view in views:
            if budget == 0:
                break
            taken.append(view[:budget])
            budget -= len(taken[-1])
        return writev(fd, taken)

    monkeypatch.setattr(staging.os, "writev", short)
    monkeypatch.setattr(staging, "_IOV_MAX", 2)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        assert staging._write_all(fd, [b"ab", bytearray(b"cdefg"), b"h", b"ijklm"]) == 13
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abcdefghijklm"
