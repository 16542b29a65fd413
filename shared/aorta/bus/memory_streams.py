"""One flow-controlled stream of the in-memory bus (`aorta.bus.memory`) between a producer and
its consumer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aorta.bus.batches import Batch
from aorta.bus.port import StreamItem
from aorta.errors import AortaError


@dataclass
class StreamChannel:
    """One stream between a producer and its consumer: frames (an item or a batch, None for
    the end, or an error) and the credit that bounds how far the producer runs ahead: a
    window of frames, and a window of bytes it may pass by one frame."""

    credit: asyncio.Semaphore
    frames: asyncio.Queue[StreamItem | AortaError | None] = field(default_factory=asyncio.Queue)
    stopped: bool = False
    held: int = 0
    taken: asyncio.Event = field(default_factory=asyncio.Event)

    async def room(self, window_bytes: int) -> None:
        """Waits until one more frame may be sent (at once when the consumer left)."""
        await self.credit.acquire()
        while self.held >= window_bytes and not self.stopped:
            self.taken.clear()
            await self.taken.wait()

    def sent(self, frame: StreamItem) -> None:
        self.held += _size(frame)
        self.frames.put_nowait(frame)

    def took(self, frame: StreamItem) -> None:
        """The consumer has taken every item of `frame`."""
        self.held -= _size(frame)
        self.taken.set()
        self.credit.release()

    def stop(self) -> None:
        """The consumer left: the producer stops at its next item (woken if it waits)."""
        self.stopped = True
        self.taken.set()
        self.credit.release()


def _size(frame: StreamItem) -> int:
    return frame.size if isinstance(frame, Batch) else len(frame)
