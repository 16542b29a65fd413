"""Tasks that run beside their owner: each kept referenced until it ends (so it is never
garbage collected mid-run), its failure logged with its traceback, and all of them awaited or
cancelled when the owner stops. Bus subscriptions keep their handlers here, the scheduler's
engine its runs."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from aorta.logger import get_logger

T = TypeVar("T")

_log = get_logger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancels `tasks` (None ones skipped) and waits for them to end, then raises what one of
    them raised other than its cancellation.

    Unlike `suppress(CancelledError)` around `await task`, this never swallows a cancellation
    of the caller that lands meanwhile: swallowed, it would leave the caller marked as
    cancelling but running on, so a stop that cancelled a loop waited for it for ever."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running)
    for task in running:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error


class GuardedTasks:
    """A set of running tasks; `name` names each task unless `spawn` is given another."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Runs `coro` as a task held until it ends."""
        task = asyncio.create_task(coro, name=name or self._name)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Owners handle their tasks' errors; one that escapes is a bug, kept visible here.
        if not task.cancelled() and task.exception() is not None:
            _log.error("task.failed", task=task.get_name(), exc_info=task.exception())

    async def wait(self, grace: float) -> None:
        """Waits up to `grace` seconds for the running tasks, then cancels those left (and
        waits a little for them to unwind)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        if pending:
            _log.warning("task.cancelled_after_grace", tasks=self._name, count=len(pending))
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)

    async def cancel(self) -> None:
        """Cancels every running task and returns once all have ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
