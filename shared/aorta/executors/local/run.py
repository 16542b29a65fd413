"""One operator run on this host, from its inputs to its outcome: the local executor's worker.

A `LocalRun` owns one task that walks the run through its phases: create the workspace, fetch
the inputs, give the workspace to the operator's user, start the command under its group
leader, watch it (exit, timeout, stop request), store the outputs when it exited 0 (the final
log is pushed beside them), record the outcome, deliver it, remove the workspace. Whatever
happens, the task sets the outcome, so a waiter is never left hanging; the workspace and the
plan go after the outcome is delivered, so the next operator of the job need not wait for them.

Exactly once. A run whose outcome an earlier process recorded finds that record before it
makes anything, and ends with it. Before its workspace is made the run's plan is written and
locked (`aorta.executors.local.run_plans`, `aorta.executors.local.run_room`); the group
leader records the operator's exit in the workspace before anything else happens; the
outcome is recorded on disk (`aorta.executors.outcome_records`) before the workspace and the
plan are removed. A platform killed anywhere after an exit 0 thus leaves either the record or
the workspace with its outputs and `exit 0`, from which the next executor finishes the run
(`aorta.executors.local.leftovers`) instead of running the operator again. A run stopped
because the executor closed (LOST) is not recorded: the scheduler runs it again.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Invalid
from aorta.executors.local.process_group import ExitStatus, OperatorProcess
from aorta.executors.local.run_environment import RunConfig, operator_environment
from aorta.executors.local.run_plans import HeldPlan, clear_run
from aorta.executors.local.run_room import RunBooks, hand_over_run, make_room, not_handed_over
from aorta.executors.port import OperatorRun, RunOutcome, RunReason, RunTimes
from aorta.executors.run_log import RunLog
from aorta.executors.stopping import Stopped, unless_stopped
from aorta.executors.transfers import InputFile, fetch_listed, list_inputs, push_outputs
from aorta.executors.workspace import Workspace
from aorta.logger import get_logger

FAILURE_TAIL_LINES = 20
"""Log lines quoted in the message of a failed run."""
_READ_SIZE = 64 << 10
_DRAIN_TIMEOUT = 2.0
"""How long output may keep flowing after the group was killed (a process that left the group
may hold the pipe open)."""

_log = get_logger(__name__)


class LocalRun:
    """One run and the task that drives it; `begin` starts the task."""

    def __init__(
        self,
        run: OperatorRun,
        workspace: Workspace,
        blobs: BlobStore,
        config: RunConfig,
        books: RunBooks,
    ) -> None:
        self.spec = run
        self.workspace = workspace
        self.log = RunLog(workspace.log_file, max_bytes=config.max_log_bytes)
        self._blobs = blobs
        self._config = config
        self._outcome: asyncio.Future[RunOutcome] = asyncio.get_running_loop().create_future()
        self._stop_requested = asyncio.Event()
        self._stop_reason = RunReason.CANCELLED
        self._stop_grace = config.stop_grace
        self._task: asyncio.Task[None] | None = None
        self._times = RunTimes()
        self._books = books
        self._plan: HeldPlan | None = None
        self._early_log: asyncio.Future[None] | None = None
        self.earlier = False
        """True once the run turned out to have ended under an earlier process: its outcome
        is that process's record, and nothing of the run is made, stored or removed."""

    def on_end(self, callback: Callable[[str], None]) -> None:
        """Calls `callback(run_id)` once the outcome is known."""
        self._outcome.add_done_callback(lambda _: callback(self.spec.run_id))

    def begin(self) -> None:
        """Starts the run's task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._main(), name=f"aorta-run-{self.spec.run_id}")

    @property
    def alive(self) -> bool:
        """True until the outcome is known (preparing, running or storing outputs)."""
        return not self._outcome.done()

    @property
    def ended(self) -> RunOutcome | None:
        """The outcome once the run ended, else None."""
        return self._outcome.result() if self._outcome.done() else None

    async def outcome(self) -> RunOutcome:
        """Waits for the outcome; cancelling the waiter does not affect the run."""
        return await asyncio.shield(self._outcome)

    async def stop(self, reason: RunReason, grace: float) -> RunOutcome:
        """Stops the run (SIGTERM to its group, SIGKILL after `grace` seconds) and returns its
        outcome. The first stop request wins; a run whose command already exited finishes
        normally (its outputs are stored)."""
        if self.alive and not self._stop_requested.is_set():
            self._stop_reason, self._stop_grace = reason, grace
            self._stop_requested.set()
        return await self.outcome()

    @property
    def clearing(self) -> bool:
        """True while the run's task goes on (its workspace removed after the outcome)."""
        return self._task is not None and not self._task.done()

    async def cleared(self) -> None:
        """Returns once the run's task ended: its workspace and plan removed after the outcome
        (or left, when the task was cancelled, for the next sweep)."""
        if self._task is not None:
            await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)

    async def _main(self) -> None:
        # What waiters get if this task is cancelled (the event loop closing under it).
        outcome = self._outcome_of(
            RunReason.LOST, "the local executor stopped before the run ended"
        )
        try:
            outcome = await self._execute()
            if not self.earlier:
                outcome = await self._record(outcome)
        except Exception as error:  # a bug here must still end the run, not hang its waiters
            _log.exception("local run failed unexpectedly", run_id=self.spec.run_id)
            outcome = self._outcome_of(RunReason.FAILED, f"the local executor failed: {error!r}")
        finally:
            self._outcome.set_result(outcome)
        if self.earlier:
            return
        try:
            await self._clear(outcome)
        except Exception:  # the outcome stands; the next sweep removes what is left
            _log.exception("local run not cleared", run_id=self.spec.run_id)

    async def _execute(self) -> RunOutcome:
        run = self.spec
        self._times = RunTimes(staging=time.time())
        listing = list_inputs(self._blobs, run.inputs)
        try:
            return await self._stage(listing)
        finally:
            await listing.aclose()

    async def _stage(self, listing: AsyncGenerator[InputFile, None]) -> RunOutcome:
        """Makes the workspace, fetches the inputs, hands the workspace over, then runs the
        command. Whether there is anything to fetch is asked first: when nothing is (a
        first operator without inputs, an upstream output left empty), the workspace is made
        and handed over in one thread call, each hop being a wait for a core."""
        run = self.spec
        first: InputFile | Stopped | AortaError | OSError | None
        try:
            first = await unless_stopped(anext(listing, None), self._stop_requested)
        except (Stopped, AortaError, OSError) as error:
            first = error  # reported once the workspace and its log exist, as a fetch's
        try:
            env: dict[str, str] | str = operator_environment(run, self.workspace, self._config)
        except Invalid as error:
            env = str(error)
        user = self._config.user
        at_once = first is None and bool(run.command) and isinstance(env, dict)
        room = await asyncio.to_thread(
            make_room, run, self.workspace, self.log, self._books, user if at_once else None
        )
        self._plan = room.plan
        if room.recorded is not None:
            self.earlier = True
            return room.recorded
        if room.failure is not None:
            return self._outcome_of(RunReason.START_FAILED, room.failure)
        if not run.command:
            return self._outcome_of(
                RunReason.START_FAILED,
                f"operator {run.operator} has no container.command; the local executor runs "
                "commands on the host",
            )
        if isinstance(env, str):
            return self._outcome_of(RunReason.START_FAILED, env)
        try:
            if isinstance(first, BaseException):
                raise first
            if first is not None:
                await unless_stopped(
                    fetch_listed(self._blobs, listing, self.workspace, first=first),
                    self._stop_requested,
                )
            if self._stop_requested.is_set():
                raise Stopped
        except Stopped:
            message = _stopped_message(self._stop_reason, run.operator, started=False)
            return self._outcome_of(self._stop_reason, message)
        except (AortaError, OSError) as error:
            return self._outcome_of(RunReason.START_FAILED, f"inputs could not be fetched: {error}")
        if not at_once:
            try:
                await asyncio.to_thread(hand_over_run, run, self.workspace, user)
            except OSError as error:
                return self._outcome_of(RunReason.START_FAILED, not_handed_over(user, error))
        return await self._run(env)

    async def _run(self, env: dict[str, str]) -> RunOutcome:
        """Starts the command in the workspace now handed over, and sees it to its end."""
        run, user, leaders = self.spec, self._config.user, self._config.leaders
        home, status_file = self.workspace.home, self.workspace.status_file
        try:
            process = leaders.hand(
                run.command, cwd=home, env=env, status_file=status_file, user=user
            )
            if process is None:
                process = await OperatorProcess.spawn(
                    run.command, cwd=home, env=env, status_file=status_file, user=user
                )
        except OSError as error:
            return self._outcome_of(RunReason.START_FAILED, f"no group leader: {error}")
        self._times = replace(self._times, running=time.time())
        leaders.refill(user)  # the next run's leader, started while this one's command runs
        _log.info(
            "operator started",
            run_id=run.run_id,
            operator=run.operator,
            pid=process.pid,
            uid=user.uid,
        )
        reason = await self._supervise(process)
        self._times = replace(self._times, exited=time.time())
        return await self._conclude(await process.exit_status(), reason)

    async def _supervise(self, process: OperatorProcess) -> RunReason | None:
        """Watches the process until its group is gone; the reason it was stopped, if it was."""
        pump = asyncio.create_task(self._pump(process.output), name="aorta-run-log-pump")
        flusher = asyncio.create_task(self._flush_periodically(), name="aorta-run-log-flush")
        try:
            return await self._watch(process)
        finally:
            # Like a container, the run ends with its main process: what it left behind goes.
            process.signal_group(signal.SIGKILL)
            try:
                await asyncio.wait_for(pump, timeout=_DRAIN_TIMEOUT)
            except TimeoutError:
                _log.warning("operator output still open after exit", run_id=self.spec.run_id)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            process.close()

    async def _watch(self, process: OperatorProcess) -> RunReason | None:
        exited = asyncio.ensure_future(process.wait())
        stop = asyncio.ensure_future(self._stop_requested.wait())
        try:
            done, _ = await asyncio.wait(
                {exited, stop}, timeout=self.spec.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if exited in done:
                return None
            if stop in done:
                reason, grace = self._stop_reason, self._stop_grace
            else:
                reason, grace = RunReason.TIMEOUT, self._config.stop_grace
                await self.log.note(
                    f"operator {self.spec.operator} ran past its timeout of "
                    f"{self.spec.timeout:g} s: stopping it (SIGTERM, SIGKILL after {grace:g} s)"
                )
            await process.stop(grace)
            return reason
        finally:
            stop.cancel()
            exited.cancel()

    async def _conclude(self, status: ExitStatus, stopped: RunReason | None) -> RunOutcome:
        name = self.spec.operator
        if status.start_error is not None:
            return self._outcome_of(RunReason.START_FAILED, status.start_error)
        if stopped is RunReason.TIMEOUT:
            message = f"operator {name} ran past its timeout of {self.spec.timeout:g} s"
            return self._outcome_of(stopped, f"{message}; {status.describe()}", status.code)
        if stopped is not None:
            return self._outcome_of(
                stopped, _stopped_message(stopped, name, started=True), status.code
            )
        if status.code != 0:
            tail = "\n".join(await self.log.tail(FAILURE_TAIL_LINES))
            message = f"operator {name} failed: {status.describe()}"
            return self._outcome_of(RunReason.FAILED, message, status.code, details=tail)
        # The log is complete now that the command exited: it is pushed while the outputs are.
        self._early_log = asyncio.ensure_future(self._push_log())
        try:
            pushed = await push_outputs(self._blobs, self.spec.outputs, self.workspace)
        except (AortaError, OSError) as error:
            message = f"outputs of operator {name} could not be stored: {error}"
            return self._outcome_of(RunReason.FAILED, message, status.code)
        if pushed.skipped:
            await self.log.note(f"not stored (not regular files): {', '.join(pushed.skipped)}")
        plural = "" if pushed.files == 1 else "s"
        return self._outcome_of(
            RunReason.COMPLETED, f"{pushed.files} file{plural} ({pushed.size} bytes) stored", 0
        )

    async def _record(self, outcome: RunOutcome) -> RunOutcome:
        """Pushes the final log (a no-op when the push beside the outputs holds it all) and
        records the outcome; no failure among them changes the outcome."""
        run = self.spec
        if self._early_log is not None:
            await self._early_log  # before a second push of the same log, never beside it
        if self.log.created:
            if not outcome.succeeded:
                summary = outcome.message.split("\n", 1)[0]
                await _quietly(self.log.note(summary), run.run_id, "note")
            await self._push_log()
        self._times = replace(self._times, stored=time.time())
        outcome = replace(outcome, times=self._times)
        if outcome.reason is not RunReason.LOST:
            await _quietly(self._books.records.write(outcome), run.run_id, "outcome record")
        return outcome

    async def _push_log(self, what: str = "log push") -> None:
        # A run that wrote nothing leaves no stored log (ReadLogs reads none as no lines).
        push = self.log.push(self._blobs, self.spec.log_key, absent_when_empty=True)
        await _quietly(push, self.spec.run_id, what)

    async def _clear(self, outcome: RunOutcome) -> None:
        """Removes the workspace and the plan once the outcome is recorded and delivered."""
        run = self.spec
        workspace = None if self._config.keep_workspaces else self.workspace
        declared = [binding.path for binding in (*run.inputs, *run.outputs)]
        for step, error in await asyncio.to_thread(clear_run, workspace, self._plan, declared):
            _log.warning(
                "operator run bookkeeping failed", run_id=run.run_id, step=step, error=error
            )
        _log.info(
            "operator run ended",
            run_id=run.run_id,
            operator=run.operator,
            reason=outcome.reason.value,
            exit_code=outcome.exit_code,
        )

    async def _pump(self, output: asyncio.StreamReader) -> None:
        failed = False
        while chunk := await output.read(_READ_SIZE):
            try:
                await self.log.append(chunk)
            except OSError as error:
                # Keep reading: a process blocked on a full pipe would never end.
                if not failed:
                    _log.warning("operator log not written", run_id=self.spec.run_id, error=error)
                failed = True

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._config.log_flush_interval)
            await self._push_log("push")

    def _outcome_of(
        self, reason: RunReason, message: str, exit_code: int | None = None, details: str = ""
    ) -> RunOutcome:
        text = f"{message}\nlast lines of its log:\n{details}" if details else message
        return RunOutcome(self.spec.run_id, reason, exit_code, text)


def _stopped_message(reason: RunReason, operator: str, *, started: bool) -> str:
    if reason is RunReason.LOST:
        when = "while operator {} ran" if started else "before operator {} started"
        return f"the local executor closed {when.format(operator)}: run it again as a new attempt"
    return f"operator {operator} was cancelled" + ("" if started else " before it started")


async def _quietly(work: Awaitable[None], run_id: str, what: str) -> None:
    """Runs best-effort bookkeeping; a failure is logged, never raised."""
    try:
        await work
    except (AortaError, OSError) as error:
        _log.warning("operator run bookkeeping failed", run_id=run_id, step=what, error=str(error))
