"""A native group leader started ahead of the next run, so that a run's start only hands it
the command.

Starting a leader holds the event loop for the `vfork` and `exec` (1.4 ms on a quiet machine,
4 ms under load), and the leader then changes to the operator's user and arms its death signal
before it starts anything: every operator of a chain waited for that (docs/performance.md,
"Operators"). A standby leader (`group_leader PARENT --standby [--as UID:GID]`, see
group_leader.c) does all of it while the previous operator runs, then waits on a pipe; a run
writes its status file, folder, environment and command there in one non-blocking write and
the leader starts it at once, with every guarantee of a leader started for the run (its own
process group, the death signal, the status file and the ids, taken before it reads the run).

`StandbyLeaders` keeps at most one leader waiting, for the operators' user it was started for.
Where none waits (the first run, runs started together, no native leader, a run too large for
the pipe at once), a run starts its own leader as before (`OperatorProcess.spawn`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aorta.executors.local import child_exit, process_group
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.local.process_group import OperatorProcess, OutputProtocol, record_exit
from aorta.logger import get_logger

_log = get_logger(__name__)


@dataclass
class _Standby:
    user: OperatorUser
    leader: subprocess.Popen[bytes]
    exited: asyncio.Future[int]
    output: asyncio.StreamReader
    pipe: asyncio.ReadTransport
    orders: int
    """The write end of the leader's stdin, non-blocking."""

    def discard(self) -> None:
        """Closes the leader's stdin (it exits having started nothing) and its output, and
        kills it should it still run; the pidfd watch reaps it."""
        os.close(self.orders)
        self.pipe.close()
        if not self.exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.leader.pid, signal.SIGKILL)


class StandbyLeaders:
    """At most one native group leader waiting for the next run (module docstring).

    Use it from the event loop's thread that lives as long as the process, as the executor: a
    leader's death signal fires when the thread that started it ends. `close` it when done.
    """

    def __init__(self) -> None:
        self._waiting: _Standby | None = None
        self._starting: asyncio.Task[None] | None = None
        self._closed = False
        self._discarded: set[asyncio.Future[int]] = set()

    def hand(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        status_file: Path,
        user: OperatorUser,
    ) -> OperatorProcess | None:
        """The waiting leader, told to run `command` as `OperatorProcess.spawn` would start it;
        None when no leader waits for `user` or the run cannot be handed over in one write (the
        caller then spawns one). Never blocks."""
        standby, self._waiting = self._waiting, None
        if standby is None:
            return None
        if standby.user != user or standby.exited.done():
            self._discard(standby)
            return None
        message = run_message(command, cwd=cwd, env=env, status_file=status_file)
        written = 0
        if message is not None:
            with contextlib.suppress(OSError):  # full (EAGAIN), or the leader gone (EPIPE)
                written = os.write(standby.orders, message)
        if message is None or written != len(message):
            # The leader reads a run that is not whole as none: it starts nothing.
            self._discard(standby)
            return None
        os.close(standby.orders)
        return OperatorProcess(
            standby.leader, standby.exited, standby.output, standby.pipe, status_file
        )

    def refill(self, user: OperatorUser) -> None:
        """Starts a leader for `user` in the background unless one waits or starts already, or
        the native leader is not there. Returns at once."""
        if self._closed or self._waiting is not None or self._starting is not None:
            return
        native = process_group.native_leader()
        if native is not None:
            start = self._start(native, user)
            self._starting = asyncio.create_task(start, name="aorta-standby-leader")

    async def settled(self) -> bool:
        """Waits for the leader being started, if one is; whether a leader now waits."""
        if self._starting is not None:
            await asyncio.gather(asyncio.shield(self._starting), return_exceptions=True)
        return self._waiting is not None

    async def close(self) -> None:
        """Stops the waiting leader, or the one starting, and returns once every leader that
        was never handed a run is gone; later `refill` calls do nothing."""
        self._closed = True
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        if self._waiting is not None:
            standby, self._waiting = self._waiting, None
            self._discard(standby)
        await asyncio.gather(*(asyncio.shield(exited) for exited in list(self._discarded)))

    def _discard(self, standby: _Standby) -> None:
        standby.discard()
        self._discarded.add(standby.exited)
        standby.exited.add_done_callback(self._discarded.discard)

    async def _start(self, native: Path, user: OperatorUser) -> None:
        standby: _Standby | None = None
        try:
            standby = await start_standby(native, user)
        except OSError as error:
            _log.warning("no standby group leader", error=str(error))
        finally:
            self._starting = None
        self._waiting = standby  # one started as `close` began is stopped there


async def start_standby(native: Path, user: OperatorUser) -> _Standby:
    """The native leader at `native` started for `user`, waiting for its run. Raises `OSError`
    when it cannot be started."""
    as_user = ("--as", f"{user.uid}:{user.gid}") if user.switch else ()
    # On the loop's thread, with vfork, as `OperatorProcess.spawn` starts a leader.
    leader = subprocess.Popen(  # noqa: ASYNC220 (see above)
        (str(native), str(os.getpid()), "--standby", *as_user),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
        env={},
        start_new_session=True,
    )
    assert leader.stdin is not None and leader.stdout is not None
    orders = os.dup(leader.stdin.fileno())
    leader.stdin.close()
    os.set_blocking(orders, False)
    exited = child_exit.watch_exit(leader.pid)
    exited.add_done_callback(functools.partial(record_exit, leader))
    output = asyncio.StreamReader()
    try:
        pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: OutputProtocol(output), leader.stdout
        )
    except BaseException:
        os.close(orders)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
        raise
    return _Standby(user, leader, exited, output, pipe, orders)


def run_message(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], status_file: Path
) -> bytes | None:
    """What a standby leader reads (group_leader.c); None for a run that `subprocess` would
    refuse (a NUL in a field, a `=` in a variable's name), which is left to it."""
    fields = [str(status_file), str(cwd), *(f"{name}={value}" for name, value in env.items())]
    if not command or any("=" in name or not name for name in env):
        return None
    encoded = [os.fsencode(field) for field in (*fields, "", *command)]
    if any(b"\0" in field for field in encoded):
        return None
    body = b"".join(field + b"\0" for field in encoded)
    return b"%d\n" % len(body) + body
