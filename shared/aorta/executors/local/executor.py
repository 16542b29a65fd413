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
environment is built from nothing (`aorta.executors.local.run_environment`). When they cannot
run here, every run fails to start saying why (`aorta.executors.local.readiness`).

After a restart. Operators die with the platform's process (Linux' parent-death signal, through
each run's group leader), so a fresh `LocalExecutor` has no run alive. Before it answers
anything it clears up what the previous process left (`sweep`,
`aorta.executors.local.leftovers`): a run whose operator had exited 0 is finished (outputs
stored from its workspace, outcome recorded), and `running` lists it with every outcome
recorded in the last day (`aorta.executors.outcome_records`), which `wait` answers, so an
operator that exited 0 never runs again. Every other run of the previous process is LOST: the
scheduler runs it again as a new attempt (attempt + 1); no operator ever runs twice at once.
The same sweep, every `sweep_interval` seconds, removes workspaces no live run owns.

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
from aorta.executors.local.leftovers import clear_orphan, workspace_folders
from aorta.executors.local.operator_user import DEFAULT_RUN_AS, OperatorUser
from aorta.executors.local.readiness import operators_ready
from aorta.executors.local.run import LocalRun
from aorta.executors.local.run_environment import RunConfig
from aorta.executors.local.run_plans import HeldPlan, RunPlans, planned_folders
from aorta.executors.local.run_room import RunBooks
from aorta.executors.local.services import LocalServiceRunner, ServiceConfig
from aorta.executors.outcome_records import OutcomeRecords
from aorta.executors.platform_folders import PlatformFolder
from aorta.executors.port import KnownRuns, OperatorRun, RunOutcome, RunReason
from aorta.executors.run_log import file_chunks, open_for_reading, split_lines
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import remove_if_empty, remove_workspace
from aorta.logger import get_logger

DEFAULT_STOP_GRACE = 15.0
"""Seconds between SIGTERM and SIGKILL for a run past its timeout (Clara's grace)."""
DEFAULT_CLOSE_GRACE = 5.0
DEFAULT_MAX_LOG_BYTES = 10 << 20
DEFAULT_FINISHED_RUNS_KEPT = 10_000
DEFAULT_SWEEP_INTERVAL = 600.0
"""Seconds between sweeps of the work root after the one at startup."""
RETRY_INTERVAL = 5.0
"""Seconds between tries to store the outputs of a run finished after a restart."""

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
      ones are forgotten (`wait` then answers from the outcome records for a day, else LOST),
      so a long-lived platform's memory stays bounded.
    - `sweep_interval`: seconds between sweeps of the work root (`sweep`).
    - `platform`: the default layout's folder of the platform (`work_root`), held while the
      executor lives; the folders of gone platforms beside it are removed at startup.

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
        sweep_interval: float = DEFAULT_SWEEP_INTERVAL,
        platform: PlatformFolder | None = None,
    ) -> None:
        positive = min(log_flush_interval, sweep_interval) > 0 and finished_runs_kept >= 1
        if not positive or max_log_bytes < 1024 or min(stop_grace, close_grace) < 0:
            raise Invalid(
                "the local executor needs a positive log flush interval, a log cap of at least "
                "1 KiB, grace periods of zero seconds or more, at least one ended run kept and a "
                "positive sweep interval"
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
        # The last run started in each workspace: a start looks there, not at every run kept.
        self._in_use: dict[Path, str] = {}
        self._finished: deque[str] = deque()
        self._closed = False
        self._services: LocalServiceRunner | None = None
        self._books = RunBooks(
            RunPlans(self._work_root / "plans"), OutcomeRecords(self._work_root / "outcomes")
        )
        self._sweep_interval = sweep_interval
        self._swept = asyncio.Event()
        self._sweep_lock = asyncio.Lock()
        self._sweeper: asyncio.Task[None] | None = None
        self._unfinished: dict[str, HeldPlan] = {}
        self._platform = platform
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
        """Checks that operators can run here (`aorta.executors.local.readiness`); the message
        every run fails with when something is wrong (logged once here), None when they may."""
        try:
            user = operators_ready(self._run_as, self._work_root, self._config.python_bin_dir)
        except (AortaError, OSError) as error:
            _log.error("operators cannot run", reason=str(error))
            return str(error)
        self._config = replace(self._config, user=user)
        return None

    async def start(self, run: OperatorRun) -> None:
        """Takes `run` in charge and returns at once; a run id already known is left alone.

        The workspace, the input fetch and the command start happen in the background, and every
        failure among them is reported by `wait` (START_FAILED), never raised here. A run whose
        outcome an earlier process recorded is answered from that record and never run again
        (the run finds it before it makes anything). `Unavailable` once the executor is closed.
        """
        if self._closed:
            raise Unavailable("the local executor is closed")
        await self._startup_sweep()
        if run.run_id in self._runs or run.run_id in self._unfinished:
            return
        if self._refusal is not None:
            # Checked again, so that `make setup` run after the platform started is enough.
            self._refusal = self._prepare()
        if self._refusal is not None:
            await self._refuse(run.run_id, self._refusal)
            return
        try:
            workspace = Workspace.for_run(self._work_root, run.job_id, run.operator, run.attempt)
        except Invalid as error:
            await self._refuse(run.run_id, str(error))
            return
        busy = self._in_use.get(workspace.folder, "")
        if isinstance(holder := self._runs.get(busy), LocalRun) and holder.alive:
            await self._refuse(run.run_id, f"workspace {workspace.folder} is in use by run {busy}")
            return
        local = LocalRun(run, workspace, self._blobs, self._config, self._books)
        self._runs[run.run_id] = local
        self._in_use[workspace.folder] = run.run_id
        local.on_end(self._finished_run)
        local.begin()
        _log.info("operator run accepted", run_id=run.run_id, operator=run.operator)

    async def wait(self, run_id: str) -> RunOutcome:
        """The run's outcome once it ended and its outputs, log and outcome are stored (its
        workspace is removed right after, in the background; `close` waits for that): from this
        process, else from the outcome records (a run an earlier process finished, or one whose
        operator exited 0 before that process died); LOST for any other run.

        Cancelling the waiter leaves the run going.
        """
        await self._startup_sweep()
        while run_id in self._unfinished:
            await self.sweep()
            if run_id in self._unfinished:
                await asyncio.sleep(RETRY_INTERVAL)
        known = self._runs.get(run_id) or await self._books.records.read(run_id)
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

    async def running(self) -> KnownRuns:
        """`live`: the runs not ended yet: preparing inputs, running, or storing outputs (this
        process's, and those of an earlier one whose operator exited 0 but whose outputs could
        not be stored yet). `ended`: the runs whose outcome was recorded in the last day, which
        may have ended before the scheduler recorded them (`wait` answers them).

        Of the runs this process ended, only those whose operator exited 0 are listed: a leader
        that lost its lease before recording such an end, and took the lease again, must wait
        for the run, not start the operator twice; runs stopped when a leader lost its lease
        are to run again, so they are left out."""
        await self._startup_sweep()
        alive = [rid for rid, run in self._runs.items() if isinstance(run, LocalRun) and run.alive]
        live = (*alive, *sorted(self._unfinished))
        recorded = await self._books.records.run_ids()
        ended = [rid for rid in recorded if rid not in live and _listed(self._runs.get(rid))]
        return KnownRuns(live, tuple(sorted(ended)))

    async def sweep(self) -> None:
        """Clears up what no live run owns in the work root: finishes the runs of a platform
        that died whose operator exited 0, removes the workspaces and plans of the others and
        every workspace no live run's plan names (kept with `keep_workspaces`). At startup
        (before the executor answers anything), every `sweep_interval` seconds, and on
        demand."""
        async with self._sweep_lock:
            await self._sweep()

    async def _sweep(self) -> None:
        root = self._work_root
        # Folders first: a run writes its plan before its folder, so a folder seen here
        # belongs to a plan the scan below sees (or to no live run).
        folders, empty = await asyncio.to_thread(workspace_folders, root)
        orphans, live = await asyncio.to_thread(self._books.plans.scan)
        for held in [*self._unfinished.values(), *orphans]:
            self._unfinished.pop(held.plan.run_id, None)
            kept = self._config.keep_workspaces
            cleared = await clear_orphan(
                held, root, self._blobs, self._books.records, keep_workspace=kept
            )
            if not cleared:
                self._unfinished[held.plan.run_id] = held
        if self._config.keep_workspaces or None in live:
            return  # kept on purpose, or a plan being written names a folder not known yet
        owned = {run.workspace.folder for run in self._runs.values() if isinstance(run, LocalRun)}
        owned |= planned_folders(root, (*live, *(held.plan for held in self._unfinished.values())))
        for folder in folders:
            if folder not in owned:
                _log.info("leftover workspace removed", folder=str(folder))
                await remove_workspace(Workspace(folder))
        for job_folder in empty:
            await remove_if_empty(job_folder)

    async def _startup_sweep(self) -> None:
        """The first sweep, before anything is answered; then the periodic one starts."""
        if self._swept.is_set():
            return
        async with self._sweep_lock:
            if not self._swept.is_set():
                if self._platform is not None and not self._closed:
                    await self._platform.settle()
                try:
                    await self._sweep()
                except OSError as error:
                    _log.warning("work root not swept", root=str(self._work_root), error=str(error))
                self._swept.set()
                self._sweeper = asyncio.create_task(self._sweep_periodically(), name="aorta-sweep")

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except (AortaError, OSError) as error:
                _log.warning("work root not swept", root=str(self._work_root), error=str(error))

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
        Returns once every run's workspace is removed (kept with `keep_workspaces`). Later
        `start` calls raise `Unavailable`. Idempotent."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        runs = [run for run in self._runs.values() if isinstance(run, LocalRun)]
        alive = [run for run in runs if run.alive]
        await asyncio.gather(*(run.stop(RunReason.LOST, self._close_grace) for run in alive))
        await self._config.leaders.close()
        # Workspaces still being removed after their outcome: gone when close returns.
        await asyncio.gather(*(run.cleared() for run in runs if run.clearing))
        if self._services is not None:
            await self._services.close()
        for held in self._unfinished.values():
            held.release(remove=False)
        self._unfinished.clear()
        if self._platform is not None:
            self._platform.release()

    async def _refuse(self, run_id: str, message: str) -> None:
        """Ends a run that cannot start here (START_FAILED with `message`), unless an earlier
        process recorded its outcome, which stands."""
        recorded = await self._books.records.read(run_id)
        if run_id not in self._runs and run_id not in self._unfinished:
            self._runs[run_id] = recorded or RunOutcome(
                run_id, RunReason.START_FAILED, None, message
            )
            self._finished_run(run_id)

    def _finished_run(self, run_id: str) -> None:
        known = self._runs.get(run_id)
        if isinstance(known, LocalRun) and self._in_use.get(known.workspace.folder) == run_id:
            del self._in_use[known.workspace.folder]
        if isinstance(known, LocalRun) and known.earlier and known.ended is not None:
            # Recorded by an earlier process: known from now on by that outcome alone.
            self._runs[run_id] = known.ended
        self._finished.append(run_id)
        while len(self._finished) > self._kept:
            self._runs.pop(self._finished.popleft(), None)


def _listed(known: LocalRun | RunOutcome | None) -> bool:
    """Whether `running` lists a recorded run this process knows as `known` (see there)."""
    if known is None:
        return True
    outcome = known if isinstance(known, RunOutcome) else known.ended
    return outcome is not None and outcome.reason is RunReason.COMPLETED
