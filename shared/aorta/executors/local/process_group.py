"""One operator command running in a process group of its own, under a group leader.

Every signal goes to the whole group, so an operator's children stop with it; the group leader
makes the group die with the platform (see `aorta.executors.local.group_leader`). stdout and stderr
share one pipe, so the executor reads them interleaved in the order they were written.

The leader is the native one (`group_leader.c`, built by `make setup` next to it) when it is
there and only the platform's user or root may change it; it changes to the operator's user
itself, so starting it copies nothing of the platform (Python's subprocess uses vfork when no
ids change). Otherwise it is the Python leader, which the platform starts as that user.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aorta.executors.local import child_exit, group_leader
from aorta.executors.local.operator_user import OperatorUser

LEADER_SCRIPT = Path(group_leader.__file__).resolve()
"""The Python group leader's script: the operator's user must be able to read it."""
NATIVE_LEADER = LEADER_SCRIPT.with_suffix("")
"""Where `make setup` builds the native group leader from `group_leader.c`."""
_STATUS_BYTES = 4096


@dataclass(frozen=True)
class ExitStatus:
    """How the operator ended: `code` as a container runtime reports it (128 + N for a signal),
    `signal` the killing signal if any, `start_error` a message when the command never ran."""

    code: int
    signal: int | None = None
    start_error: str | None = None

    def describe(self) -> str:
        """`exit code 3`, or `killed by SIGKILL (exit code 137)`."""
        if self.signal is None:
            return f"exit code {self.code}"
        try:
            name = signal.Signals(self.signal).name
        except ValueError:
            name = f"signal {self.signal}"
        return f"killed by {name} (exit code {self.code})"


class OutputProtocol(asyncio.Protocol):
    """Feeds the leader's output pipe to a reader, which pauses the pipe when the log falls
    behind (bounding memory) and sees its end once every process of the group closed it."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self._reader.set_transport(transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._reader.feed_eof()
        else:
            self._reader.set_exception(exc)


class OperatorProcess:
    """A command started by `spawn`; its group id is the leader's pid. `close` it when done.

    The leader's exit is known apart from its output pipe (`child_exit`, a pidfd the event loop
    watches, no thread): a process the operator left in the background keeps the pipe open,
    and the run must not look alive until that process ended.
    """

    def __init__(
        self,
        leader: subprocess.Popen[bytes],
        exited: asyncio.Future[int],
        output: asyncio.StreamReader,
        pipe: asyncio.ReadTransport,
        status_file: Path,
    ) -> None:
        self._leader = leader
        self._exited = exited
        self._output = output
        self._pipe = pipe
        self._status_file = status_file

    @classmethod
    async def spawn(
        cls,
        command: tuple[str, ...],
        *,
        cwd: Path,
        env: dict[str, str],
        status_file: Path,
        user: OperatorUser,
    ) -> OperatorProcess:
        """Starts `command` in `cwd` with exactly `env`, stdin empty, in a new session, as
        `user`: when it is to be switched to, its uid and primary gid with no supplementary
        group, which the native leader takes itself and the Python leader is started with;
        either way before the leader arms the death signal, which a change of ids would clear.

        `status_file` must be empty and writable by `user` (`work_folders.hand_over`). A command
        that cannot be started (not on PATH, not executable) still gives a process: its
        `exit_status` carries the reason. Raises `OSError` only when the platform's own
        interpreter cannot be started. Cancelled once the leader started, it kills the group.
        """
        ids: dict[str, Any] = {}
        where = (str(os.getpid()), str(status_file))
        native = native_leader()
        if native is not None:
            as_user = ("--as", f"{user.uid}:{user.gid}") if user.switch else ()
            leader = (str(native), *where, *as_user)
        else:
            leader = (sys.executable, "-I", "-S", str(LEADER_SCRIPT), *where)
            if user.switch:
                ids = {"user": user.uid, "group": user.gid, "extra_groups": []}
        # Started on the loop's thread, as asyncio's subprocess_exec does: the native leader
        # with vfork, so the loop is held for a moment only.
        process = subprocess.Popen(  # noqa: ASYNC220 (see above)
            (*leader, "--", *command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
            cwd=cwd,
            env=env,
            start_new_session=True,
            **ids,
        )
        exited = child_exit.watch_exit(process.pid)
        exited.add_done_callback(functools.partial(record_exit, process))
        output = asyncio.StreamReader()
        assert process.stdout is not None
        try:
            pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
                lambda: OutputProtocol(output), process.stdout
            )
        except BaseException:
            # Nothing will read its output or wait for it: the group goes (and is reaped).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            raise
        return cls(process, exited, output, pipe, status_file)

    @property
    def pid(self) -> int:
        """The group leader's pid, which is also the process group id."""
        return self._leader.pid

    @property
    def output(self) -> asyncio.StreamReader:
        """stdout and stderr of every process of the group, interleaved."""
        return self._output

    async def wait(self) -> int:
        """Waits for the group leader to exit (processes it left behind may remain) and returns
        its exit status. Cancelling the caller does not affect the process."""
        return await asyncio.shield(self._exited)

    def close(self) -> None:
        """Releases the pipe; call once the leader exited. A leader still running is killed
        (as asyncio's transport would), and reaped when it is gone."""
        self._pipe.close()
        if not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def signal_group(self, signum: int) -> None:
        """Sends `signum` to every process of the group; nothing when the group is gone.

        Also used once the leader has exited, for processes it left behind: a group id is not
        reused while any process of the group lives (POSIX), so the signal reaches them or no
        one.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    async def stop(self, grace: float) -> None:
        """SIGTERM to the group, SIGKILL after `grace` seconds if the leader still runs; returns
        once the leader exited. Cancelling the caller leaves the SIGKILL unsent."""
        self.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), timeout=grace)
        except TimeoutError:
            self.signal_group(signal.SIGKILL)
            await self.wait()

    async def exit_status(self) -> ExitStatus:
        """How the operator ended; call once `wait` returned (reads the leader's status file)."""
        assert self._exited.done(), "exit_status before the process exited"
        returncode = self._exited.result()
        if returncode < 0:  # the leader itself was killed (by our SIGKILL, or the OOM killer)
            return ExitStatus(code=128 - returncode, signal=-returncode)
        if returncode == 0:
            # Both leaders exit 0 only when the operator did (a start error, a signal or a
            # failure of their own is never 0): no hop to a thread to read what they recorded.
            return ExitStatus(code=0)
        report = await asyncio.to_thread(_read_status, self._status_file)
        kind, _, detail = report.partition(" ")
        if kind == "error":
            return ExitStatus(code=returncode, start_error=detail)
        if kind == "signal" and detail.isdigit():
            return ExitStatus(code=returncode, signal=int(detail))
        return ExitStatus(code=returncode)


def record_exit(leader: subprocess.Popen[bytes], exited: asyncio.Future[int]) -> None:
    """Tells `leader` its exit code once `exited` has it (a done callback): Popen warns of,
    and keeps a list of, the children it thinks unreaped."""
    if not exited.cancelled():
        leader.returncode = exited.result()


def native_leader(path: Path | None = None) -> Path | None:
    """The native group leader at `path` (default `NATIVE_LEADER`) when it may be used: an
    executable file that neither it nor its folder lets anyone but root or the platform's own
    user change (a root platform starts it as root). None otherwise: the Python leader is used.
    """
    path = NATIVE_LEADER if path is None else path
    try:
        file, folder = os.stat(path), os.stat(path.parent)
    except OSError:
        return None
    owners = {0, os.geteuid()}
    others_write = stat.S_IWGRP | stat.S_IWOTH
    trusted = all(s.st_uid in owners and not s.st_mode & others_write for s in (file, folder))
    if trusted and stat.S_ISREG(file.st_mode) and os.access(path, os.X_OK):
        return path
    return None


def recorded_exit(status_file: Path) -> ExitStatus | None:
    """How a run's operator ended as its group leader recorded it, read after the platform that
    started it died (no exit status of the leader to go by); None when nothing says it ended.
    Blocks."""
    kind, _, detail = _read_status(status_file).partition(" ")
    if not detail.isdigit():
        return None
    if kind == "exit":
        return ExitStatus(code=int(detail))
    if kind == "signal":
        return ExitStatus(code=128 + int(detail), signal=int(detail))
    return None


def _read_status(path: Path) -> str:
    # Written by the operator's user: read at most a line, and never through a link.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # none written (the operator ran), or not a plain file: nothing to read
        return ""
    with os.fdopen(fd, "rb") as status:
        return status.read(_STATUS_BYTES).decode("utf-8", errors="replace").strip()
