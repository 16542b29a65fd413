"""The first process of every local operator run: starts the operator, and takes its whole
process group down when the platform dies.

The local executor runs `python -I -S group_leader.py PARENT_PID STATUS_FILE -- COMMAND...` in
a session of its own, so this process leads a process group that holds the operator and every
process the operator starts. It exists because Linux's parent-death signal (PR_SET_PDEATHSIG)
reaches one process, is not inherited by that process's children, and would otherwise leave an
operator's own children running after a `kill -9` of the platform. Here the death signal
reaches this leader, which kills the whole group; crash recovery can then run the operator
again without two copies ever running at once.

Contract with the executor:

- The exit status is the operator's; an operator killed by signal N gives 128 + N (as a
  container runtime reports it). The status file says how it ended (`exit N` or `signal N`),
  written before the operator is reaped and before this process exits: it is the first record
  of an exit 0, which an executor started after a crash reads to store the outputs rather than
  run the operator again.
- When the command cannot be started (not found, not executable), the status file says
  `error MESSAGE` and the exit status is 127.
- SIGTERM from the executor (sent to the whole group) is left to the operator: this process
  keeps waiting, so it reports how the operator ended. SIGTERM from the kernel after the
  platform died (the parent-death signal) kills the operator with SIGKILL, records how it
  ended (an operator that had exited already keeps its own status, so an exit 0 just before
  the crash is never mistaken for a kill), then kills the rest of the group.
- It starts nothing when the platform died before the death signal was armed.

It imports the standard library only and runs with `-I -S` (no site-packages, no environment
influence on this interpreter), so it starts in a few milliseconds; the operator gets the
environment unchanged. Its start is part of every operator's overhead (docs/performance.md,
"Operators"), so it imports no more than it uses: `_signal` rather than `signal` (which
imports `enum`) and no `__future__`.
"""

import _signal as signal  # type: ignore[import-not-found]
import ctypes
import errno
import os
import sys
from types import FrameType

_PR_SET_PDEATHSIG = 1
COMMAND_NOT_STARTED = 127
"""Exit status when the command could not be started (the status file says why)."""


def main(argv: list[str]) -> int:
    """Runs the command in `argv` (see the module docstring) and returns the exit status."""
    if len(argv) < 5 or argv[3] != "--":
        print("usage: group_leader.py PARENT_PID STATUS_FILE -- COMMAND...", file=sys.stderr)
        return 2
    parent, status_file, command = int(argv[1]), argv[2], argv[4:]
    started: list[int] = []

    def on_terminate(signum: int, frame: FrameType | None) -> None:
        if os.getppid() != parent:
            if started:
                _settle(started[0], status_file)
            os.killpg(0, signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_terminate)
    _arm_parent_death_signal()
    if os.getppid() != parent:
        return 1  # the platform died before the signal was armed: start nothing
    # The death signal waits while the operator starts: handled between the spawn and the
    # record of its pid, it would kill the group without writing how an operator that exited
    # at once (0, say) ended, and that operator would run again after the crash.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        # Python ignores SIGPIPE and SIGXFSZ for itself; the operator gets the defaults back,
        # as subprocess gives them back to its children, and no signal blocked.
        pid = os.posix_spawnp(
            command[0],
            command,
            os.environ,
            setsigmask=(),
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except OSError as error:
        _write(status_file, f"error {describe_start_error(command[0], error)}")
        return COMMAND_NOT_STARTED
    started.append(pid)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    # Not reaped yet: until the status is written the pid cannot be reused, so the signal
    # handler may still look at (or kill) the operator safely.
    code = _record(status_file, os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT))
    os.waitpid(pid, 0)
    return code


def _settle(pid: int, status_file: str) -> None:
    """Kills the operator unless it exited already, and records how it ended; nothing when it
    was reaped (its status is written then)."""
    try:
        ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return
    if ended is None:
        os.kill(pid, signal.SIGKILL)
        ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    if ended is not None:
        _record(status_file, ended)


def _record(status_file: str, ended: os.waitid_result | None) -> int:
    """Writes how the operator ended (`exit N`, `signal N`) and returns the exit status."""
    assert ended is not None
    if ended.si_code == os.CLD_EXITED:
        _write(status_file, f"exit {ended.si_status}")
        return ended.si_status
    _write(status_file, f"signal {ended.si_status}")
    return 128 + ended.si_status


def describe_start_error(program: str, error: OSError) -> str:
    """What a person should read when `program` could not be started."""
    if error.errno == errno.ENOENT:
        where = "" if "/" in program else " on PATH"
        return f"command {program!r} not found{where}"
    if error.errno in {errno.EACCES, errno.EPERM}:
        return f"command {program!r} cannot be run: permission denied (is it executable?)"
    if error.errno == errno.ENOEXEC:
        return f"command {program!r} cannot be run: exec format error (a script needs a #! line)"
    return f"command {program!r} cannot be run: {error.strerror or error}"


def _arm_parent_death_signal() -> None:
    """Asks Linux to send SIGTERM when the parent dies; elsewhere there is no such signal."""
    if not sys.platform.startswith("linux"):
        return
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as status:
        status.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
