"""The payload benchmark's split of a server's CPU by kind of thread counts each thread where
it belongs, measured on this process's own threads."""

from __future__ import annotations

import os
import threading
import time

from bench.thread_cpu import ThreadSplit, thread_kind


def spin(seconds: float) -> None:
    """Keeps the calling thread on the CPU for `seconds` of its own CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_threads_are_told_apart_by_id_and_name() -> None:
    assert thread_kind(100, 100, "python") == "event_loop"
    assert thread_kind(100, 101, "event_engine") == "grpc_threads"
    assert thread_kind(100, 102, "grpc_global_tim") == "grpc_threads"
    assert thread_kind(100, 103, "python") == "other_threads"


def test_a_span_counts_the_main_thread_and_the_others_separately() -> None:
    worked = threading.Event()
    release = threading.Event()

    def work() -> None:
        spin(0.4)
        worked.set()
        release.wait()  # alive until the span has read its CPU

    worker = threading.Thread(target=work)
    split = ThreadSplit(os.getpid())
    try:
        with split.span(1 << 29):
            worker.start()
            spin(0.2)
            assert worked.wait(30)
    finally:
        release.set()
        worker.join()
    per_gib = split.per_gib()
    assert set(per_gib) == {"event_loop", "grpc_threads", "other_threads"}
    # Half a GiB moved: each thread's seconds count twice per GiB (ticks are 10 ms; the upper
    # bounds leave room for whatever else this process's threads do meanwhile).
    assert 0.35 <= per_gib["event_loop"] < 0.8
    assert 0.75 <= per_gib["other_threads"] < 1.3
    assert per_gib["grpc_threads"] < 0.1


def test_nothing_measured_is_zero_per_gib() -> None:
    assert ThreadSplit(os.getpid()).per_gib() == dict.fromkeys(
        ("event_loop", "grpc_threads", "other_threads"), 0.0
    )
