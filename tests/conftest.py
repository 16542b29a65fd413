"""Suite-wide checks: an async test must not leave asyncio tasks running behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

# Tasks a library keeps for the life of its client and stops when that client closes; a test
# that closes its clients leaves none of them behind.
_GRACE_SECONDS = 1.0


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fails the test when tasks it started are still running after its fixtures closed."""
    before = set(asyncio.all_tasks())
    yield
    current = asyncio.current_task()
    deadline = asyncio.get_running_loop().time() + _GRACE_SECONDS
    while True:
        left = [t for t in asyncio.all_tasks() if t not in before and t is not current]
        left = [t for t in left if not t.done()]
        if not left or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert not left, f"the test left tasks running: {[t.get_name() for t in left]}"
