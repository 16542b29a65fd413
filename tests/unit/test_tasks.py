"""Guarded tasks: held until they end, failures logged, awaited or cancelled with their owner."""

from __future__ import annotations

import asyncio

import pytest

from aorta.tasks import GuardedTasks, cancel_and_wait


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


async def test_cancel_and_wait_ends_the_tasks_and_hides_only_their_cancellation() -> None:
    loop = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)
    await cancel_and_wait(loop, None)
    assert loop.cancelled()


async def test_cancel_and_wait_raises_what_a_task_raised() -> None:
    async def fails() -> None:
        raise ValueError("broken")

    task = asyncio.create_task(fails())
    await asyncio.wait([task])
    with pytest.raises(ValueError, match="broken"):
        await cancel_and_wait(task)


async def test_cancel_and_wait_keeps_the_callers_own_cancellation() -> None:
    # A task that takes its time to end: the caller is cancelled while it waits for it.
    release = asyncio.Event()

    async def slow_to_end() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()

    inner = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0)
    stopper.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    await asyncio.wait([inner])
    assert inner.cancelled()
