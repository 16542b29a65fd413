"""Orders loads of a model on servers against replacements of its files, in one backend.

Loading a model on a server reads the model's files (many loads may run at once); installing a
new revision or removing the model replaces them (alone). Both Triton backends hold one
`ModelLocks`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class ReadWriteLock:
    """Many readers or one writer (asyncio). Writers wait for readers in flight; readers that
    arrive while a writer waits or writes wait for it."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextlib.asynccontextmanager
    async def reading(self) -> Any:
        async with self._condition:
            await self._condition.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            async with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextlib.asynccontextmanager
    async def writing(self) -> Any:
        async with self._condition:
            self._writers_waiting += 1
            try:
                await self._condition.wait_for(lambda: not self._writing and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            async with self._condition:
                self._writing = False
                self._condition.notify_all()


class ModelLocks:
    """One `ReadWriteLock` per model name, made when first asked for."""

    def __init__(self) -> None:
        self._locks: dict[str, ReadWriteLock] = {}

    def __call__(self, name: str) -> ReadWriteLock:
        """The lock of model `name`: loads read, installs and removals write."""
        return self._locks.setdefault(name, ReadWriteLock())
