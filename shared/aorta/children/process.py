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

`ChildProcess` is the one manager of such a server: it starts it through the trampoline with
its output in a log file, waits for it to be ready (the injected `Readiness` of
`aorta.children.readiness`, the only part that differs between servers) while watching for an
early exit, and stops it with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aorta.children.readiness import Readiness
from aorta.errors import Unavailable
from aorta.logger import get_logger

_TRAMPOLINE = Path(__file__).resolve().with_name("parent_death_exec.py")
_POLL_S = 0.02
_LOG_TAIL_BYTES = 4000

_log = get_logger(__name__)


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


class ChildStartError(Unavailable):
    """A child that did not start. `reason` says why; `log_tail` is the end of what the child
    wrote to its log during this start (None when it was never spawned), `exit_code` its status
    when it exited by itself. `messages` are the reason and the tail, headed by the log's path.
    """

    def __init__(
        self,
        reason: str,
        *,
        log_file: Path | None = None,
        log_tail: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        details = () if log_tail is None else (f"last lines of {log_file}:\n{log_tail}",)
        super().__init__(reason, *details)
        self.reason = reason
        self.log_tail = log_tail
        self.exit_code = exit_code


class ChildProcess:
    """One server run as a child of this process: spawned, awaited until ready, stopped, and
    startable again after `stop` (with the same command or another).

    Each start runs its command through `die_with_parent`, in a session (so a process group) of
    its own, with stdin from /dev/null, stdout and stderr appended to `log_file` and `environ`
    as its whole environment (None: this process's). `name` heads every message about it. Given
    `user` (a uid) and `group` (a gid), it runs with those ids and no supplementary group (the
    caller must be root to switch).

    Use it from one thread, one that outlives the child (see `die_with_parent`). In that
    thread's event loop, `stop` may run while a `start` in another task waits; that start then
    fails with "was stopped while starting". `start_blocking` and `stop_blocking` serve sync
    code (context managers, scripts, sync fixtures).
    """

    def __init__(
        self,
        name: str,
        log_file: Path,
        *,
        environ: Mapping[str, str] | None = None,
        user: int | None = None,
        group: int | None = None,
        start_timeout: float,
        stop_grace: float,
    ) -> None:
        self.name = name
        self.log_file = log_file
        self._environ = None if environ is None else dict(environ)
        self._user = user
        self._group = group
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        """The child's pid from its start until `stop`, even once it exited; else None."""
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        """True from the child's start until `stop`, while it has not exited."""
        return self._process is not None and self._process.poll() is None

    async def start(self, command: Sequence[str], readiness: Readiness) -> None:
        """Starts `command` and returns once `readiness` says the child is ready.

        Raises `ChildStartError` when a child is already started (and not stopped), when the
        child exits first (`exit_code` set), or when it is not ready within `start_timeout`
        seconds (a readiness call still running at that deadline is cancelled). The error holds
        the tail of what this start wrote to the log. A failed or cancelled start leaves no
        child behind: it SIGKILLs the child's process group and reaps the child before the
        error or the cancellation goes on.
        """
        process = self._spawn(command)
        with self._discarded_on_failure(process):
            await self._wait_ready(process, readiness)

    def start_blocking(self, command: Sequence[str], readiness: Readiness) -> None:
        """`start`, blocking the calling thread, even one whose event loop is running (a sync
        fixture set up for an async one). The child is spawned from the calling thread; only
        the readiness checks run, on a private event loop, in a worker thread."""
        process = self._spawn(command)
        # Discarding first: interrupted (Ctrl-C), the worker then sees the child gone at its
        # next check instead of waiting out the deadline while the executor waits for it.
        with (
            ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-start") as worker,
            self._discarded_on_failure(process),
        ):
            worker.submit(asyncio.run, self._wait_ready(process, readiness)).result()

    async def stop(self) -> int | None:
        """Stops the child and returns its exit status (None when none was started):
        SIGTERM, then, when it has not exited within `stop_grace` seconds, SIGKILL to its whole
        process group; returns once it is reaped. Idempotent. Cancelled, it SIGKILLs the group
        and reaps the child before the cancellation goes on.
        """
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                if not await _exited(process, self._stop_grace):
                    self._kill_after_grace(process)
                    await _exited(process, None)
        except BaseException:
            _kill_and_reap(process)
            raise
        return self._stopped(process)

    def stop_blocking(self) -> int | None:
        """`stop`, blocking the calling thread."""
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self._stop_grace)
                except subprocess.TimeoutExpired:
                    self._kill_after_grace(process)
                    process.wait()
        except BaseException:
            _kill_and_reap(process)
            raise
        return self._stopped(process)

    @contextlib.contextmanager
    def _discarded_on_failure(self, process: subprocess.Popen[bytes]) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if self._process is process:  # otherwise `stop` took it over and reaps it
                self._process = None
                _kill_and_reap(process)
            raise

    def _spawn(self, command: Sequence[str]) -> subprocess.Popen[bytes]:
        if self._process is not None:
            raise ChildStartError(f"{self.name} is already running (pid {self._process.pid})")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # The tail of a failed start shows this start's lines, not an earlier run's.
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        ids: dict[str, Any] = {}
        if self._user is not None:
            ids = {"user": self._user, "group": self._group, "extra_groups": []}
        try:
            with self.log_file.open("ab") as output:
                self._process = subprocess.Popen(
                    die_with_parent(command),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    env=self._environ,
                    # Its own folder, not ours: a server that drops files in its working folder
                    # (podman's conmon leaves `oom` there when a container is killed for memory)
                    # keeps them beside its log.
                    cwd=self.log_file.parent,
                    start_new_session=True,
                    **ids,
                )
        except OSError as error:
            raise ChildStartError(f"{self.name} could not be started: {error}") from error
        return self._process

    async def _wait_ready(self, process: subprocess.Popen[bytes], readiness: Readiness) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_timeout
        # Polling: the child offers no awaitable exit (a plain Popen, so that a start and its
        # stop may run on different event loops), and most servers no event for readiness.
        while True:
            if self._process is not process:
                raise ChildStartError(f"{self.name} was stopped while starting")
            if process.poll() is not None:
                raise self._failure(
                    f"{self.name} exited with code {process.returncode} on start",
                    exit_code=process.returncode,
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    if await readiness.ready(process.pid):
                        return
            if loop.time() >= deadline:
                raise self._failure(
                    f"{self.name} did not {readiness.awaited} within {self._start_timeout:g} s"
                )
            await asyncio.sleep(_POLL_S)

    def _failure(self, reason: str, *, exit_code: int | None = None) -> ChildStartError:
        return ChildStartError(
            reason, log_file=self.log_file, log_tail=self._log_tail(), exit_code=exit_code
        )

    def _log_tail(self) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(max(self._log_offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                return log.read().decode(errors="replace").strip() or "(empty)"
        except OSError as error:
            return f"(unreadable: {error})"

    def _kill_after_grace(self, process: subprocess.Popen[bytes]) -> None:
        _log.warning(
            "child process outlived its grace period; killing its group",
            name=self.name,
            pid=process.pid,
            grace=self._stop_grace,
        )
        _kill_group(process)

    def _stopped(self, process: subprocess.Popen[bytes]) -> int:
        _log.info("child process stopped", name=self.name, pid=process.pid, code=process.returncode)
        return process.returncode


async def _exited(process: subprocess.Popen[bytes], within: float | None) -> bool:
    """Waits up to `within` seconds (None: as long as it takes) for `process` to exit."""
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    while process.poll() is None:
        if deadline is not None and loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)
    return True


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILLs the child's process group: the child and whatever it started there (Triton's
    backend stubs). Only while the child is unreaped, so its group id cannot have been reused."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _kill_and_reap(process: subprocess.Popen[bytes]) -> None:
    _kill_group(process)
    # A SIGKILLed process cannot delay its end, so this wait is short enough to make inline,
    # even in a cancelled task, which must not leave a zombie (or a ResourceWarning) behind.
    process.wait()


class ChildServer(ABC):
    """A server child with a blocking and an async life-cycle, and both `with` forms of them:
    `with server:` starts and stops it blocking, `async with server:` awaiting."""

    @abstractmethod
    def start(self) -> None:
        """Starts the server and returns once it serves."""

    @abstractmethod
    async def astart(self) -> None:
        """`start`, awaited."""

    @abstractmethod
    def stop(self) -> None:
        """Stops the server; idempotent."""

    @abstractmethod
    async def astop(self) -> None:
        """`stop`, awaited."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()
