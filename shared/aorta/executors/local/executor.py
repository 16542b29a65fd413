"""The local executor: each operator run is a process group on this host.

The embedded platform's executor (`aorta up`). A run's inputs are fetched from the blob store
into a workspace under `work_root`, the operator's `container.command` runs there as a host
command (the image is not used: `python` in a command is the platform's own interpreter), its
output is captured into a log pushed to the blob store while it runs, and its output folders are
stored back once it exited 0. See `aorta.executors.workspace` for the folder layout,
`aorta.executors.local.work_folders` for who owns what in it and
`aorta.executors.local.group_leader` for how runs die with the platform.

Operators cannot reach the platform: a root platform runs them as an unprivileged user
(`aorta.executors.local.operator_user`), their workspace lies outside the data dir, and their
environment is built from nothing (`aorta.executors.local.run.operator_environment`). When that
user is missing, or cannot reach the work root, the interpreter or the group leader, every run
fails to start with a message saying what to do; nothing falls back to root.

After a restart. Operators die with the platform's process (Linux' parent-death signal, through
each run's group leader), so a fresh `LocalExecutor` has no run alive and knows none: `wait`
answers LOST for every run id of the previous process. The scheduler must then run those
operators again as a new attempt (attempt + 1); no operator ever runs twice at once.

Limits: POSIX only (sessions, process groups). The death signal is Linux's; elsewhere an
operator may outlive a platform killed with SIGKILL (a clean shutdown through `close` stops it
everywhere). Linux sends it when the thread that started the run ends, so use the executor from
a thread that lives as long as the process (the event loop's main thread). CPU and memory
requests are not enforced on the host; GPUs are given through `CUDA_VISIBLE_DEVICES`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Invalid, NotFound, Unavailable
from aorta.executors.local.operator_user import (
    DEFAULT_RUN_AS,
    RUN_AS,
    OperatorUser,
    resolve_operator_user,
)
from aorta.executors.local.process_group import LEADER_SCRIPT
from aorta.executors.local.run import LocalRun, RunConfig
from aorta.executors.local.services import LocalServiceRunner, ServiceConfig
from aorta.executors.local.work_folders import prepare_work_root
from aorta.executors.port import OperatorRun, RunOutcome, RunReason
from aorta.executors.run_log import file_chunks, open_for_reading, split_lines
from aorta.executors.workspace import Workspace
from aorta.logger import get_logger

DEFAULT_STOP_GRACE = 15.0
"""Seconds between SIGTERM and SIGKILL for a run past its timeout (Clara's grace)."""
DEFAULT_CLOSE_GRACE = 5.0
DEFAULT_MAX_LOG_BYTES = 10 << 20
DEFAULT_FINISHED_RUNS_KEPT = 10_000

_log = get_logger(__name__)


class LocalExecutor:
    """Runs operator runs as local process groups (the `Executor` port).

    - `blobs`: where inputs come from, outputs and logs go.
    - `work_root`: the parent of every run's workspace (created 0711 when missing); job ids keep
      the runs of executors sharing it apart. Never inside the data dir.
    - `run_as`: `AORTA_LOCAL_RUN_AS`, the user operators run as when the platform is root.
    - `python_bin_dir`: put first on each operator's PATH (default: the folder of this
      interpreter), so `python -m aorta.driver.app` runs with the platform's packages.
    - `search_path`: the rest of the operators' PATH (default: this process's PATH).
    - `log_flush_interval`: seconds between pushes of a running operator's log.
    - `max_log_bytes`: the size a run's log is kept under (the oldest output is dropped).
    - `stop_grace`: seconds between SIGTERM and SIGKILL for a run past its timeout.
    - `close_grace`: the same when `close` stops the runs still going.
    - `keep_workspaces`: keep each workspace after its run (for debugging).
    - `finished_runs_kept`: how many ended runs `wait` and `log_lines` still answer for; older
      ones are forgotten (LOST, NotFound), so a long-lived platform's memory stays bounded.

    Runs belong to the event loop that started them; use the executor from that loop only.
    """

    def __init__(
        self,
        blobs: BlobStore,
        work_root: Path,
        *,
        run_as: str = DEFAULT_RUN_AS,
        python_bin_dir: Path | None = None,
        search_path: str | None = None,
        log_flush_interval: float = 1.0,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        stop_grace: float = DEFAULT_STOP_GRACE,
        close_grace: float = DEFAULT_CLOSE_GRACE,
        keep_workspaces: bool = False,
        finished_runs_kept: int = DEFAULT_FINISHED_RUNS_KEPT,
    ) -> None:
        if (
            log_flush_interval <= 0
            or max_log_bytes < 1024
            or min(stop_grace, close_grace) < 0
            or finished_runs_kept < 1
        ):
            raise Invalid(
                "the local executor needs a positive log flush interval, a log cap of at least "
                "1 KiB, grace periods of zero seconds or more and at least one ended run kept"
            )
        self._blobs = blobs
        self._work_root = Path(work_root).absolute()
        self._run_as = run_as
        self._config = RunConfig(
            python_bin_dir=(python_bin_dir or Path(sys.executable).parent).absolute(),
            search_path=os.environ.get("PATH", os.defpath) if search_path is None else search_path,
            user=OperatorUser("unresolved", -1, -1, switch=False),
            timezone=os.environ.get("TZ"),
            log_flush_interval=log_flush_interval,
            max_log_bytes=max_log_bytes,
            stop_grace=stop_grace,
            keep_workspaces=keep_workspaces,
        )
        self._close_grace = close_grace
        self._kept = finished_runs_kept
        self._runs: dict[str, LocalRun | RunOutcome] = {}
        self._finished: deque[str] = deque()
        self._closed = False
        self._services: LocalServiceRunner | None = None
        self._refusal: str | None = self._prepare()

    def service_runner(self) -> LocalServiceRunner:
        """The runner of this executor's pipeline services (`aorta.executors.local.services`):
        host processes of the operators' user, under `<work root>/services`."""
        if self._services is None:
            config = self._config
            self._services = LocalServiceRunner(
                self._blobs,
                ServiceConfig(
                    root=self._work_root / "services",
                    python_bin_dir=config.python_bin_dir,
                    search_path=config.search_path,
                    user=config.user,
                    max_log_bytes=config.max_log_bytes,
                    log_flush_interval=config.log_flush_interval,
                    stop_grace=config.stop_grace,
                ),
            )
        return self._services

    def _prepare(self) -> str | None:
        """Resolves the operators' user and checks what it must reach; the message every run
        fails with when something is wrong (logged once here), None when operators may run."""
        try:
            user = resolve_operator_user(self._run_as, euid=os.geteuid(), egid=os.getegid())
            prepare_work_root(self._work_root, user)
            self._check_reachable(user)
        except (AortaError, OSError) as error:
            _log.error("operators cannot run", reason=str(error))
            return str(error)
        self._config = replace(self._config, user=user)
        if user.switch:
            _log.info("operators run as an unprivileged user", user=user.name, uid=user.uid)
        elif os.geteuid() == 0:
            _log.warning(
                f"{RUN_AS} makes operators run as root: an operator can read and change "
                "everything the platform keeps"
            )
        else:
            _log.info("the platform is not root: operators run as its own user", uid=user.uid)
        return None

    def _check_reachable(self, user: OperatorUser) -> None:
        interpreter = Path(sys.executable).resolve()
        blocked = (
            user.first_blocked(interpreter, access="run")
            or user.first_blocked(LEADER_SCRIPT, access="read")
            or user.first_blocked(self._config.python_bin_dir)
        )
        if blocked is not None:
            raise Invalid(
                f"operators run as {user.name!r}, who cannot reach {blocked}: the platform's "
                f"interpreter ({interpreter}), its packages and the folders on the way must be "
                "readable by that user (chmod o+x the folders on the way, or install Python and "
                "the platform where every user may read them)"
            )

    async def start(self, run: OperatorRun) -> None:
        """Takes `run` in charge and returns at once; a run id already known is left alone.

        The workspace, the input fetch and the command start happen in the background, and every
        failure among them is reported by `wait` (START_FAILED), never raised here. `Unavailable`
        once the executor is closed.
        """
        if self._closed:
            raise Unavailable("the local executor is closed")
        if run.run_id in self._runs:
            return
        if self._refusal is not None:
            # Checked again, so that `make setup` run after the platform started is enough.
            self._refusal = self._prepare()
        if self._refusal is not None:
            self._record(RunOutcome(run.run_id, RunReason.START_FAILED, None, self._refusal))
            return
        try:
            workspace = Workspace.for_run(self._work_root, run.job_id, run.operator, run.attempt)
        except Invalid as error:
            self._record(RunOutcome(run.run_id, RunReason.START_FAILED, None, str(error)))
            return
        busy = self._active_in(workspace)
        if busy is not None:
            message = f"workspace {workspace.folder} is in use by run {busy}"
            self._record(RunOutcome(run.run_id, RunReason.START_FAILED, None, message))
            return
        local = LocalRun(run, workspace, self._blobs, self._config)
        self._runs[run.run_id] = local
        local.on_end(self._finished_run)
        local.begin()
        _log.info("operator run accepted", run_id=run.run_id, operator=run.operator)

    async def wait(self, run_id: str) -> RunOutcome:
        """The run's outcome once it ended and its outputs and log are stored; LOST for a run
        this executor does not know (started by an earlier process, or long forgotten).

        Cancelling the waiter leaves the run going.
        """
        known = self._runs.get(run_id)
        if known is None:
            return RunOutcome(
                run_id,
                RunReason.LOST,
                None,
                f"the local executor has no run {run_id} (the platform restarted?): run the "
                "operator again as a new attempt",
            )
        if isinstance(known, RunOutcome):
            return known
        return await known.outcome()

    async def cancel(self, run_id: str, *, grace: float) -> None:
        """Stops the run (SIGTERM to its process group, SIGKILL after `grace` seconds) and
        returns once it ended: `wait` then says CANCELLED. Nothing happens for an unknown or
        ended run, nor for one whose command already exited: it ends as it would have (its
        outputs stored after an exit 0)."""
        known = self._runs.get(run_id)
        if isinstance(known, LocalRun):
            await known.stop(RunReason.CANCELLED, grace)

    async def running(self) -> list[str]:
        """The run ids not ended yet: preparing inputs, running, or storing outputs."""
        return [rid for rid, run in self._runs.items() if isinstance(run, LocalRun) and run.alive]

    async def log_lines(self, run_id: str) -> AsyncIterator[str]:
        """The lines the run wrote so far, stdout and stderr interleaved; the last line may be
        incomplete. Read from the workspace while it exists, else from the blob store.

        `NotFound`, on the first iteration, for a run this executor does not know or whose log
        was never stored.
        """
        known = self._runs.get(run_id)
        if known is None:
            raise NotFound(f"the local executor has no run {run_id}")
        if isinstance(known, RunOutcome):
            raise NotFound(f"run {run_id} never started, so it has no log")
        if not known.log.created:
            return  # nothing written yet (or no workspace could be made)
        try:
            source: AsyncIterator[bytes] = file_chunks(await open_for_reading(known.log.path))
        except FileNotFoundError:
            source = self._blobs.get(known.spec.log_key)
        async for line in split_lines(source):
            yield line

    async def close(self) -> None:
        """Stops every run still going (SIGTERM, SIGKILL after `close_grace` seconds) and waits
        for them: their outcome is LOST, as the scheduler must run them again after a restart.
        Later `start` calls raise `Unavailable`. Idempotent."""
        self._closed = True
        alive = [run for run in self._runs.values() if isinstance(run, LocalRun) and run.alive]
        await asyncio.gather(*(run.stop(RunReason.LOST, self._close_grace) for run in alive))
        if self._services is not None:
            await self._services.close()

    def _active_in(self, workspace: Workspace) -> str | None:
        for run_id, run in self._runs.items():
            if isinstance(run, LocalRun) and run.alive and run.workspace == workspace:
                return run_id
        return None

    def _record(self, outcome: RunOutcome) -> None:
        self._runs[outcome.run_id] = outcome
        self._finished_run(outcome.run_id)

    def _finished_run(self, run_id: str) -> None:
        self._finished.append(run_id)
        while len(self._finished) > self._kept:
            self._runs.pop(self._finished.popleft(), None)
