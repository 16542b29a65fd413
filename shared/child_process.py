"""Child processes that die with the process that started them.

The platform starts servers as children (nats-server for `aorta up`, tritonserver for the
Triton pool, an S3 endpoint in tests). Killed with SIGKILL, a parent gets no chance to stop
them, so each child asks Linux to send it SIGTERM when its parent goes (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to SIGTERM the child when its parent dies; None elsewhere.

    The signal is tied to the *thread* that forks, so start such children from a thread that
    lives as long as the process (the event loop's). `preexec_fn` is unsafe in a process with
    threads that hold locks; it runs only `prctl`, `getppid` and `kill`, loaded before the fork.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent died before prctl took effect: nobody will signal us, so stop now.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec
