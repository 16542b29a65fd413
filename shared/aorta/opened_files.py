"""Files opened in a worker thread, closed rather than leaked when their opener is cancelled."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import ParamSpec, Protocol, TypeVar


class Closable(Protocol):
    def close(self) -> None: ...


P = ParamSpec("P")
F = TypeVar("F", bound=Closable)


async def open_in_thread(opener: Callable[P, F], *args: P.args, **kwargs: P.kwargs) -> F:
    """`opener(*args, **kwargs)` in the default executor, off the event loop.

    Cancelled while the thread opens the file (a transfer cancelled as its run ends), it closes
    the file once it is open: dropped unclosed, the file would raise a ResourceWarning wherever
    the garbage collector found it, an error where warnings are errors."""
    opening = asyncio.get_running_loop().run_in_executor(
        None, functools.partial(opener, *args, **kwargs)
    )
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(opening: asyncio.Future[F]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
