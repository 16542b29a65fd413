"""The blob store contract, part 2: atomic puts under failure and cancellation, concurrency, and
streaming in bounded memory; against every store of conftest's `case` fixture."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aorta.blobs import BlobStore


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(store: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.get(key)])


async def keys(store: BlobStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


class Boom(Exception):
    """What a failing upload stream raises."""


def failure_points(case: Any) -> list[int]:
    """Bytes sent before failing: within the first block or part, and with two parts sent."""
    return [100, 2 * case.boundary + 12_345]


async def failing_stream(sent: int) -> AsyncIterator[bytes]:
    remaining = sent
    while remaining:
        size = min(remaining, 1 << 20)
        remaining -= size
        yield b"n" * size
    raise Boom("the client went away")


@pytest.mark.parametrize("point", [0, 1], ids=["early", "after-parts"])
@pytest.mark.parametrize("previous", [None, b"the old version"], ids=["new-key", "existing-key"])
async def test_a_stream_that_raises_leaves_nothing_and_keeps_the_old_version(
    case: Any, point: int, previous: bytes | None
) -> None:
    store: BlobStore = case.store
    if previous is not None:
        await store.put("payloads/x/input/file", chunks_of(previous))

    with pytest.raises(Boom, match="went away"):
        await store.put("payloads/x/input/file", failing_stream(failure_points(case)[point]))

    if previous is None:
        assert await keys(store) == []
    else:
        assert await read(store, "payloads/x/input/file") == previous
        assert await keys(store) == ["payloads/x/input/file"]
        assert (await store.stat("payloads/x/input/file")).size == len(previous)


@pytest.mark.parametrize("point", [0, 1], ids=["early", "after-parts"])
@pytest.mark.parametrize("previous", [None, b"the old version"], ids=["new-key", "existing-key"])
async def test_a_cancelled_put_leaves_nothing_and_keeps_the_old_version(
    case: Any, point: int, previous: bytes | None
) -> None:
    store: BlobStore = case.store
    if previous is not None:
        await store.put("k", chunks_of(previous))
    stalled = asyncio.Event()

    async def stalling_stream() -> AsyncIterator[bytes]:
        remaining = failure_points(case)[point]
        while remaining:
            size = min(remaining, 1 << 20)
            remaining -= size
            yield b"c" * size
        stalled.set()
        await asyncio.Event().wait()  # the client stops sending
        yield b"never"

    upload = asyncio.create_task(store.put("k", stalling_stream()))
    await asyncio.wait_for(stalled.wait(), 30)
    await asyncio.sleep(0.05)  # let the last part reach the store
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload

    assert await keys(store) == ([] if previous is None else ["k"])
    if previous is not None:
        assert await read(store, "k") == previous


async def test_concurrent_puts_to_different_keys(store: BlobStore) -> None:
    async def slow_stream(number: int) -> AsyncIterator[bytes]:
        for piece in range(20):
            await asyncio.sleep(0)
            yield bytes([number]) * (1000 + piece)

    infos = await asyncio.gather(*(store.put(f"c/{n:02}", slow_stream(n)) for n in range(16)))

    expected = {
        f"c/{n:02}": b"".join(bytes([n]) * (1000 + p) for p in range(20)) for n in range(16)
    }
    assert [info.key for info in infos] == sorted(expected)
    assert await keys(store, "c/") == sorted(expected)
    for key, data in expected.items():
        assert await read(store, key) == data


async def test_concurrent_puts_to_one_key_leave_one_whole_version(store: BlobStore) -> None:
    versions = [bytes([n]) * (300_000 + n) for n in range(6)]

    async def stream(data: bytes) -> AsyncIterator[bytes]:
        for at in range(0, len(data), 65_536):
            await asyncio.sleep(0)
            yield data[at : at + 65_536]

    await asyncio.gather(*(store.put("same", stream(data)) for data in versions))

    assert await read(store, "same") in versions
    assert await keys(store) == ["same"]


OBJECT_SIZE = 64 << 20
CHUNK = 256 << 10
PEAK_LIMIT = 32 << 20


async def test_a_64_mib_object_streams_in_bounded_memory(store: BlobStore) -> None:
    """Neither put nor get holds the object: peak traced memory stays far below its size."""
    sent = hashlib.sha256()

    async def generated() -> AsyncIterator[bytes]:
        for number in range(OBJECT_SIZE // CHUNK):
            chunk = number.to_bytes(4, "big") * (CHUNK // 4)
            sent.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        info = await store.put("big/volume.raw", generated())
        put_peak = tracemalloc.get_traced_memory()[1] - baseline

        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        received, size = hashlib.sha256(), 0
        async for chunk in store.get("big/volume.raw"):
            received.update(chunk)
            size += len(chunk)
        get_peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()

    assert (info.size, info.sha256) == (OBJECT_SIZE, sent.hexdigest())
    assert (size, received.hexdigest()) == (OBJECT_SIZE, sent.hexdigest())
    assert put_peak < PEAK_LIMIT, f"put peaked at {put_peak / 2**20:.1f} MiB"
    assert get_peak < PEAK_LIMIT, f"get peaked at {get_peak / 2**20:.1f} MiB"
