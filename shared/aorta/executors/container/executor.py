"""The container executor: each operator run is a container of the operator's own image.

It speaks the Docker Engine API (`aorta.executors.container.engine`), so Docker Engine and
Podman's API service both run it. A run's container follows Clara's container semantics and is
isolated by default (`aorta.executors.container.spec`); its inputs are staged from the blob store
into a workspace under `work_root` and bind-mounted read-only, its outputs stored back after
exit 0 (`aorta.executors.container.container_run`).

Crash safety. Containers outlive the platform. Each is named after its run and platform
instance and labelled with its run, job and operator and with the plan that finishing it needs,
so an executor started after a crash adopts what it finds (`running`, or `start`/`wait`/`cancel`
of a run id whose container exists) instead of running it again: it follows the container (or
reads how it ended, when it finished while nobody watched), stores its outputs after exit 0 and
captures its whole log from the engine. Containers are removed only once their outcome and
outputs are stored, and their outcome recorded on disk for a day
(`aorta.executors.outcome_records`), so a crash after the removal but before the
scheduler recorded the outcome does not run the operator again either; `close` leaves running
containers alone.

Leftovers. A platform killed while a run's inputs were being fetched leaves a workspace that no
container names. Before it answers anything, and every `sweep_interval` seconds, the executor
sweeps its work root (`sweep`): it removes every workspace that no run of this process, no
other process's claim (`aorta.executors.container.workspace_claims`) and no container of the
engine owns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Invalid, NotFound, Unavailable
from aorta.executors.container.container_run import ContainerRun
from aorta.executors.container.engine import ContainerEngine, Json
from aorta.executors.container.services import ContainerServiceRunner
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import (
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    OPERATOR_COMPONENT,
    RUN_LABEL,
    RunPlan,
    container_name,
    owner_labels,
)
from aorta.executors.container.workspace_claims import (
    Claim,
    prepare_work_root,
    stale_claims,
    try_claim,
    workspace_folders,
)
from aorta.executors.outcome_records import OutcomeRecords
from aorta.executors.platform_folders import PlatformFolder
from aorta.executors.port import KnownRuns, OperatorRun, RunOutcome, RunReason
from aorta.executors.run_log import file_chunks, open_for_reading, split_lines
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import remove_if_empty, remove_workspace
from aorta.logger import get_logger

DEFAULT_MAX_LOG_BYTES = 10 << 20
DEFAULT_FINISHED_RUNS_KEPT = 10_000
DEFAULT_SWEEP_INTERVAL = 600.0
"""Seconds between sweeps of the work root after the one at startup."""

_log = get_logger(__name__)


class ContainerExecutor:
    """Runs operator runs as containers (the `Executor` port; module docstring).

    - `engine`: the engine connection; closed by `close` when `owns_engine`.
    - `blobs`: where inputs come from, outputs and logs go.
    - `settings`: `AORTA_CONTAINER_*` (pull policy, credentials file, instance label, ...).
    - `work_root`: the parent of every run's workspace (created 0700 when missing), on the
      engine's host; never inside the data dir.
    - `max_log_bytes`: the size a run's log is kept under (the oldest output is dropped).
    - `finished_runs_kept`: how many ended runs `wait` still answers for.
    - `sweep_interval`: seconds between sweeps of the work root (`sweep`).
    - `platform`: the default layout's folder of the platform (`work_root`), held while the
      executor lives; the folders of gone platforms beside it are removed at startup.

    Use from one event loop.
    """

    def __init__(
        self,
        engine: ContainerEngine,
        blobs: BlobStore,
        settings: ContainerSettings,
        work_root: Path,
        *,
        owns_engine: bool = False,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        finished_runs_kept: int = DEFAULT_FINISHED_RUNS_KEPT,
        sweep_interval: float = DEFAULT_SWEEP_INTERVAL,
        platform: PlatformFolder | None = None,
    ) -> None:
        if max_log_bytes < 1024 or finished_runs_kept < 1 or sweep_interval <= 0:
            raise Invalid(
                "the container executor needs a log cap of at least 1 KiB, at least one "
                "ended run kept and a positive sweep interval"
            )
        self._engine = engine
        self._blobs = blobs
        self._settings = settings
        self._work_root = Path(work_root).absolute()
        self._owns_engine = owns_engine
        self._max_log_bytes = max_log_bytes
        self._kept = finished_runs_kept
        self._records = OutcomeRecords(self._work_root / f"outcomes-{settings.instance}")
        self._runs: dict[str, ContainerRun | RunOutcome] = {}
        self._finished: deque[str] = deque()
        self._starting: set[str] = set()
        self._services: ContainerServiceRunner | None = None
        self._closed = False
        self._sweep_interval = sweep_interval
        self._sweep_lock = asyncio.Lock()
        self._swept = False
        self._sweeper: asyncio.Task[None] | None = None
        self._platform = platform

    @classmethod
    async def open(
        cls,
        url: str,
        settings: ContainerSettings,
        blobs: BlobStore,
        work_root: Path,
        platform: PlatformFolder | None = None,
    ) -> ContainerExecutor:
        """Connects to the engine at `url` (`unix:///...`, `tcp://...`); the executor owns the
        connection. `Unavailable` when no engine answers there."""
        engine = await ContainerEngine.connect(url)
        _log.info("container engine connected", url=url, engine=engine.kind.value)
        return cls(engine, blobs, settings, work_root, owns_engine=True, platform=platform)

    def service_runner(self) -> ContainerServiceRunner:
        """The runner of the pipeline services operators of this executor reach: containers
        on the same engine, with the same settings (`aorta.executors.container.services`).
        The same runner on every call; `close` closes it."""
        if self._services is None:
            self._services = ContainerServiceRunner(self._engine, self._blobs, self._settings)
        return self._services

    async def start(self, run: OperatorRun) -> None:
        """Takes `run` in charge and returns once it is known: preparing it (inputs, image,
        container) goes on in the background and its failures are reported by `wait`
        (START_FAILED). A run whose container exists already (made before a crash) is adopted,
        never started twice. `Unavailable` when the engine does not answer or the executor is
        closed."""
        if self._closed:
            raise Unavailable("the container executor is closed")
        await self._startup_sweep()
        if run.run_id in self._runs or run.run_id in self._starting:
            return
        self._starting.add(run.run_id)  # a second start meanwhile does nothing
        try:
            await self._start(run)
        finally:
            self._starting.discard(run.run_id)

    async def _start(self, run: OperatorRun) -> None:
        if await self._adopt(run.run_id) is not None:
            return
        recorded = await self._records.read(run.run_id)
        if recorded is not None:
            self._record(recorded)  # it ended under an earlier process: never run it again
            return
        try:
            workspace = Workspace.for_run(self._work_root, run.job_id, run.operator, run.attempt)
            await asyncio.to_thread(prepare_work_root, self._work_root, self._platform)
        except (Invalid, OSError) as error:
            self._record(RunOutcome(run.run_id, RunReason.START_FAILED, None, str(error)))
            return
        plan = RunPlan(
            run_id=run.run_id,
            operator=run.operator,
            outputs=run.outputs,
            log_key=run.log_key,
            timeout=run.timeout,
            work_folder=str(workspace.folder),
        )
        self._track(self._new_run(plan, run))
        _log.info("operator run accepted", run_id=run.run_id, operator=run.operator)

    async def wait(self, run_id: str) -> RunOutcome:
        """The run's outcome once it ended and its outputs and log are stored; a run this
        process does not know is adopted from its container, and is LOST without one.
        Cancelling the waiter leaves the run going."""
        await self._startup_sweep()
        known = self._runs.get(run_id) or await self._adopt(run_id)
        if known is None:
            known = await self._records.read(run_id)
        if known is None:
            return RunOutcome(
                run_id,
                RunReason.LOST,
                None,
                f"no container carries run {run_id}: run the operator again as a new attempt",
            )
        if isinstance(known, RunOutcome):
            return known
        return await known.outcome()

    async def cancel(self, run_id: str, *, grace: float) -> None:
        """Stops the run's container (SIGTERM, SIGKILL after `grace` seconds) and returns once
        it ended: `wait` then says CANCELLED. Nothing happens for an unknown or ended run, nor
        for one whose container already exited: it ends as it would have."""
        known = self._runs.get(run_id) or await self._adopt(run_id)
        if isinstance(known, ContainerRun):
            await known.stop(RunReason.CANCELLED, grace)

    async def running(self) -> KnownRuns:
        """`live`: the runs not ended yet: preparing, running, or with a container whose
        outcome no one has read yet (it finished while no executor watched). `ended`: those
        whose outcome was recorded in the last day, which may have ended before the scheduler
        recorded it (`wait` answers it): an earlier process's, after a restart, and this
        process's own (a leader that lost its lease and took it again must not run them
        again). Containers of this instance that this process did not know are adopted
        here."""
        if self._closed:
            raise Unavailable("the container executor is closed")
        await self._startup_sweep()
        for container in await self._engine.list(owner_labels(self._settings.instance)):
            run_id = (container.get("Labels") or {}).get(RUN_LABEL)
            if run_id and run_id not in self._runs:
                self._adopt_container(container)
        runs = self._runs.items()
        alive = [rid for rid, run in runs if isinstance(run, ContainerRun) and run.alive]
        recorded = [rid for rid in await self._records.run_ids() if rid not in alive]
        return KnownRuns(tuple(alive), tuple(sorted(recorded)))

    async def sweep(self) -> None:
        """Removes the workspaces under the work root that no live run owns: none of this
        process's runs, no claim another process holds (a run whose inputs it fetches) and no
        container of the engine (of any instance) names; then the job folders left empty and
        the claims no one holds of workspaces that are gone. At startup (before the executor
        answers anything), every `sweep_interval` seconds, and on demand. Raises `OSError`, or
        `AortaError` when the engine does not answer (nothing is removed then)."""
        async with self._sweep_lock:
            await self._sweep()

    async def _sweep(self) -> None:
        root = self._work_root
        folders, empty = await asyncio.to_thread(workspace_folders, root)
        mine = {
            run.workspace.folder
            for run in self._runs.values()
            if isinstance(run, ContainerRun) and run.alive
        }
        held: list[tuple[Path, Claim]] = []
        try:
            for folder in folders:
                if folder not in mine:
                    claim = await asyncio.to_thread(try_claim, root, folder)
                    if claim is not None:
                        held.append((folder, claim))
            # Claims first, then the containers: a container made before its run let go of
            # the claim is listed.
            named = await self._named_workspaces()
            for folder, _ in held:
                if folder not in named:
                    _log.info("leftover workspace removed", folder=str(folder))
                    await remove_workspace(Workspace(folder))
            for job_folder in empty:
                await remove_if_empty(job_folder)
            held += [(claim.path, claim) for claim in await asyncio.to_thread(stale_claims, root)]
        finally:
            for _, claim in held:
                claim.release()

    async def _named_workspaces(self) -> set[Path]:
        """The workspaces the operator containers of the engine (every instance) name."""
        named = set()
        for container in await self._engine.list({COMPONENT_LABEL: OPERATOR_COMPONENT}):
            with contextlib.suppress(Invalid):
                named.add(Path(RunPlan.from_labels(container.get("Labels") or {}).work_folder))
        return named

    async def _startup_sweep(self) -> None:
        """The first sweep, before anything is answered; then the periodic one starts."""
        if self._swept:
            return
        async with self._sweep_lock:
            if not self._swept:
                if self._platform is not None and not self._closed:
                    await self._platform.settle()
                await self._sweep_quietly()
                self._swept = True
                self._sweeper = asyncio.create_task(
                    self._sweep_periodically(), name="aorta-container-sweep"
                )

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            async with self._sweep_lock:
                await self._sweep_quietly()

    async def _sweep_quietly(self) -> None:
        try:
            await self._sweep()
        except (AortaError, OSError) as error:
            _log.warning("work root not swept", root=str(self._work_root), error=str(error))

    async def log_lines(self, run_id: str) -> AsyncIterator[str]:
        """The lines the run wrote so far, stdout and stderr interleaved; the last line may be
        incomplete. From the run's log file while it exists, else from the blob store.
        `NotFound`, on the first iteration, for an unknown run or one that never started."""
        known = self._runs.get(run_id)
        if not isinstance(known, ContainerRun):
            raise NotFound(f"the container executor has no log of run {run_id}")
        if not known.log.created:
            return
        try:
            source: AsyncIterator[bytes] = file_chunks(await open_for_reading(known.log.path))
        except FileNotFoundError:
            source = self._blobs.get(known.plan.log_key)
        async for line in split_lines(source):
            yield line

    async def close(self) -> None:
        """Stops following the runs and closes the engine connection; containers keep running
        and the next executor adopts them (waiters here get LOST). Later `start` calls raise
        `Unavailable`. Idempotent."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        alive = [run for run in self._runs.values() if isinstance(run, ContainerRun)]
        await asyncio.gather(*(run.abandon() for run in alive))
        if self._services is not None:
            await self._services.close()
        if self._owns_engine:
            self._owns_engine = False
            await self._engine.close()
        if self._platform is not None:
            self._platform.release()

    async def _adopt(self, run_id: str) -> ContainerRun | None:
        """The run of the container made for `run_id` by an earlier process, adopted; None when
        there is none (or it belongs to another instance)."""
        if self._closed:
            return None
        container = await self._engine.inspect(container_name(self._settings.instance, run_id))
        if container is None:
            return None
        labels = (container.get("Config") or {}).get("Labels") or {}
        owned = labels.get(INSTANCE_LABEL) == self._settings.instance
        if not owned or labels.get(COMPONENT_LABEL) != OPERATOR_COMPONENT:
            return None
        if labels.get(RUN_LABEL) != run_id:
            return None
        return self._adopt_container({"Labels": labels})

    def _adopt_container(self, container: Json) -> ContainerRun | None:
        labels = container.get("Labels") or {}
        try:
            plan = RunPlan.from_labels(labels)
        except Invalid as error:
            _log.warning("container not adopted", labels=sorted(labels), error=str(error))
            return None
        existing = self._runs.get(plan.run_id)
        if isinstance(existing, ContainerRun):
            return existing
        run = self._new_run(plan, None)
        self._track(run)
        _log.info("operator container adopted", run_id=plan.run_id, container=run.name)
        return run

    def _new_run(self, plan: RunPlan, run: OperatorRun | None) -> ContainerRun:
        return ContainerRun(
            self._engine,
            self._blobs,
            self._settings,
            plan,
            container_name(self._settings.instance, plan.run_id),
            run=run,
            records=self._records,
            max_log_bytes=self._max_log_bytes,
        )

    def _track(self, run: ContainerRun) -> None:
        self._runs[run.plan.run_id] = run
        run.on_end(self._finished_run)
        run.begin()

    def _record(self, outcome: RunOutcome) -> None:
        self._runs[outcome.run_id] = outcome
        self._finished_run(outcome.run_id)

    def _finished_run(self, run_id: str) -> None:
        self._finished.append(run_id)
        while len(self._finished) > self._kept:
            self._runs.pop(self._finished.popleft(), None)
