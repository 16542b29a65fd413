"""One operator run in a container, from its inputs to its outcome: the container executor's
worker.

A `ContainerRun` owns one task that walks the run through its phases. A fresh run creates its
workspace, fetches its inputs, opens its volumes to the container's user, makes its image
present (pull policy, registry credentials) and creates its container (its staging:
`aorta.executors.container.staging`); an adopted run (its container made by an earlier process)
starts from that container. Both then start the container unless it already ran, follow its log
from the engine into the run's log file (pushed to the blob store while it runs), wait for its
exit with the timeout counted from its start, stop it on request (SIGTERM, SIGKILL after a
grace), store its outputs after exit 0, push the final log, and record its outcome
(`aorta.executors.outcome_records`), remove the container and the workspace. A fresh run claims
its workspace before making it and holds the claim to its end
(`aorta.executors.container.workspace_claims`), so no sweep removes it meanwhile. Whatever
happens, the task ends by setting the outcome, so a waiter is never left hanging; the container
itself outlives a task cancelled by `close`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Invalid, Unavailable
from aorta.executors.container.engine import ContainerEngine, Json
from aorta.executors.container.outcome import (
    failure,
    finished_at,
    has_exited,
    has_started,
    ran_past,
    started_at,
)
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import RunPlan
from aorta.executors.container.staging import StagingFailed, claimed, stage
from aorta.executors.container.workspace_claims import Claim
from aorta.executors.outcome_records import OutcomeRecords
from aorta.executors.port import OperatorRun, RunOutcome, RunReason, RunTimes
from aorta.executors.run_log import RunLog
from aorta.executors.stopping import Stopped
from aorta.executors.transfers import push_outputs
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import create_workspace, remove_workspace
from aorta.logger import get_logger

FAILURE_TAIL_LINES = 20
"""Log lines quoted in the message of a failed run."""
_DRAIN_TIMEOUT = 5.0
"""How long the engine's log stream may go on once the container stopped."""
_ENGINE_RETRIES = 30
"""Seconds, one try each, that an engine which stopped answering gets while a run waits."""

_log = get_logger(__name__)


class ContainerRun:
    """One run and the task that drives it (module docstring); `begin` starts the task.

    `run` is the whole run for a fresh start, None for a run adopted from its container;
    `records` where its outcome is kept once its container is removed.
    """

    def __init__(
        self,
        engine: ContainerEngine,
        blobs: BlobStore,
        settings: ContainerSettings,
        plan: RunPlan,
        name: str,
        *,
        run: OperatorRun | None,
        records: OutcomeRecords,
        max_log_bytes: int,
    ) -> None:
        self.plan = plan
        self.name = name
        self.workspace = Workspace(Path(plan.work_folder))
        self.log = RunLog(self.workspace.log_file, max_bytes=max_log_bytes)
        self._engine = engine
        self._blobs = blobs
        self._settings = settings
        self._run = run
        self._records = records
        self._outcome: asyncio.Future[RunOutcome] = asyncio.get_running_loop().create_future()
        self._stop_requested = asyncio.Event()
        self._stop_reason = RunReason.CANCELLED
        self._stop_grace = settings.stop_grace
        self._task: asyncio.Task[None] | None = None
        self._times = RunTimes()
        self._claim: Claim | None = None

    def on_end(self, callback: Callable[[str], None]) -> None:
        """Calls `callback(run_id)` once the outcome is known."""
        self._outcome.add_done_callback(lambda _: callback(self.plan.run_id))

    def begin(self) -> None:
        """Starts the run's task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._main(), name=f"aorta-container-{self.name}")

    @property
    def alive(self) -> bool:
        """True until the outcome is known."""
        return not self._outcome.done()

    async def outcome(self) -> RunOutcome:
        """Waits for the outcome; cancelling the waiter does not affect the run."""
        return await asyncio.shield(self._outcome)

    async def stop(self, reason: RunReason, grace: float) -> RunOutcome:
        """Stops the run (the container: SIGTERM, SIGKILL after `grace` seconds) and returns its
        outcome. The first request wins; a container that already exited ends as it would have."""
        if self.alive and not self._stop_requested.is_set():
            self._stop_reason, self._stop_grace = reason, grace
            self._stop_requested.set()
        return await self.outcome()

    async def abandon(self) -> None:
        """Ends the task without touching the container (the executor closes): a later
        executor adopts it. Waiters in this process get LOST."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _main(self) -> None:
        outcome = self._outcome_of(
            RunReason.LOST,
            "the container executor closed before the run ended; its container "
            "goes on and is adopted by the next one",
        )
        try:
            outcome = await self._finish(await self._execute())
        except AortaError as error:  # the engine stopped answering, most likely
            _log.warning("container run failed", run_id=self.plan.run_id, error=str(error))
            message = f"the container executor lost the run: {'; '.join(error.messages)}"
            outcome = self._outcome_of(RunReason.FAILED, message)
        except Exception as error:  # a bug here must still end the run, not hang its waiters
            _log.exception("container run failed unexpectedly", run_id=self.plan.run_id)
            message = f"the container executor failed: {error!r}"
            outcome = self._outcome_of(RunReason.FAILED, message)
        finally:
            if self._claim is not None:
                self._claim.release()
            self._outcome.set_result(outcome)

    async def _execute(self) -> RunOutcome:
        if self._run is not None:
            # An adopted run's staging happened in an earlier process: unknown here.
            self._times = RunTimes(staging=time.time())
            early = await self._prepare(self._run)
            if early is not None:
                return early
        else:
            await asyncio.to_thread(self.workspace.folder.mkdir, parents=True, exist_ok=True)
            await self.log.create()
        container = await self._engine.inspect(self.name)
        if container is None:
            return self._removed_outside()
        if not has_started(container) and not has_exited(container):
            if self._stop_requested.is_set():
                await self._engine.remove(self.name)
                return self._stopped_before_start()
            try:
                await self._engine.start(self.name)
            except AortaError as error:
                return self._outcome_of(RunReason.START_FAILED, "; ".join(error.messages))
            container = await self._engine.inspect(self.name) or container
            _log.info("operator container started", run_id=self.plan.run_id, container=self.name)
        stopped = await self._supervise(container)
        ended = await self._engine.inspect(self.name)
        if ended is None:
            return self._removed_outside()
        # The engine's own times of the process, so an adopted run has them too.
        began, finished = started_at(ended), finished_at(ended)
        self._times = replace(
            self._times,
            running=None if began is None else began.timestamp(),
            exited=None if finished is None else finished.timestamp(),
        )
        return await self._conclude(ended, stopped)

    async def _prepare(self, run: OperatorRun) -> RunOutcome | None:
        """Workspace, then the rest of the staging (`staging.stage`): inputs, image and
        container; the outcome when one of them fails."""
        try:
            self._claim = await claimed(self.workspace)
            await create_workspace(self.workspace, [*run.inputs, *run.outputs])
            await self.log.create()
        except (Invalid, OSError) as error:
            return self._outcome_of(RunReason.START_FAILED, f"no workspace: {error}")
        try:
            await stage(
                run,
                name=self.name,
                plan=self.plan,
                workspace=self.workspace,
                engine=self._engine,
                blobs=self._blobs,
                settings=self._settings,
                stop=self._stop_requested,
            )
        except Stopped:
            return self._stopped_before_start()
        except StagingFailed as failed:
            return self._outcome_of(RunReason.START_FAILED, str(failed))
        return None

    async def _supervise(self, container: Json) -> RunReason | None:
        """Follows the log and watches the container until it stopped; the reason it was
        stopped, if the executor stopped it."""
        pump = asyncio.create_task(self._pump(), name=f"aorta-container-log-{self.name}")
        flusher = asyncio.create_task(self._flush_periodically(), name="aorta-container-flush")
        try:
            if has_exited(container):
                return RunReason.TIMEOUT if ran_past(container, self.plan.timeout) else None
            return await self._watch(container)
        finally:
            current = asyncio.current_task()
            if current is None or not current.cancelling():  # abandoned: the log goes on
                try:
                    await asyncio.wait_for(asyncio.shield(pump), timeout=_DRAIN_TIMEOUT)
                except TimeoutError:
                    _log.warning("operator log still open after exit", container=self.name)
            for task in (pump, flusher):
                task.cancel()
            await asyncio.gather(pump, flusher, return_exceptions=True)

    async def _watch(self, container: Json) -> RunReason | None:
        exited = asyncio.ensure_future(self._exit())
        stop = asyncio.ensure_future(self._stop_requested.wait())
        try:
            done, _ = await asyncio.wait(
                {exited, stop},
                timeout=max(0.0, self._remaining(container)),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if exited in done:
                exited.result()
                return None
            if stop in done:
                reason, grace = self._stop_reason, self._stop_grace
            else:
                reason, grace = RunReason.TIMEOUT, self._settings.stop_grace
                await self.log.note(
                    f"operator {self.plan.operator} ran past its timeout of "
                    f"{self.plan.timeout:g} s: stopping it (SIGTERM, SIGKILL after {grace:g} s)"
                )
            await self._engine.stop(self.name, grace)
            await exited
            return reason
        finally:
            stop.cancel()
            exited.cancel()
            await asyncio.gather(stop, exited, return_exceptions=True)

    async def _exit(self) -> int:
        """The container's exit code once it stopped, waiting through engine restarts."""
        for _ in range(_ENGINE_RETRIES):
            try:
                return await self._engine.wait(self.name)
            except Unavailable as error:
                _log.warning("container engine silent", container=self.name, error=str(error))
                await asyncio.sleep(1.0)
        return await self._engine.wait(self.name)

    def _remaining(self, container: Json) -> float:
        started = started_at(container) or datetime.now(UTC)
        return self.plan.timeout - (datetime.now(UTC) - started).total_seconds()

    async def _conclude(self, container: Json, stopped: RunReason | None) -> RunOutcome:
        tail = "\n".join(await self.log.tail(FAILURE_TAIL_LINES))
        failed = failure(
            container,
            self.plan.run_id,
            self.plan.operator,
            stopped=stopped,
            timeout=self.plan.timeout,
            tail=tail,
        )
        if failed is not None:
            return failed
        name = self.plan.operator
        try:
            pushed = await push_outputs(self._blobs, self.plan.outputs, self.workspace)
        except (AortaError, OSError) as error:
            message = f"outputs of operator {name} could not be stored: {error}"
            return self._outcome_of(RunReason.FAILED, message, 0)
        if pushed.skipped:
            await self.log.note(f"not stored (not regular files): {', '.join(pushed.skipped)}")
        plural = "" if pushed.files == 1 else "s"
        return self._outcome_of(
            RunReason.COMPLETED, f"{pushed.files} file{plural} ({pushed.size} bytes) stored", 0
        )

    async def _finish(self, outcome: RunOutcome) -> RunOutcome:
        """Pushes the final log and records the outcome, then removes the container and the
        workspace (the outputs are stored by now). No failure here changes the outcome; one
        that was not recorded keeps its container, which then stands for the record."""
        run_id = self.plan.run_id
        if self.log.created:
            if not outcome.succeeded:
                await _quietly(self.log.note(outcome.message.split("\n", 1)[0]), run_id, "note")
            await _quietly(self.log.push(self._blobs, self.plan.log_key), run_id, "final log push")
        self._times = replace(self._times, stored=time.time())
        outcome = replace(outcome, times=self._times)
        if outcome.reason is not RunReason.LOST:
            recorded = await self._recorded(outcome)
            if recorded and not self._settings.keep_containers:
                await _quietly(self._engine.remove(self.name), run_id, "container removal")
                await _quietly(remove_workspace(self.workspace), run_id, "workspace removal")
        _log.info(
            "operator run ended",
            run_id=run_id,
            operator=self.plan.operator,
            reason=outcome.reason.value,
            exit_code=outcome.exit_code,
        )
        return outcome

    async def _recorded(self, outcome: RunOutcome) -> bool:
        """Writes the outcome where an executor started after a crash finds it; False when it
        could not (the container then stays, as the record of the run)."""
        try:
            await self._records.write(outcome)
        except OSError as error:
            _log.warning("run outcome not recorded", run_id=self.plan.run_id, error=str(error))
            return False
        return True

    async def _pump(self) -> None:
        """Copies the engine's log of the container, from its start, into the run's log."""
        try:
            async for chunk in self._engine.logs(self.name, follow=True):
                await self.log.append(chunk)
        except (AortaError, OSError) as error:
            _log.warning("operator log not captured", container=self.name, error=str(error))

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._settings.log_flush_interval)
            await _quietly(self.log.push(self._blobs, self.plan.log_key), self.plan.run_id, "push")

    def _removed_outside(self) -> RunOutcome:
        return self._outcome_of(RunReason.LOST, f"container {self.name} was removed outside Aorta")

    def _stopped_before_start(self) -> RunOutcome:
        if self._stop_reason is RunReason.LOST:
            return self._outcome_of(RunReason.LOST, "the container executor closed first")
        return self._outcome_of(
            self._stop_reason, f"operator {self.plan.operator} was cancelled before it started"
        )

    def _outcome_of(
        self, reason: RunReason, message: str, exit_code: int | None = None
    ) -> RunOutcome:
        return RunOutcome(self.plan.run_id, reason, exit_code, message)


async def _quietly(work: Awaitable[None], run_id: str, what: str) -> None:
    """Runs best-effort bookkeeping; a failure is logged, never raised."""
    try:
        await work
    except (AortaError, OSError) as error:
        _log.warning("container run bookkeeping failed", run_id=run_id, step=what, error=str(error))
