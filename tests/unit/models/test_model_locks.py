"""Loads of a model wait for a replacement of its files, and a replacement for loads."""

from __future__ import annotations

import asyncio

from aorta.triton.model_locks import ModelLocks, ReadWriteLock


def test_one_lock_per_model_name() -> None:
    locks = ModelLocks()
    assert locks("seg") is locks("seg")
    assert locks("seg") is not locks("liver")


async def test_loads_wait_for_a_swap_and_a_swap_for_loads() -> None:
    lock = ReadWriteLock()
    order: list[str] = []

    async def read(name: str, hold: float) -> None:
        async with lock.reading():
            order.append(f"{name}+")
            await asyncio.sleep(hold)
            order.append(f"{name}-")

    async def write() -> None:
        async with lock.writing():
            order.append("w+")
            await asyncio.sleep(0.01)
            order.append("w-")

    first = asyncio.create_task(read("r1", 0.03))
    await asyncio.sleep(0)
    writing = asyncio.create_task(write())
    await asyncio.sleep(0)
    late = asyncio.create_task(read("r2", 0.0))
    await asyncio.gather(first, writing, late)
    assert order == ["r1+", "r1-", "w+", "w-", "r2+", "r2-"]
