"""Child processes that die with the process that started them.

The platform starts servers as children (nats-server for `aorta up`, tritonserver for the
Triton pool, an S3 endpoint in tests). Killed with SIGKILL, a parent gets no chance to stop
them, so each child asks Linux to send it SIGTERM when its parent goes (PR_SET_PDEATHSIG).

The request is made by a trampoline, `parent_death_exec.py`, which then execs the server (same
pid). It is not made in a `preexec_fn`: that makes subprocess `fork()` instead of `vfork()` and
run every library's at-fork handlers in the child. grpcio's (fork support is on by default)
restart its poller thread in the child; subprocess then closes that thread's epoll descriptor
before exec, and the child aborts ("epoll_wait error: Bad file descriptor") or segfaults
before the server ever runs. Under `aorta up` that lost about one Triton start in four.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

_TRAMPOLINE = Path(__file__).resolve().with_name("parent_death_exec.py")


def die_with_parent(command: Sequence[str]) -> list[str]:
    """`command` wrapped so that Linux SIGTERMs it when its parent dies; unchanged elsewhere.

    Start the result with `subprocess.Popen` and no `preexec_fn`; `Popen.pid` is the command's
    own pid. The signal is tied to the *thread* that starts the child, so start such children
    from a thread that lives as long as the process (the event loop's). The command does not
    run at all when the parent died before the signal was armed.
    """
    if not sys.platform.startswith("linux"):
        return list(command)
    return [sys.executable, "-I", "-S", str(_TRAMPOLINE), str(os.getpid()), "--", *command]
