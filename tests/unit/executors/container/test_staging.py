"""A container run's staging gives way to a stop request: the step under way is cancelled and
the staging ends with `Stopped`; a step that ends first keeps its result or its error."""

from __future__ import annotations

import asyncio

import pytest

from aorta.errors import NotFound
from aorta.executors.stopping import Stopped, unless_stopped


async def test_a_step_that_ends_first_gives_its_result() -> None:
    assert await unless_stopped(asyncio.sleep(0, "fetched"), asyncio.Event()) == "fetched"


async def test_a_step_that_fails_first_raises_its_error() -> None:
    async def missing() -> None:
        raise NotFound("image aorta-test/absent:1.0 not found")

    with pytest.raises(NotFound):
        await unless_stopped(missing(), asyncio.Event())


async def test_a_stop_request_cancels_the_step_under_way() -> None:
    stop, began, cancelled = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def pull() -> None:
        began.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    staging = asyncio.create_task(unless_stopped(pull(), stop))
    await began.wait()
    stop.set()
    with pytest.raises(Stopped):
        await staging
    assert cancelled.is_set()
