"""What the scheduler stores about one job: the `jobs` document, read and written in one place.

A job document is small and changes often (every operator start and stop), so the pipeline
definition it was created with lives apart, in `job_definitions` (see `repository`). Times are
Unix seconds (floats) so the store compares them as numbers; the Clara wire's year-1 seconds
appear only when an answer is built. Metadata and variables are kept as `[key, value]` pairs,
because their keys are free text that not every store accepts as field names.

`JobRecord` is immutable: the transitions in `transitions` return a new record, and the
repository writes only the top-level fields that changed.

`outbox` holds the job's events (CloudEvent documents, see `events`) that are stored but not
yet published: an event is staged in the same write as the change it describes, and removed
once published, so no event is lost between the two. `outbox_pending`, derived like `state`,
is the indexed flag the leader's replay finds such jobs by.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aorta.errors import ErrorCode, Invalid, NotFound
from aorta.ids import JobId, PayloadId, PipelineId
from aorta_services.scheduler.domain import (
    Allocation,
    JobPhase,
    JobPriority,
    JobProgress,
    OperatorStatus,
    Request,
)
from aorta_services.scheduler.domain.timeline import AttemptTimes, JobTrace
from aorta_services.scheduler.domain.waiting import Waits


@dataclass(frozen=True)
class OperatorRecord:
    """One operator of one job: what it asks for and its latest attempt.

    `attempt` is 0 until the operator first starts and grows by one for every start, so
    `run_id` (derived from job, operator and attempt) names exactly one executor run.
    `allocation` is what the node gave the attempt that runs now (None when none runs);
    `timeout` the seconds each run may take (set when the job starts); `timeline` when each
    attempt passed each stage (`domain.timeline`).
    """

    name: str
    request: Request
    timeout: int = 0
    attempt: int = 0
    run_id: str = ""
    allocation: Allocation | None = None
    started: float | None = None
    stopped: float | None = None
    exit_code: int | None = None
    timeline: tuple[AttemptTimes, ...] = ()

    def to_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "request": {
                "cpu": self.request.cpu,
                "gpu": self.request.gpu,
                "memory_mb": self.request.memory_mb,
            },
            "timeout": self.timeout,
            "attempt": self.attempt,
            "run_id": self.run_id,
            "allocation": None if self.allocation is None else self.allocation.to_document(),
            "started": self.started,
            "stopped": self.stopped,
            "exit_code": self.exit_code,
            "timeline": [times.to_document() for times in self.timeline],
        }

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> OperatorRecord:
        request = document["request"]
        allocation = document.get("allocation")
        return OperatorRecord(
            name=document["name"],
            request=Request(cpu=request["cpu"], gpu=request["gpu"], memory_mb=request["memory_mb"]),
            timeout=int(document["timeout"]),
            attempt=int(document["attempt"]),
            run_id=str(document["run_id"]),
            allocation=None if allocation is None else Allocation.from_document(allocation),
            started=document.get("started"),
            stopped=document.get("stopped"),
            exit_code=document.get("exit_code"),
            # Documents written before timelines were kept have none.
            timeline=tuple(AttemptTimes.from_document(t) for t in document.get("timeline", ())),
        )


@dataclass(frozen=True)
class TritonUris:
    """The Triton server the models service gave a job: `host:port` addresses."""

    grpc_uri: str
    http_uri: str


@dataclass(frozen=True)
class JobRecord:
    """One job as the `jobs` collection holds it (see the module docstring).

    - `visible` is False only while `Jobs.Create` is still making the job's payload: such a
      job is answered as unknown, and a leader removes one left behind by a crash.
    - `enqueued` is when `Jobs.Start` queued the job, `started` when it was admitted (RUNNING),
      `stopped` when it ended; `rotation` the queue's cursor right after its admission, so a new
      leader continues the weighted rotation exactly.
    - `released` is True once the job's payload lock and Triton server were given back (or
      there was nothing to give back): a stopped job with `released` False still needs it.
    - `progress` is `JobProgress.to_document()`; `operators` the per-operator records, in the
      same (topological) order.
    - `outbox` the events stored but not yet published, oldest first (see the module docstring).
    - `owner` the subject that created the job ("" when authentication was off, and for jobs
      stored before owners were recorded); its payload has the same owner.
    - `waiting` why the queued job, or each of its operators that is ready but cannot start,
      waits (`domain.waiting`; kept current by the leader, cleared when the wait ends).
    - `trace` the job's trace ids and its Triton wait (`domain.timeline.JobTrace`).
    - `payload_removed` when the retention sweep deleted the stopped job's payload, keeping
      the job (`domain.retention`); None while the payload is there.
    """

    id: JobId
    name: str
    pipeline_id: PipelineId
    pipeline_name: str
    payload_id: PayloadId
    priority: JobPriority
    phase: JobPhase
    created: float
    progress: Mapping[str, Any]
    operators: tuple[OperatorRecord, ...]
    visible: bool = True
    enqueued: float | None = None
    started: float | None = None
    stopped: float | None = None
    messages: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    triton: TritonUris | None = None
    timeout: int = 0
    rotation: int | None = None
    released: bool = False
    outbox: tuple[Mapping[str, Any], ...] = ()
    version: int = 0
    owner: str = ""
    waiting: Waits = field(default_factory=Waits)
    trace: JobTrace = field(default_factory=JobTrace)
    payload_removed: float | None = None

    def job_progress(self) -> JobProgress:
        """The DAG bookkeeping, restored from `progress`."""
        return JobProgress.from_document(self.progress)

    def operator(self, name: str) -> OperatorRecord:
        """The record of operator `name`; `NotFound` (JOB_OPERATOR_NOT_FOUND) when it has none."""
        for record in self.operators:
            if record.name == name:
                return record
        for record in self.operators:
            if record.name.lower() == name.lower():
                return record
        raise NotFound(
            f"job {self.id} has no operator {name!r} (its operators: "
            f"{', '.join(r.name for r in self.operators)})",
            code=ErrorCode.JOB_OPERATOR_NOT_FOUND,
        )

    def statuses(self) -> dict[str, OperatorStatus]:
        """Every operator's status, in topological order."""
        return self.job_progress().statuses()

    def with_operator(self, updated: OperatorRecord) -> JobRecord:
        """This record with `updated` in place of the operator of the same name."""
        operators = tuple(updated if op.name == updated.name else op for op in self.operators)
        return replace(self, operators=operators)

    def with_event(self, event: Mapping[str, Any]) -> JobRecord:
        """This record with `event` (a CloudEvent document) staged last in its outbox."""
        return replace(self, outbox=(*self.outbox, event))

    def without_events(self, event_ids: Collection[str]) -> JobRecord:
        """This record without the staged events whose ids are in `event_ids`."""
        return replace(self, outbox=tuple(e for e in self.outbox if e["id"] not in event_ids))

    def to_document(self) -> dict[str, Any]:
        """The stored form (without the store's own `version` and times)."""
        document: dict[str, Any] = {}
        for encode in _ENCODERS.values():
            document.update(encode(self))
        return document

    def changes_from(self, before: JobRecord) -> dict[str, Any]:
        """The stored fields that turn `before`'s document into this record's: those of every
        field whose value differs, encoded as `to_document` does, and nothing else.

        A field holding the very object `before` holds is unchanged without comparing it
        (transitions keep what they do not change), so a job write encodes only what moved.
        When a few of the operators changed, as an operator's start and end change one, only
        those are set, each by its element path (`operators.3`, see `aorta.store.updates`).
        """
        changes: dict[str, Any] = {}
        for name, encode in _ENCODERS.items():
            value = getattr(self, name)
            old = getattr(before, name)
            if value is old or value == old:
                continue
            if name == "operators":
                changes.update(_operator_changes(before.operators, self.operators))
            else:
                changes.update(encode(self))
        return changes

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> JobRecord:
        """The record a stored document holds; `Invalid` (JOB_STORE_ERROR) when it is malformed."""
        try:
            triton = document.get("triton")
            return JobRecord(
                id=JobId(document["id"]),
                name=document["name"],
                pipeline_id=PipelineId(document["pipeline_id"]),
                pipeline_name=document["pipeline_name"],
                payload_id=PayloadId(document["payload_id"]),
                priority=JobPriority(document["priority"]),
                phase=JobPhase(document["phase"]),
                created=float(document["created"]),
                progress=document["progress"],
                operators=tuple(OperatorRecord.from_document(op) for op in document["operators"]),
                visible=bool(document["visible"]),
                enqueued=document.get("enqueued"),
                started=document.get("started"),
                stopped=document.get("stopped"),
                messages=tuple(document["messages"]),
                metadata={key: value for key, value in document["metadata"]},
                variables={key: value for key, value in document["variables"]},
                models=tuple(document["models"]),
                triton=None
                if triton is None
                else TritonUris(triton["grpc_uri"], triton["http_uri"]),
                timeout=int(document["timeout"]),
                rotation=document.get("rotation"),
                released=bool(document["released"]),
                # Documents written before the outbox existed have none.
                outbox=tuple(document.get("outbox", ())),
                version=int(document.get("version", 0)),
                # Documents written before owners were recorded have none: an admin's.
                owner=str(document.get("owner", "")),
                # Documents written before wait reasons were kept have none.
                waiting=Waits.from_document(document.get("waiting")),
                # Documents written before traces were kept have none.
                trace=JobTrace.from_document(document.get("trace")),
                # Documents written before retention have none: their payload is there.
                payload_removed=document.get("payload_removed"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise Invalid(
                f"stored job {document.get('id')!r} is malformed: {error!r}",
                code=ErrorCode.JOB_STORE_ERROR,
            ) from error


def _operator_changes(
    before: tuple[OperatorRecord, ...], after: tuple[OperatorRecord, ...]
) -> dict[str, Any]:
    """The operators that differ by their element paths, or the whole list when its length
    changed or more than half of it did (then the list costs no more than its elements)."""
    if len(before) != len(after):
        return {"operators": [op.to_document() for op in after]}
    pairs = enumerate(zip(before, after, strict=True))
    changed = [i for i, (old, new) in pairs if old is not new and old != new]
    if 2 * len(changed) > len(after):
        return {"operators": [op.to_document() for op in after]}
    return {f"operators.{i}": after[i].to_document() for i in changed}


def _triton(record: JobRecord) -> dict[str, Any]:
    triton = record.triton
    if triton is None:
        return {"triton": None}
    return {"triton": {"grpc_uri": triton.grpc_uri, "http_uri": triton.http_uri}}


_ENCODERS: dict[str, Callable[[JobRecord], dict[str, Any]]] = {
    "id": lambda r: {"id": r.id},
    "name": lambda r: {"name": r.name},
    "pipeline_id": lambda r: {"pipeline_id": r.pipeline_id},
    "pipeline_name": lambda r: {"pipeline_name": r.pipeline_name},
    "payload_id": lambda r: {"payload_id": r.payload_id},
    "priority": lambda r: {"priority": int(r.priority)},
    # State and status are derived from the phase, kept for Jobs.List's filters.
    "phase": lambda r: {
        "phase": r.phase.value,
        "state": int(r.phase.state),
        "status": int(r.phase.status),
    },
    "visible": lambda r: {"visible": r.visible},
    "created": lambda r: {"created": r.created},
    "enqueued": lambda r: {"enqueued": r.enqueued},
    "started": lambda r: {"started": r.started},
    "stopped": lambda r: {"stopped": r.stopped},
    "messages": lambda r: {"messages": list(r.messages)},
    "metadata": lambda r: {"metadata": [[key, value] for key, value in r.metadata.items()]},
    "variables": lambda r: {"variables": [[key, value] for key, value in r.variables.items()]},
    "progress": lambda r: {"progress": dict(r.progress)},
    "operators": lambda r: {"operators": [op.to_document() for op in r.operators]},
    "models": lambda r: {"models": list(r.models)},
    "triton": _triton,
    "timeout": lambda r: {"timeout": r.timeout},
    "rotation": lambda r: {"rotation": r.rotation},
    "released": lambda r: {"released": r.released},
    # `outbox_pending` is derived, for the replay's indexed query (a filter cannot test a
    # list's length).
    "outbox": lambda r: {
        "outbox": [dict(event) for event in r.outbox],
        "outbox_pending": bool(r.outbox),
    },
    "owner": lambda r: {"owner": r.owner},
    "waiting": lambda r: {"waiting": r.waiting.to_document()},
    "trace": lambda r: {"trace": r.trace.to_document()},
    "payload_removed": lambda r: {"payload_removed": r.payload_removed},
}
"""Per field of `JobRecord` (all but the store's `version`), the stored fields it becomes."""
