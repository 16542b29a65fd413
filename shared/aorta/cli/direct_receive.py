"""A direct download's body, received by a thread of its own into a few buffers it reuses
(`aorta.cli.direct` asks for it; `aorta.cli.transfers` hashes and writes what it gives)."""

from __future__ import annotations

import contextlib
import http.client
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from typing import cast

from aorta.cli.failures import CliFailure

BLOCK_SIZE = 1 << 20
"""Bytes per read of a file and per buffer a download is received into."""
READ_AHEAD = 8
"""Buffers of `BLOCK_SIZE` a download receives into, reused once written: how far the network
runs ahead of the hashing and writing, and all the memory a download takes."""


class Received:
    """The body of one GET, received by a thread of its own into `READ_AHEAD` buffers of
    `BLOCK_SIZE` that are reused: iterating gives each buffer's bytes as a read-only view,
    in order, and the caller hands every view back with `recycle` once it is done with it
    (hashed and written), which frees its buffer for the next bytes.

    Received into buffers rather than read as new bytes objects: no allocation and no copy
    per block, and bytes hashed and written from memory they were just received into. The
    thread lets other threads run while it waits for the socket (as hashing and writing
    do), so the network keeps sending meanwhile. Use as a context manager: leaving stops the
    thread; `ended(whole)` is then told whether the body was read to its end."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        sock: socket.socket | None,
        name: str,
        advance: Callable[[str, int], None],
        ended: Callable[[bool], None],
    ) -> None:
        self._response = response
        self._sock = sock
        self._name = name
        self._advance = advance
        self._ended = ended
        self._free: queue.Queue[memoryview | None] = queue.Queue()
        for _ in range(READ_AHEAD):
            self._free.put(memoryview(bytearray(BLOCK_SIZE)))
        self._ready: queue.Queue[memoryview | BaseException | None] = queue.Queue()
        self._whole = False
        self._stopping = False
        self._thread = threading.Thread(target=self._receive, name="aorta-download", daemon=True)

    def __enter__(self) -> Received:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread.is_alive():
            # Left early: stops the thread between reads, and a read in progress.
            self._stopping = True
            self._free.put(None)
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join()
        self._ended(self._whole)

    def __iter__(self) -> Iterator[memoryview]:
        while (item := self._ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def recycle(self, chunk: bytes | memoryview) -> None:
        """Hands back a view `__iter__` gave; its buffer is reused for the next bytes."""
        if isinstance(chunk, memoryview):
            self._free.put(memoryview(cast(bytearray, chunk.obj)))

    def _receive(self) -> None:
        try:
            while (buffer := self._free.get()) is not None:
                received = self._response.readinto(buffer)
                if not received:
                    # All that Content-Length announced (an answer cut short is not whole).
                    self._whole = not self._stopping and not self._response.length
                    break
                self._advance(self._name, received)
                self._ready.put(buffer[:received].toreadonly())
        except (OSError, http.client.HTTPException) as error:
            broke = f"downloading {self._name} from the blob store broke off: {error}"
            self._ready.put(CliFailure(broke))
            return
        self._ready.put(None)
