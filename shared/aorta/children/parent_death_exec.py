"""`python -I -S parent_death_exec.py PARENT_PID -- COMMAND...`: run COMMAND in this process
(exec, same pid), to be sent SIGTERM when its parent dies (see `aorta.children.process`).

Standard library only and run with `-I -S`, so it starts in a few milliseconds. Exit status,
when COMMAND never ran: 1 when the parent died before the signal was armed or `prctl` failed, 2
for a usage error, 127 when COMMAND cannot be executed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: parent_death_exec.py PARENT_PID -- COMMAND...", file=sys.stderr)
        return 2
    parent, command = int(argv[1]), argv[3:]
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0):
        print(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}", file=sys.stderr)
        return 1
    if os.getppid() != parent:
        return 1  # the parent died before the signal was armed: nobody would signal us
    # Python ignores these for itself and an ignored signal stays ignored across exec; the
    # command gets the defaults, as subprocess gives them to its children.
    for ignored in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(ignored, signal.SIG_DFL)
    try:
        os.execvp(command[0], command)
    except OSError as error:
        print(f"parent_death_exec.py: cannot run {command[0]}: {error}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv))
