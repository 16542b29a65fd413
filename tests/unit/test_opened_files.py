import asyncio
import threading

import pytest

from aorta.opened_files import open_in_thread


class Handle:
    """A file stand-in whose close the loop can wait for."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def close(self) -> None:
        self.closed.set()


async def test_an_opener_cancelled_while_its_thread_opens_closes_the_file_once_open() -> None:
    loop = asyncio.get_running_loop()
    entered, release = threading.Event(), threading.Event()
    handle = Handle()

    def opener(name: str) -> Handle:
        assert name == "operator.log"
        entered.set()
        release.wait()
        return handle

    opening = asyncio.create_task(open_in_thread(opener, "operator.log"))
    await loop.run_in_executor(None, entered.wait)
    opening.cancel()
    await asyncio.wait([opening])
    assert opening.cancelled() and not handle.closed.is_set()
    release.set()
    await asyncio.wait_for(handle.closed.wait(), timeout=60)


async def test_an_opener_not_cancelled_returns_the_file_open() -> None:
    handle = Handle()
    assert await open_in_thread(lambda: handle) is handle
    await asyncio.sleep(0)
    assert not handle.closed.is_set()


async def test_an_opener_that_fails_raises_its_error_to_the_caller() -> None:
    def missing() -> Handle:
        raise FileNotFoundError("operator.log")

    with pytest.raises(FileNotFoundError):
        await open_in_thread(missing)
