"""Why a job or an operator waits: one current reason, in words and in a typed form (pure).

Every queued job and every operator that is ready but cannot start yet has at most one reason,
of one of five kinds (`WaitKind`):

- `queued`: it would fit, but jobs go first (IMMEDIATE jobs, which keep every other class
  waiting); the reason names its place in the admission order and the jobs ahead of it.
- `resources`: its request does not fit the node now; the reason names the resource, what is
  asked and what the node has, and for GPUs which jobs (and operators) hold them since when.
- `service`: it waits for a pipeline service to be ready.
- `triton`: it waits for a Triton server holding its models.
- `held`: the queue holds for an older job that waited longer than the hold limit (the
  starvation guard of `queue`), so the node drains for that job; the reason names it and how
  long it has waited.

A reason holds facts, never a duration: the words are made when it is shown (`WaitReason.text`,
given the time), so a reason is stored again only when its facts change, not as time passes.
A job id a `user` may not see (another user's job, `wait_privacy`) is "" in the reason it is
shown, and reads as `OTHER_USERS_JOB`.
`queue_reasons` and `operator_reason` work the reasons out from the queue and the resource
ledger; `Waits` is what a job record keeps of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aorta.auth.ownership import OTHER_USERS_JOB
from aorta.errors import ErrorCode, Invalid
from aorta.ids import JobId
from aorta_services.scheduler.domain.queue import JobQueue
from aorta_services.scheduler.domain.resources import Request, ResourceLedger, Shortfall

AHEAD_NAMED = 3
"""How many of the jobs ahead a `queued` reason names (it counts them all)."""


class WaitKind(StrEnum):
    """What a job or an operator waits for (module docstring)."""

    QUEUED = "queued"
    RESOURCES = "resources"
    SERVICE = "service"
    TRITON = "triton"
    HELD = "held"


@dataclass(frozen=True)
class Holder:
    """Who holds a resource: a job's operator since it started (`since` in Unix seconds, None
    when not known yet), or with `operator` "" a job being admitted, which holds its largest
    operator's request until its operators take over."""

    job_id: str
    operator: str = ""
    since: float | None = None

    def words(self, now: float) -> str:
        if not self.job_id:
            return OTHER_USERS_JOB
        if not self.operator:
            return f"job {self.job_id} (being admitted)"
        since = f" since {clock_time(self.since, now)}" if self.since is not None else ""
        return f"job {self.job_id} (operator {self.operator}){since}"

    def to_document(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "operator": self.operator, "since": self.since}

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> Holder:
        return Holder(str(document["job_id"]), str(document["operator"]), document["since"])


@dataclass(frozen=True)
class WaitReason:
    """One reason (module docstring). Which facts are set depends on `kind`:

    - queued: `position` (1 for the next job), `ahead` (the first `AHEAD_NAMED` jobs ahead)
      and `ahead_count` (all of them);
    - resources: `resource` (`gpu`, `memory_mb` or `cpu`), `needed`, `capacity` (the node's
      whole amount; for CPU the limit with over-commit) and, for GPUs, `holders`;
    - service: `service`, and `detail` in the service's own words;
    - triton: `models`;
    - held: `target` (the job the node drains for) and `target_since` (when it was queued).
    """

    kind: WaitKind
    position: int = 0
    ahead: tuple[str, ...] = ()
    ahead_count: int = 0
    resource: str = ""
    needed: float = 0
    capacity: float = 0
    holders: tuple[Holder, ...] = ()
    service: str = ""
    detail: str = ""
    models: tuple[str, ...] = ()
    target: str = ""
    target_since: float | None = None

    def text(self, now: float) -> str:
        """The reason in words at `now` (Unix seconds)."""
        if self.kind is WaitKind.QUEUED:
            return _queued_words(self)
        if self.kind is WaitKind.RESOURCES:
            return _resource_words(self, now)
        if self.kind is WaitKind.SERVICE:
            detail = f": {self.detail}" if self.detail else ""
            return f"waits for the service {self.service}{detail}"
        if self.kind is WaitKind.TRITON:
            return f"waits for a Triton server with the models {', '.join(self.models)}"
        target = f"job {self.target}" if self.target else OTHER_USERS_JOB
        return f"held: the node is draining for {target} (waited {self.waited(now)})"

    def waited(self, now: float) -> str:
        """How long the held-for job has waited, in words (a held reason's only duration)."""
        since = self.target_since if self.target_since is not None else now
        return duration_words(now - since)

    def to_document(self) -> dict[str, Any]:
        """The stored form; only the facts of its kind (see the class docstring)."""
        document: dict[str, Any] = {"kind": self.kind.value}
        if self.kind is WaitKind.QUEUED:
            document |= {
                "position": self.position,
                "ahead": list(self.ahead),
                "ahead_count": self.ahead_count,
            }
        elif self.kind is WaitKind.RESOURCES:
            document |= {
                "resource": self.resource,
                "needed": self.needed,
                "capacity": self.capacity,
                "holders": [holder.to_document() for holder in self.holders],
            }
        elif self.kind is WaitKind.SERVICE:
            document |= {"service": self.service, "detail": self.detail}
        elif self.kind is WaitKind.TRITON:
            document |= {"models": list(self.models)}
        else:
            document |= {"target": self.target, "target_since": self.target_since}
        return document

    def view(self, now: float) -> dict[str, Any]:
        """The form clients get: the stored facts, the words at `now` and, for a held reason,
        the seconds the held-for job has waited."""
        document = {**self.to_document(), "text": self.text(now)}
        if self.kind is WaitKind.HELD and self.target_since is not None:
            document["waited_seconds"] = round(now - self.target_since, 3)
        return document

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> WaitReason:
        """Reads `to_document`'s form (or `view`'s); `Invalid` (JOB_STORE_ERROR) when it is
        malformed."""
        try:
            return WaitReason(
                kind=WaitKind(document["kind"]),
                position=int(document.get("position", 0)),
                ahead=tuple(document.get("ahead", ())),
                ahead_count=int(document.get("ahead_count", 0)),
                resource=str(document.get("resource", "")),
                needed=document.get("needed", 0),
                capacity=document.get("capacity", 0),
                holders=tuple(Holder.from_document(h) for h in document.get("holders", ())),
                service=str(document.get("service", "")),
                detail=str(document.get("detail", "")),
                models=tuple(document.get("models", ())),
                target=str(document.get("target", "")),
                target_since=document.get("target_since"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise Invalid(
                f"stored wait reason {dict(document)!r} is malformed: {error!r}",
                code=ErrorCode.JOB_STORE_ERROR,
            ) from error


@dataclass(frozen=True)
class Waits:
    """What a job record keeps: the job's own reason while it is queued, and the reasons of
    its operators that are ready but wait, by name."""

    job: WaitReason | None = None
    operators: Mapping[str, WaitReason] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.job is not None or bool(self.operators)

    def with_job(self, reason: WaitReason | None) -> Waits:
        return replace(self, job=reason)

    def with_operator(self, name: str, reason: WaitReason | None) -> Waits:
        """These waits with `reason` for operator `name` (None: it no longer waits)."""
        operators = {key: value for key, value in self.operators.items() if key != name}
        if reason is not None:
            operators[name] = reason
        return replace(self, operators=operators)

    def to_document(self) -> dict[str, Any]:
        # Operator names are free text, which not every store takes as a field name: pairs.
        return {
            "job": None if self.job is None else self.job.to_document(),
            "operators": [[name, reason.to_document()] for name, reason in self.operators.items()],
        }

    @staticmethod
    def from_document(document: Mapping[str, Any] | None) -> Waits:
        """Reads `to_document`'s form; None (a document from before reasons) is no waits."""
        if not document:
            return Waits()
        job = document.get("job")
        return Waits(
            job=None if job is None else WaitReason.from_document(job),
            operators={
                name: WaitReason.from_document(reason)
                for name, reason in document.get("operators", ())
            },
        )


def waiting_for_service(service: str, detail: str = "") -> WaitReason:
    """An operator waits for the pipeline service `service`; `detail` says what it is doing
    in the service's words (e.g. "starting, 2 of 3 replicas ready")."""
    return WaitReason(WaitKind.SERVICE, service=service, detail=detail)


def waiting_for_triton(models: Iterable[str]) -> WaitReason:
    """A job waits for a Triton server holding `models`."""
    return WaitReason(WaitKind.TRITON, models=tuple(models))


def queue_reasons(
    queue: JobQueue,
    ledger: ResourceLedger,
    peaks: Mapping[JobId, Request],
    now: float,
    holder: Callable[[str], Holder],
    found: Mapping[JobId, WaitReason] | None = None,
) -> dict[JobId, WaitReason]:
    """The reason of every job still queued once the queue admitted what it could at `now`.

    `peaks` is each queued job's largest request (what its admission needs), `holder` turns
    a ledger owner into a `Holder`. Jobs behind a hold are `held`; while IMMEDIATE jobs wait,
    other jobs are `queued` behind them; a job whose peak does not fit is `resources`; a job
    with a reason in `found` (one the scheduler found elsewhere: the pipeline services it
    needs do not fit yet) has that one; any other (it fits but was not admitted yet) is
    `queued` at its place in the admission order.
    """
    held = queue.held_for(now)
    immediate = set(queue.immediate())
    short: dict[Request, WaitReason | None] = {}
    reasons: dict[JobId, WaitReason] = {}
    behind: list[JobId] = []
    for job_id in queue:
        if held is not None and job_id != held[0]:
            reasons[job_id] = WaitReason(WaitKind.HELD, target=held[0], target_since=held[1])
            continue
        if immediate and job_id not in immediate:
            behind.append(job_id)
            continue
        # Most queued jobs ask for the same few requests: each is checked against the ledger once.
        peak = peaks.get(job_id)
        if peak is not None and peak not in short:
            short[peak] = operator_reason(ledger, peak, holder)
        resources = None if peak is None else short[peak]
        if resources is not None:
            reasons[job_id] = resources
        elif found and job_id in found:
            reasons[job_id] = found[job_id]
        else:
            behind.append(job_id)
    if behind:
        # Only a place in the queue needs the admission order, the costly part.
        order = queue.snapshot(now)
        places = {job_id: index for index, job_id in enumerate(order)}
        named = order[:AHEAD_NAMED]
        for job_id in behind:
            place = places[job_id]
            reasons[job_id] = _queued(named[:place], place)
    return reasons


def operator_reason(
    ledger: ResourceLedger, request: Request, holder: Callable[[str], Holder]
) -> WaitReason | None:
    """Why an operator that is ready cannot start now; None when its request fits."""
    shortfall = ledger.shortfall(request)
    return None if shortfall is None else resources_reason(shortfall, holder)


def resources_reason(shortfall: Shortfall, holder: Callable[[str], Holder]) -> WaitReason:
    """A `resources` reason from the ledger's `Shortfall`."""
    return WaitReason(
        WaitKind.RESOURCES,
        resource=shortfall.resource,
        needed=shortfall.needed,
        capacity=shortfall.capacity,
        holders=tuple(holder(owner) for owner in shortfall.holders),
    )


def _queued(named: Sequence[str], count: int) -> WaitReason:
    """A `queued` reason behind `count` jobs, the first of them `named` (at most
    `AHEAD_NAMED`): no slice of the whole order per job, which made a pass's reasons grow
    with the square of the queue."""
    return WaitReason(WaitKind.QUEUED, position=count + 1, ahead=tuple(named), ahead_count=count)


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st, ..."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _queued_words(reason: WaitReason) -> str:
    place = f"{ordinal(reason.position)} in the queue"
    if not reason.ahead_count:
        return f"{place}, next to be admitted"
    more = reason.ahead_count - len(reason.ahead)
    rest = f" and {more} more" if more > 0 else ""
    if not all(reason.ahead):
        named = ", ".join(f"job {job}" if job else OTHER_USERS_JOB for job in reason.ahead)
        return f"{place}, behind {named}{rest}"
    jobs = "job" if reason.ahead_count == 1 else "jobs"
    return f"{place}, behind {jobs} {', '.join(reason.ahead)}{rest}"


def _amount(value: float) -> str:
    return f"{value:g}"


def _resource_words(reason: WaitReason, now: float) -> str:
    needed, capacity = _amount(reason.needed), _amount(reason.capacity)
    if reason.resource == "gpu":
        unit = "GPU" if reason.needed == 1 else "GPUs"
        held = " and ".join(holder.words(now) for holder in reason.holders)
        by = f", held by {held}" if held else ""
        return f"needs {needed} {unit}; the node has {capacity}{by}"
    if reason.resource == "memory_mb":
        return (
            f"needs {needed} MB of memory; the node has {capacity} MB and not enough of it is "
            "free now"
        )
    unit = "CPU" if reason.needed == 1 else "CPUs"
    return (
        f"needs {needed} {unit}; the node admits {capacity} at once and not enough of them "
        "are free now"
    )


def clock_time(moment: float, now: float) -> str:
    """`moment` as the UTC time of day (`10:02 UTC`), with the date when it is not today's."""
    at = datetime.fromtimestamp(moment, UTC)
    if at.date() == datetime.fromtimestamp(now, UTC).date():
        return at.strftime("%H:%M UTC")
    return at.strftime("%Y-%m-%d %H:%M UTC")


def duration_words(seconds: float) -> str:
    """A wait in words: `40 s`, `16 min`, `2 h 5 min`."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
