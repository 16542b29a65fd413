"""Guarded tasks: held until they end, failures logged, awaited or cancelled with their owner."""

from __future__ import annotations

import asyncio

import pytest

from aorta.tasks import GuardedTasks


async def test_finished_and_failed_tasks_are_let_go() -> None:
    tasks = GuardedTasks("aorta.test")

    async def fails() -> None:
        raise RuntimeError("boom")

    async def works() -> int:
        return 7

    done = tasks.spawn(works())
    failed = tasks.spawn(fails(), name="aorta.test.failing")
    assert len(tasks) == 2
    assert await done == 7
    with pytest.raises(RuntimeError):
        await failed
    await asyncio.sleep(0)  # the done callbacks run on the next turn of the loop
    assert len(tasks) == 0
    assert done.get_name() == "aorta.test"


async def test_wait_lets_quick_tasks_finish_and_cancels_the_slow_ones() -> None:
    tasks = GuardedTasks("aorta.test")
    release = asyncio.Event()
    finished: list[str] = []

    async def quick() -> None:
        await release.wait()
        finished.append("quick")

    async def stuck() -> None:
        await asyncio.Event().wait()

    quick_task, stuck_task = tasks.spawn(quick()), tasks.spawn(stuck())
    release.set()
    await tasks.wait(grace=0.05)
    assert finished == ["quick"]
    assert quick_task.done() and stuck_task.cancelled()


async def test_cancel_ends_every_task() -> None:
    tasks = GuardedTasks("aorta.test")
    running = [tasks.spawn(asyncio.Event().wait()) for _ in range(3)]
    await tasks.cancel()
    assert all(task.cancelled() for task in running)
    assert len(tasks) == 0
