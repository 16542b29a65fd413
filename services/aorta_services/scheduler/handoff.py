"""An operator's end and the start of the operators it made ready, in one write of the job.

On a chain of operators, each end used to be a write of the job and the publish of its event,
then a pass of the engine that saw the next operator ready, then that operator's own RUNNING
write: two writes (each an fsynced commit) and a round trip to the bus between one operator's
exit and the next one's start. When an operator completes, its runner now asks `Handoff.claim`
for the operators its end makes ready and that fit the node once its own resources are given
back; their RUNNING states and attempts are staged in the same write as the end
(`transitions.finish_operator`, then `transitions.start_operator` for each), and their runs
are launched once it is stored (`OperatorRunner`, `written=`).

Nothing of docs/jobs.md's order changes: the end is stored before anything starts (in the same
atomic write, ahead of the starts), the starts are stored before the executor is asked for
anything, and the events are staged in that write in that order (`stopped`, then each
`started`), published in that order after it. A claim is made only where the engine's pass
would have started the same operators with the same resources:

- the job is running and not stopping, and has no orphan waiting to be run again;
- no other job the leader runs has an operator waiting for room (the pass serves jobs oldest
  first, so an end never hands its room to its own job's operators ahead of another's);
- each operator claimed fits the node, given the ended operator's resources back.

An operator that the write could not start (another writer changed the job meanwhile: a cancel,
say) is given back (`give_back`) and left to the engine's pass, which sees the job as stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aorta.ids import JobId
from aorta_services.scheduler.active import ActiveJob, RunHandle, owner
from aorta_services.scheduler.domain import Allocation, JobPhase, ResourceLedger
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.runs import run_id


@dataclass(frozen=True)
class Claim:
    """An operator to start in the write of its upstream's end, with what it was given."""

    handle: RunHandle
    allocation: Allocation


class Handoff:
    """Claims the operators an end makes ready (module docstring), in the engine's ledger and
    run handles; `launch(job, claim, record)` starts the run of a claim its write stored, and
    `poke()` asks the engine for a pass once a claim is given back."""

    def __init__(
        self,
        ledger: ResourceLedger,
        active: Mapping[JobId, ActiveJob],
        launch: Callable[[ActiveJob, Claim, JobRecord], None],
        poke: Callable[[], None],
    ) -> None:
        self._ledger = ledger
        self._active = active
        self._launch = launch
        self._poke = poke

    def claim(self, job: ActiveJob, ended: str, after: JobRecord) -> list[Claim]:
        """The operators of `job` that `after` (the job with `ended` completed) makes ready,
        allocated and given run handles; none where the pass must choose (module docstring).
        Gives back `ended`'s resources when it claims any."""
        if job.stop.is_set() or job.orphans or after.phase is not JobPhase.RUNNING:
            return []
        ready = [name for name in after.job_progress().ready() if name not in job.handles]
        if not ready or any(other.launchable() for other in self._others(job)):
            return []
        self._ledger.release(owner(job.id, ended))
        claims = []
        for name in ready:
            operator = after.operator(name)
            if not self._ledger.fits(operator.request):
                continue
            allocation = self._ledger.allocate(owner(job.id, name), operator.request)
            attempt = operator.attempt + 1
            handle = RunHandle(name, attempt, run_id(job.id, name, attempt))
            job.handles[name] = handle
            claims.append(Claim(handle, allocation))
        return claims

    def settle(self, job: ActiveJob, claims: list[Claim], record: JobRecord | None) -> None:
        """Launches each claim that `record` (the stored write, None when none was stored)
        started, and gives the others back."""
        for claim in claims:
            if record is not None and _started(record, claim.handle):
                self._launch(job, claim, record)
            else:
                self.give_back(job, claim)

    def give_back(self, job: ActiveJob, claim: Claim) -> None:
        """Undoes a claim whose start was not stored; the pass decides again."""
        self._ledger.release(owner(job.id, claim.handle.operator))
        if job.handles.get(claim.handle.operator) is claim.handle:
            del job.handles[claim.handle.operator]
        self._poke()

    def _others(self, job: ActiveJob) -> list[ActiveJob]:
        return [other for other in self._active.values() if other is not job]


def _started(record: JobRecord, handle: RunHandle) -> bool:
    """Whether `record` holds the start of `handle`'s attempt."""
    operator = record.operator(handle.operator)
    return operator.run_id == handle.run_id and operator.attempt == handle.attempt
