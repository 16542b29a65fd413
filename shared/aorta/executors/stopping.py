"""Giving way to a stop request while a run stages: the step under way is cancelled.

Both the local and the container executor fetch inputs (and the container one pulls an image)
before an operator starts; a cancel or a platform stop that arrives meanwhile must not wait
for those to finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """A stop request arrived before the operator started."""


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T:
    """`work`'s result, unless `stop` is set first (then `Stopped`, work cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, stopped, return_exceptions=True)
    if task.cancelled():
        raise Stopped
    return task.result()
