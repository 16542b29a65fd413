"""Which operators of one job may start, which run, and how the job ends.

Clara's sequencing (docs/clara-compatibility.md, "Operator sequencing"): an operator starts
only after every upstream operator completed. Aorta adds: the first operator fault (a non-zero
exit, a memory kill, a timeout) faults the job and starts nothing more; operators still running
are left to finish or be stopped by the caller, and the job's outcome is known once none runs.
Cancellation likewise starts nothing more; an operator that a stopping job stopped is FAULTED
on Clara's wire, and recorded as `stopped_by_job` so that Aorta's clients can tell it from one
that failed by itself. The bookkeeping is pure and round-trips through a
plain document, so the scheduler persists it with the job and resumes after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

from aorta.errors import Conflict, ErrorCode, Invalid, NotFound
from aorta_services.scheduler.domain.states import JobStatus, OperatorStatus

_STORED = {status.name: status for status in OperatorStatus if status is not OperatorStatus.UNKNOWN}


class JobProgress:
    """The DAG of one job and each operator's `OperatorStatus`.

    Every `mark_*` method checks its precondition and raises `Conflict` (JOB_STATE_CONFLICT)
    when it does not hold, and `NotFound` (JOB_OPERATOR_NOT_FOUND) for an unknown operator, so
    a duplicated or out-of-order report never corrupts the record.
    """

    def __init__(self, operators: Sequence[str], upstream: Mapping[str, Set[str]]) -> None:
        """Builds the progress of a job that has not started: every operator PENDING.

        `operators` are in topological order; `upstream[op]` names the operators `op` waits for
        (missing: none). Raises `Invalid` for duplicate names, an unknown name, or an upstream
        operator that does not come earlier in `operators` (which also rules out cycles).
        """
        names = tuple(operators)
        if len(set(names)) != len(names):
            raise Invalid(f"operator names {list(names)!r} are not unique")
        unknown = sorted(set(upstream) - set(names))
        if unknown:
            raise Invalid(f"upstream is given for unknown operators {unknown!r}")
        position = {name: index for index, name in enumerate(names)}
        self._upstream: dict[str, frozenset[str]] = {}
        for name in names:
            before = frozenset(upstream.get(name, frozenset()))
            late = sorted(dep for dep in before if position.get(dep, len(names)) >= position[name])
            if late:
                raise Invalid(
                    f"operator {name!r} waits for {late!r}, which are unknown or do not come "
                    "before it in topological order"
                )
            self._upstream[name] = before
        self._status = dict.fromkeys(names, OperatorStatus.PENDING)
        self._faults: dict[str, str] = {}
        self._stopped_by_job: set[str] = set()
        self._canceled = False

    @property
    def operators(self) -> tuple[str, ...]:
        """Every operator, in topological order."""
        return tuple(self._status)

    @property
    def canceled(self) -> bool:
        return self._canceled

    def upstream(self, operator: str) -> frozenset[str]:
        """The operators `operator` waits for."""
        self._require(operator)
        return self._upstream[operator]

    def status(self, operator: str) -> OperatorStatus:
        self._require(operator)
        return self._status[operator]

    def statuses(self) -> dict[str, OperatorStatus]:
        """Every operator's status, in topological order (Clara's `operator_details`)."""
        return dict(self._status)

    def faults(self) -> dict[str, str]:
        """Why each faulted operator faulted, by operator."""
        return dict(self._faults)

    def stopped_by_job(self) -> list[str]:
        """The FAULTED operators that failed only because the job was stopping (a cancel, a
        termination), in topological order."""
        return [op for op in self._status if op in self._stopped_by_job]

    def running(self) -> list[str]:
        """The RUNNING operators, in topological order: the ones to stop on cancel."""
        return [op for op, status in self._status.items() if status is OperatorStatus.RUNNING]

    def ready(self) -> list[str]:
        """PENDING operators whose upstream all COMPLETED, in topological order.

        Empty once the job has faulted or been canceled.
        """
        if self._faults or self._canceled:
            return []
        return [op for op in self._status if self._blocker(op) is None]

    def mark_running(self, operator: str) -> None:
        """Records that a ready operator started; `Conflict` if it is not in `ready()`."""
        self._require(operator)
        blocker = self._blocker(operator)
        if blocker is None and self._canceled:
            blocker = "the job was canceled"
        if blocker is None and self._faults:
            blocker = f"the job has faulted (operator {next(iter(self._faults))!r} failed)"
        if blocker is not None:
            raise self._conflict(operator, "start", blocker)
        self._status[operator] = OperatorStatus.RUNNING

    def mark_completed(self, operator: str) -> None:
        """Records that a RUNNING operator exited successfully."""
        self._finish(operator, OperatorStatus.COMPLETED, "complete")

    def mark_faulted(self, operator: str, reason: str, *, by_job: bool = False) -> None:
        """Records that a RUNNING operator failed, for `reason`; the job starts nothing more.
        `by_job`: it was stopped because the job is stopping (`stopped_by_job`)."""
        self._finish(operator, OperatorStatus.FAULTED, "fault")
        self._faults[operator] = reason
        if by_job:
            self._stopped_by_job.add(operator)

    def cancel(self) -> None:
        """Marks the job canceled: nothing new starts; the caller stops `running()` ones.

        `Conflict` if it was already canceled or has already finished.
        """
        if self._canceled:
            raise Conflict("the job was already canceled", code=ErrorCode.JOB_STATE_CONFLICT)
        if self.is_finished():
            raise Conflict(
                "the job has already finished and cannot be canceled",
                code=ErrorCode.JOB_STATE_CONFLICT,
            )
        self._canceled = True

    def outcome(self) -> JobStatus | None:
        """How the job ended, or None while an operator runs or work remains.

        With nothing running: CANCELED if canceled, else FAULTED if any operator faulted, else
        HEALTHY once every operator completed.
        """
        if OperatorStatus.RUNNING in self._status.values():
            return None
        if self._canceled:
            return JobStatus.CANCELED
        if self._faults:
            return JobStatus.FAULTED
        if all(status is OperatorStatus.COMPLETED for status in self._status.values()):
            return JobStatus.HEALTHY
        return None

    def is_finished(self) -> bool:
        """True once `outcome()` is known."""
        return self.outcome() is not None

    def to_document(self) -> dict[str, Any]:
        """A JSON-able form that `from_document` restores exactly."""
        operators: list[dict[str, Any]] = []
        for name, status in self._status.items():
            item: dict[str, Any] = {
                "name": name,
                "upstream": sorted(self._upstream[name]),
                "status": status.name,
            }
            if name in self._faults:
                item["reason"] = self._faults[name]
            if name in self._stopped_by_job:
                item["stopped_by_job"] = True
            operators.append(item)
        return {"operators": operators, "canceled": self._canceled}

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> JobProgress:
        """Restores `to_document`'s form.

        Raises `Invalid` (JOB_STORE_ERROR) if it is malformed or inconsistent: an unknown
        status, a faulted operator without a reason, or an operator past PENDING whose upstream
        did not all complete.
        """
        try:
            items = list(document["operators"])
            for item in items:
                if not isinstance(item["name"], str) or not isinstance(item["upstream"], list):
                    raise Invalid(f"operator entry {item!r} needs a name and an upstream list")
            progress = JobProgress(
                [item["name"] for item in items],
                {item["name"]: frozenset(item["upstream"]) for item in items},
            )
            for item in items:
                name, status = item["name"], _STORED[item["status"]]
                if status is not OperatorStatus.PENDING and progress._waiting_for(name):
                    raise Invalid(f"operator {name!r} is {status.name} before its upstream")
                progress._status[name] = status
                if status is OperatorStatus.FAULTED:
                    reason = item["reason"]
                    if not isinstance(reason, str):
                        raise Invalid(f"operator {name!r} has fault reason {reason!r}")
                    progress._faults[name] = reason
                    if item.get("stopped_by_job") is True:
                        progress._stopped_by_job.add(name)
            canceled = document["canceled"]
            if type(canceled) is not bool:
                raise Invalid(f"canceled={canceled!r} is not a boolean")
            progress._canceled = canceled
        except (KeyError, TypeError, Invalid) as error:
            detail = f"missing or unknown {error}" if isinstance(error, KeyError) else str(error)
            raise Invalid(
                f"stored job progress is malformed: {detail}", code=ErrorCode.JOB_STORE_ERROR
            ) from error
        return progress

    def _blocker(self, operator: str) -> str | None:
        """Why `operator` could not start, fault and cancel aside; None if it could."""
        current = self._status[operator]
        if current is not OperatorStatus.PENDING:
            return f"it is {current.name}"
        waiting = self._waiting_for(operator)
        if waiting:
            return f"upstream {', '.join(repr(dep) for dep in waiting)} not completed"
        return None

    def _waiting_for(self, operator: str) -> list[str]:
        """The upstream operators of `operator` that have not completed, sorted."""
        return sorted(
            dep
            for dep in self._upstream[operator]
            if self._status[dep] is not OperatorStatus.COMPLETED
        )

    def _finish(self, operator: str, status: OperatorStatus, verb: str) -> None:
        self._require(operator)
        current = self._status[operator]
        if current is not OperatorStatus.RUNNING:
            raise self._conflict(operator, verb, f"it is {current.name}, not RUNNING")
        self._status[operator] = status

    def _require(self, operator: str) -> None:
        if operator not in self._status:
            raise NotFound(
                f"the job has no operator {operator!r}", code=ErrorCode.JOB_OPERATOR_NOT_FOUND
            )

    @staticmethod
    def _conflict(operator: str, verb: str, why: str) -> Conflict:
        return Conflict(
            f"operator {operator!r} cannot {verb}: {why}", code=ErrorCode.JOB_STATE_CONFLICT
        )
