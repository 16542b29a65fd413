"""Where Jobs.ReadLogs finds an operator's lines: the live run, or the blob store after it.

While an operator runs, only the leader's executor has its lines: a leader answers from its
executor; a follower asks the leader over `SCHEDULER_LEADER_LOGS` (`aorta.contracts`, served
only by the replica that leads now, in the `LEADER_QUEUE` group). Once the run has ended, the
executor has stored the log under `aorta.payload_layout.operator_log_key(job, operator)`, and
any replica reads it from there.
An operator that never ran has no lines. Between leaders (no one serves the verb), the stored
log of the last finished attempt is read.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing

from aorta import contracts, payload_layout
from aorta.blobs import BlobStore
from aorta.bus import Bus
from aorta.bus.unanswered import no_responders
from aorta.bus.verbs import call_stream
from aorta.errors import NotFound, Unavailable
from aorta.executors import Executor
from aorta_services.scheduler.domain import OperatorStatus
from aorta_services.scheduler.domain.job_record import JobRecord, OperatorRecord
from aorta_services.scheduler.engine import Engine

LEADER_QUEUE = "scheduler-leader"
LINES_PER_MESSAGE = 500


class OperatorLogs:
    """An operator's log lines, wherever they are now (module docstring)."""

    def __init__(
        self,
        blobs: BlobStore,
        bus: Bus,
        executor: Executor,
        leader: Callable[[], Engine | None],
        timeout: float,
    ) -> None:
        self._blobs = blobs
        self._bus = bus
        self._executor = executor
        self._leader = leader
        self._timeout = timeout

    async def lines(self, record: JobRecord, operator: OperatorRecord) -> AsyncIterator[str]:
        """Every line the operator's latest run wrote so far, without line endings."""
        running = record.statuses()[operator.name] is OperatorStatus.RUNNING
        if running and operator.run_id:
            try:
                async for line in self._live(record, operator):
                    yield line
                return
            except NotFound:
                pass  # the run has no live log (not started yet, or ended): read the stored one
        async for line in self._stored(record.id, operator.name):
            yield line

    async def _live(self, record: JobRecord, operator: OperatorRecord) -> AsyncIterator[str]:
        """The running operator's lines from the leader; `NotFound` (before any line) when no
        leader has them."""
        engine = self._leader()
        if engine is not None:
            if engine.run_id_of(record.id, operator.name) != operator.run_id:
                raise NotFound(f"this leader does not run {operator.run_id}")
            async for line in self._executor.log_lines(operator.run_id):
                yield line
            return
        verb = contracts.SCHEDULER_LEADER_LOGS
        request = contracts.LeaderLogs(operator.run_id)
        stream = call_stream(self._bus, verb, request, timeout=self._timeout)
        try:
            async with aclosing(stream):
                async for item in stream:
                    for line in item.lines:
                        yield line
        except Unavailable as error:
            if no_responders(error, verb.subject):
                raise NotFound("no scheduler leads now") from error
            raise

    async def serve_leader(
        self, request: contracts.LeaderLogs
    ) -> AsyncGenerator[contracts.LogLines, None]:
        """The `SCHEDULER_LEADER_LOGS` handler: a live run's lines from this (leading)
        replica, `LINES_PER_MESSAGE` at most per item."""
        chunk: list[str] = []
        async for line in self._executor.log_lines(request.run_id):
            chunk.append(line)
            if len(chunk) >= LINES_PER_MESSAGE:
                yield contracts.LogLines(tuple(chunk))
                chunk = []
        if chunk:
            yield contracts.LogLines(tuple(chunk))

    async def _stored(self, job_id: str, operator: str) -> AsyncIterator[str]:
        key = payload_layout.operator_log_key(job_id, operator)
        pending = b""
        try:
            async for data in self._blobs.get(key):
                pending += data
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", "replace")
        except NotFound:
            return
        if pending:
            yield pending.decode("utf-8", "replace")
