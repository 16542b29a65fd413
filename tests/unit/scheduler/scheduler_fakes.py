"""Stand-ins for what the scheduler talks to: an executor and the pipelines/payloads verbs.

`FakeExecutor` runs nothing: each run ends after the time its operator's `Behaviour` says,
with the exit code it says (or runs past its timeout), and the executor records every start,
how many runs were alive at once, which runs were cancelled and every cancel asked for. Its
`recorded` outcomes stand for the records a real executor keeps of ended runs: listed as
`ended` and answered by `wait`. `FakePeers` answers the
pipelines and payloads verbs on a bus from a dict of definitions, recording locks, releases and
discards.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from aorta import subjects
from aorta.auth.caller import caller_of
from aorta.auth.principal import Principal
from aorta.bus import Bus, Request, Subscription
from aorta.errors import AortaError, ErrorCode, NotFound
from aorta.executors import KnownRuns, OperatorRun, RunOutcome, RunReason


@dataclass(frozen=True)
class Behaviour:
    """How a fake run of one operator goes: it takes `seconds`, then exits with `exit_code`
    after printing `lines`; `hang` makes it run until cancelled or timed out."""

    seconds: float = 0.0
    exit_code: int = 0
    lines: tuple[str, ...] = ()
    hang: bool = False


@dataclass
class _Run:
    run: OperatorRun
    started: float
    done: asyncio.Future[RunOutcome]
    task: asyncio.Task[None] | None = None


@dataclass
class FakeExecutor:
    """An `Executor` whose runs follow `behaviours` (by operator name; default: instant 0)."""

    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    starts: list[OperatorRun] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    cancel_calls: list[str] = field(default_factory=list)
    """Every run id `cancel` was called with, ended or unknown ones included."""
    recorded: dict[str, RunOutcome] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_alive: int = 0
    _runs: dict[str, _Run] = field(default_factory=dict)
    _cancelling: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    async def start(self, run: OperatorRun) -> None:
        if run.run_id in self._runs or run.run_id in self.recorded:
            return
        self.starts.append(run)
        loop = asyncio.get_running_loop()
        entry = _Run(run, time.monotonic(), loop.create_future())
        self._runs[run.run_id] = entry
        entry.task = asyncio.create_task(self._play(entry), name=f"fake-run-{run.run_id}")
        self.max_alive = max(self.max_alive, len(self._alive()))

    async def _play(self, entry: _Run) -> None:
        behaviour = self.behaviours.get(entry.run.operator, Behaviour())
        run = entry.run
        if behaviour.hang or behaviour.seconds > run.timeout:
            await asyncio.sleep(run.timeout)
            self._end(entry, RunOutcome(run.run_id, RunReason.TIMEOUT, 137, "timed out"))
            return
        await asyncio.sleep(behaviour.seconds)
        if behaviour.exit_code == 0:
            self._end(entry, RunOutcome(run.run_id, RunReason.COMPLETED, 0))
        else:
            tail = " | ".join(behaviour.lines[-3:])
            message = f"exit code {behaviour.exit_code}; last lines: {tail}"
            self._end(entry, RunOutcome(run.run_id, RunReason.FAILED, behaviour.exit_code, message))

    def _end(self, entry: _Run, outcome: RunOutcome) -> None:
        if not entry.done.done():
            self.intervals[entry.run.run_id] = (entry.started, time.monotonic())
            entry.done.set_result(outcome)

    def _alive(self) -> list[str]:
        return [run_id for run_id, entry in self._runs.items() if not entry.done.done()]

    async def wait(self, run_id: str) -> RunOutcome:
        entry = self._runs.get(run_id)
        if entry is None:
            recorded = self.recorded.get(run_id)
            return recorded or RunOutcome(run_id, RunReason.LOST, None, "unknown run")
        return await asyncio.shield(entry.done)

    async def cancel(self, run_id: str, *, grace: float) -> None:
        self.cancel_calls.append(run_id)
        entry = self._runs.get(run_id)
        if entry is None or entry.done.done():
            return
        self.cancelled.append(run_id)
        self._cancelling.set()
        if entry.task is not None:
            entry.task.cancel()
        self._end(entry, RunOutcome(run_id, RunReason.CANCELLED, 143, "stopped"))

    async def until_cancelled(self, count: int, within: float = 60.0) -> list[str]:
        """The cancelled runs, once there are `count`: a job's stop is recorded before the
        leader stops its runs, so a test that saw the stop waits for the cancel itself."""
        async with asyncio.timeout(within):
            while len(self.cancelled) < count:
                self._cancelling.clear()
                await self._cancelling.wait()
        return self.cancelled

    def complete(self, run_id: str) -> None:
        """Ends a run (a hanging one too) now as completed with exit code 0."""
        entry = self._runs[run_id]
        if entry.task is not None:
            entry.task.cancel()
        self._end(entry, RunOutcome(run_id, RunReason.COMPLETED, 0))

    async def running(self) -> KnownRuns:
        alive = self._alive()
        ended = sorted(run_id for run_id in self.recorded if run_id not in alive)
        return KnownRuns(tuple(alive), tuple(ended))

    async def log_lines(self, run_id: str) -> AsyncIterator[str]:
        entry = self._runs.get(run_id)
        if entry is None:
            raise NotFound(f"no run {run_id}")
        for line in self.behaviours.get(entry.run.operator, Behaviour()).lines:
            yield line

    async def close(self) -> None:
        self.closed = True
        for entry in self._runs.values():
            if entry.task is not None:
                entry.task.cancel()
            self._end(entry, RunOutcome(entry.run.run_id, RunReason.LOST, None, "closed"))
        await asyncio.gather(
            *(e.task for e in self._runs.values() if e.task is not None), return_exceptions=True
        )

    def kill_all(self) -> None:
        """What a crash of the scheduler's process does to local runs: they vanish."""
        for entry in self._runs.values():
            if entry.task is not None:
                entry.task.cancel()
        self._runs.clear()

    def started_operators(self) -> list[str]:
        return [run.operator for run in self.starts]


@dataclass
class FakePeers:
    """The pipelines and payloads verbs a scheduler calls, answered from `pipelines`.

    `payloads` maps each payload made to its job; a discard removes it and records the job in
    `discarded`. A test may make discards fail with `discard_error`, or hold them (set
    `discarding` when one arrives, answer once `discard_hold` is set), and make payloads fail
    with `create_error` (raised before anything is made), and refuse locks with
    `lock_error` (nothing is locked then).
    """

    pipelines: dict[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)
    payloads: dict[str, str] = field(default_factory=dict)
    locked: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    """The jobs whose payload went with them (`PAYLOADS_DELETE_FOR_JOB`)."""
    owners: dict[str, str] = field(default_factory=dict)
    """payload -> the owner its creation was asked with."""
    callers: list[Principal] = field(default_factory=list)
    """The caller each payload creation carried."""
    discard_error: AortaError | None = None
    create_error: AortaError | None = None
    lock_error: AortaError | None = None
    discarding: asyncio.Event = field(default_factory=asyncio.Event)
    discard_hold: asyncio.Event | None = None
    served: list[Subscription] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def add_pipeline(self, pipeline_id: str, name: str, files: Mapping[str, str]) -> None:
        self.pipelines[pipeline_id] = (name, files)

    async def serve(self, bus: Bus, *, payloads: bool = True) -> None:
        """Serves the pipelines verb, and the payloads verbs unless a test runs the real
        payloads service (`payloads` False)."""
        self.served.append(
            await bus.serve(subjects.PIPELINES_SNAPSHOT, self._snapshot, queue="pipelines")
        )
        if not payloads:
            return
        self.served += [
            await bus.serve(subjects.PAYLOADS_CREATE_FOR_JOB, self._create, queue="payloads"),
            await bus.serve(subjects.PAYLOADS_LOCK, self._lock, queue="payloads"),
            await bus.serve(subjects.PAYLOADS_RELEASE, self._release, queue="payloads"),
            await bus.serve(subjects.PAYLOADS_DISCARD_FOR_JOB, self._discard, queue="payloads"),
            await bus.serve(subjects.PAYLOADS_DELETE_FOR_JOB, self._delete, queue="payloads"),
        ]

    async def stop(self) -> None:
        for subscription in self.served:
            await subscription.drain()

    async def _snapshot(self, request: Request) -> bytes:
        pipeline_id = json.loads(request.data)["pipeline_id"]
        if pipeline_id not in self.pipelines:
            raise NotFound(f"no pipeline has id {pipeline_id}", code=ErrorCode.PIPELINE_NOT_FOUND)
        name, files = self.pipelines[pipeline_id]
        root = next(iter(files))
        document = {
            "pipeline_id": pipeline_id,
            "name": name,
            "root": root,
            "files": [{"path": path, "content": text} for path, text in files.items()],
        }
        return json.dumps(document).encode()

    async def _create(self, request: Request) -> bytes:
        if self.create_error is not None:
            raise self.create_error
        document = json.loads(request.data)
        payload_id = f"{next(self._ids):032x}"
        self.payloads[payload_id] = document["job_id"]
        self.owners[payload_id] = document.get("owner", "")
        self.callers.append(caller_of(request.headers))
        return json.dumps({"payload_id": payload_id}).encode()

    async def _lock(self, request: Request) -> bytes:
        if self.lock_error is not None:
            raise self.lock_error
        self.locked.append(json.loads(request.data)["payload_id"])
        return b"{}"

    async def _release(self, request: Request) -> bytes:
        self.released.append(json.loads(request.data)["payload_id"])
        return b"{}"

    async def _discard(self, request: Request) -> bytes:
        job_id = json.loads(request.data)["job_id"]
        self.discarding.set()
        if self.discard_hold is not None:
            await self.discard_hold.wait()
        if self.discard_error is not None:
            raise self.discard_error
        self.discarded.append(job_id)
        made = [payload for payload, owner in self.payloads.items() if owner == job_id]
        for payload in made:
            del self.payloads[payload]
        return json.dumps({"payload_id": made[0] if made else None}).encode()

    async def _delete(self, request: Request) -> bytes:
        job_id = json.loads(request.data)["job_id"]
        self.deleted.append(job_id)
        made = [payload for payload, owner in self.payloads.items() if owner == job_id]
        for payload in made:
            del self.payloads[payload]
        return json.dumps({"payload_id": made[0] if made else None}).encode()
