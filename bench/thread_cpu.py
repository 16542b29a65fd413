"""Where a process's CPU goes, by kind of thread, without a profiler.

A gRPC server's CPU per GiB moved is one number; which thread spends it says what could lower
it. The payload benchmark splits each server's upload three ways:

- `event_loop`: the process's main thread, where asyncio runs in `aorta up` and in the floor
  server: gRPC's receive in Python, the upload stream, the store's batching;
- `grpc_threads`: the threads gRPC's core starts and names (`event_engine`, `grpc_*`): the
  socket reads and writes, HTTP/2 framing;
- `other_threads`: every other thread, which Python 3.11 leaves unnamed: in `aorta up` mostly
  the blob store's writers (SHA-256, `writev`, the page cache's drop-behind), and, in both
  servers, gRPC's poller thread, which wakes the event loop for every completed operation.

Thread names are read from `/proc` (Linux); elsewhere every thread but the main one counts
as `other_threads`. A thread that ends during the measured span loses its CPU from the split
(not from the process's total).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

KINDS = ("event_loop", "grpc_threads", "other_threads")
_GRPC_NAMES = ("event_engine", "grpc")


def thread_kind(pid: int, tid: int, name: str) -> str:
    """The kind (one of `KINDS`) of thread `tid`, named `name`, of process `pid`."""
    if tid == pid:
        return "event_loop"
    if name.startswith(_GRPC_NAMES):
        return "grpc_threads"
    return "other_threads"


def cpu_by_thread(pid: int) -> dict[int, tuple[str, float]]:
    """Each live thread of `pid`: its kind and its CPU seconds (user and system) so far."""
    found: dict[int, tuple[str, float]] = {}
    for thread in psutil.Process(pid).threads():
        try:
            name = Path(f"/proc/{pid}/task/{thread.id}/comm").read_text().strip()
        except OSError:
            name = ""
        kind = thread_kind(pid, thread.id, name)
        found[thread.id] = (kind, thread.user_time + thread.system_time)
    return found


class ThreadSplit:
    """CPU seconds per moved GiB of one process, by kind of thread, summed over every span
    measured with `span`."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._seconds = dict.fromkeys(KINDS, 0.0)
        self._moved = 0

    @contextmanager
    def span(self, size: int) -> Iterator[None]:
        """Counts the CPU the threads spend while the block runs, `size` bytes moved in it."""
        before = cpu_by_thread(self._pid)
        yield
        for tid, (kind, seconds) in cpu_by_thread(self._pid).items():
            self._seconds[kind] += seconds - before.get(tid, (kind, 0.0))[1]
        self._moved += size

    def per_gib(self) -> dict[str, float]:
        """CPU seconds per GiB moved, by kind (zeros before any span)."""
        if not self._moved:
            return dict.fromkeys(KINDS, 0.0)
        return {kind: seconds * (1 << 30) / self._moved for kind, seconds in self._seconds.items()}
