"""Processes the payload benchmark measures: `aorta up` and the floor server in child
processes, and a sampler of a process's memory and CPU while it works."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import psutil

from aorta.testing.embedded import aorta_up
from aorta.testing.ports import free_port

MiB = 1 << 20


@contextmanager
def floor_server(size: int) -> Iterator[tuple[str, int]]:
    """`bench.grpc_floor` serving `size` bytes in a child process; yields its gRPC target and
    pid."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.grpc_floor", str(port), str(size)],
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        with grpc.insecure_channel(target) as channel:
            try:
                grpc.channel_ready_future(channel).result(
                    timeout=max(0.0, deadline - time.monotonic())
                )
            except grpc.FutureTimeoutError:
                raise RuntimeError(f"the floor server did not listen on {target}") from None
        yield target, child.pid
    finally:
        child.terminate()
        child.wait(30)


@contextmanager
def platform(data_dir: Path) -> Iterator[tuple[str, int]]:
    """`aorta up` on `data_dir` in a child process; yields its gRPC target and pid."""
    port = free_port()
    with aorta_up(data_dir, port) as child:
        yield f"127.0.0.1:{port}", child.pid


class RssSampler:
    """Samples a process's RSS every 10 ms in a thread. Each `phase(name, size)` (a phase may
    run several times) records in `peaks` the largest growth in MiB over the RSS at a run's
    start, and counts the CPU seconds (user and system) the process used and the bytes moved,
    for `cpu_per_gib`."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._peak = 0
        self.peaks: dict[str, float] = {}
        self._cpu: dict[str, tuple[float, int]] = {}

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def phase(self, name: str, size: int) -> Iterator[None]:
        baseline = self._process.memory_info().rss
        self._peak = baseline
        before = self._process.cpu_times()
        yield
        after = self._process.cpu_times()
        growth = (max(self._peak, self._process.memory_info().rss) - baseline) / MiB
        self.peaks[name] = max(growth, self.peaks.get(name, growth))
        seconds, moved = self._cpu.get(name, (0.0, 0))
        used = after.user + after.system - before.user - before.system
        self._cpu[name] = (seconds + used, moved + size)

    def cpu_per_gib(self) -> dict[str, float]:
        """CPU seconds per GiB moved, by phase."""
        return {name: seconds * (1 << 30) / moved for name, (seconds, moved) in self._cpu.items()}

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self._peak = max(self._peak, self._process.memory_info().rss)
            except psutil.NoSuchProcess:
                return


@contextmanager
def list_floor_server(history: int, heavy: int) -> Iterator[tuple[str, int]]:
    """`bench.list_floor` streaming a List of `history` jobs (`heavy` of them heavy) in a child
    process; yields its gRPC target and pid once it listens (it encodes every item first)."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.list_floor", str(port), str(history), str(heavy)],
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    target = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=300)
            except grpc.FutureTimeoutError:
                raise RuntimeError(f"the list floor server did not listen on {target}") from None
        yield target, child.pid
    finally:
        child.terminate()
        child.wait(30)
