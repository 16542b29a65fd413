"""The job queue: which started job is admitted next, the way Clara described priorities.

Clara's rule (docs/clara-compatibility.md, "Job states and priorities"): IMMEDIATE jobs form
their own queue that must be empty before any other job is considered; HIGHER, NORMAL and LOWER
share one weighted scheme in which higher priorities are chosen more often, not always. Jobs
also wait for resources ("Resource admission" in the same document), so the queue is asked
"what next, given what fits now?" rather than "what is first?".

The rules, applied by `JobQueue.choose(now, fits)` in this order:

1. **Starvation guard.** Let the *candidate-oldest* job be the IMMEDIATE queue's head if that
   queue is not empty, otherwise the job waiting longest among the others (earliest
   `enqueued_at`, then push order). If it has waited at least `hold_after_seconds`, it is the
   only candidate: it is admitted if it fits, and otherwise nothing is admitted (the queue
   *holds*), so running work drains until it fits. This bounds how long any job can be
   passed over, a large GPU job included.
2. **IMMEDIATE.** While IMMEDIATE jobs wait, only they are considered: the first in FIFO order
   that fits is admitted (later IMMEDIATE jobs may backfill past one that does not fit, until
   rule 1 makes it hold). HIGHER, NORMAL and LOWER jobs are never admitted meanwhile, even if
   resources sit idle: that is Clara's definition of IMMEDIATE.
3. **Weighted rotation with aging.** Weights (default HIGHER 4, NORMAL 2, LOWER 1) lay out a
   fixed cycle of slots by smooth weighted round-robin (4:2:1 gives H N H L H N H). A cursor
   (`rotation`) walks the cycle; each slot offers its class. A job's *effective* class is its
   own class raised one level for each full `aging_seconds` it has waited (waited at least
   k * aging_seconds: k levels higher), never above HIGHER, so old LOWER and NORMAL jobs
   compete with (and, being older, precede) newer HIGHER jobs. Within an effective class jobs
   are in FIFO order (`enqueued_at`, then push order). Starting at the cursor, the first slot
   whose class holds a job that fits admits the first such job, and the cursor moves to the
   slot after it. A job that does not fit is skipped for now (*backfill*): later jobs and other
   classes may go ahead of it, which keeps the node busy, until rule 1 makes the queue hold
   for it.

With every class busy and everything fitting, admissions follow the weights exactly (700 picks
give 400:200:100). Decisions depend only on the queued jobs (priority, `enqueued_at`, push
order), `now`, the answers of `fits` and the `rotation` cursor, so a queue rebuilt after a
restart by pushing the stored jobs in their stored enqueue order, with the stored `rotation`,
makes the same decisions; without the stored cursor only the interleaving of the weighted classes
may differ, never FIFO order, IMMEDIATE precedence, aging or the guard.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aorta.errors import Conflict, ErrorCode, Invalid
from aorta.ids import JobId
from aorta_services.scheduler.domain.states import JobPriority

_SHARED = (JobPriority.HIGHER, JobPriority.NORMAL, JobPriority.LOWER)
_MAX_WEIGHT = 100


@dataclass(frozen=True)
class QueueWeights:
    """How often each shared class is offered a slot in one rotation (1..100 each)."""

    higher: int = 4
    normal: int = 2
    lower: int = 1

    def __post_init__(self) -> None:
        for name in ("higher", "normal", "lower"):
            value = getattr(self, name)
            if type(value) is not int or not 1 <= value <= _MAX_WEIGHT:
                raise Invalid(
                    f"queue weight {name}={value!r} must be an integer from 1 to {_MAX_WEIGHT}",
                    code=ErrorCode.INTERNAL,
                )

    def of(self, priority: JobPriority) -> int:
        """The weight of one of HIGHER, NORMAL, LOWER."""
        return {
            JobPriority.HIGHER: self.higher,
            JobPriority.NORMAL: self.normal,
            JobPriority.LOWER: self.lower,
        }[priority]

    def cycle(self) -> tuple[JobPriority, ...]:
        """The rotation's slots: smooth weighted round-robin, ties to the higher class."""
        total = self.higher + self.normal + self.lower
        credit = dict.fromkeys(_SHARED, 0)
        slots: list[JobPriority] = []
        for _ in range(total):
            for priority in _SHARED:
                credit[priority] += self.of(priority)
            # max() keeps the first of equal credits, and _SHARED lists the higher class first.
            chosen = max(_SHARED, key=lambda p: credit[p])
            credit[chosen] -= total
            slots.append(chosen)
        return tuple(slots)


@dataclass(frozen=True, order=True)
class _Entry:
    enqueued_at: float
    sequence: int
    job_id: JobId = field(compare=False)
    priority: JobPriority = field(compare=False)


def _enqueued_at(entry: _Entry) -> float:
    return entry.enqueued_at


class JobQueue:
    """Started jobs waiting for admission; see the module docstring for the exact rules.

    Not thread-safe; pure: time comes in as `now`/`enqueued_at` (seconds on any one clock).
    """

    def __init__(
        self,
        weights: QueueWeights | None = None,
        *,
        aging_seconds: float = 300.0,
        hold_after_seconds: float = 900.0,
        rotation: int = 0,
    ) -> None:
        """Raises `Invalid` when `aging_seconds` or `hold_after_seconds` is not a positive
        finite number, or `rotation` is not a slot of the weights' cycle."""
        self._weights = weights or QueueWeights()
        self._cycle = self._weights.cycle()
        for name, value in (
            ("aging_seconds", aging_seconds),
            ("hold_after_seconds", hold_after_seconds),
        ):
            if not (math.isfinite(value) and value > 0):
                raise Invalid(
                    f"queue {name}={value!r} must be a positive number", code=ErrorCode.INTERNAL
                )
        if not 0 <= rotation < len(self._cycle):
            raise Invalid(
                f"queue rotation={rotation!r} must be from 0 to {len(self._cycle) - 1}",
                code=ErrorCode.INTERNAL,
            )
        self._aging = aging_seconds
        self._hold_after = hold_after_seconds
        self._rotation = rotation
        self._lanes: dict[JobPriority, list[_Entry]] = {
            priority: [] for priority in (JobPriority.IMMEDIATE, *_SHARED)
        }
        self._entries: dict[JobId, _Entry] = {}
        self._pushes = 0

    @property
    def rotation(self) -> int:
        """The weighted cycle's cursor; store it to continue the rotation after a restart."""
        return self._rotation

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    def __iter__(self) -> Iterator[JobId]:
        """The queued jobs, in the order they were pushed (not the admission order)."""
        return iter(self._entries)

    def push(self, job_id: JobId, priority: JobPriority, enqueued_at: float) -> None:
        """Queues a started job.

        `enqueued_at` is when it was started (stored with the job, so a rebuilt queue ages it
        from the same moment). Raises `Conflict` (JOB_STATE_CONFLICT) if it is already queued
        and `Invalid` for priority UNKNOWN or a non-finite time.
        """
        if job_id in self._entries:
            raise Conflict(f"job {job_id} is already queued", code=ErrorCode.JOB_STATE_CONFLICT)
        if priority not in self._lanes:
            shown = priority.name if isinstance(priority, JobPriority) else repr(priority)
            raise Invalid(
                f"job {job_id} has priority {shown}; queue it as LOWER, NORMAL, HIGHER or IMMEDIATE"
            )
        if not math.isfinite(enqueued_at):
            raise Invalid(f"job {job_id} has enqueue time {enqueued_at!r}, not a finite number")
        entry = _Entry(enqueued_at, self._pushes, job_id, priority)
        self._pushes += 1
        self._entries[job_id] = entry
        insort(self._lanes[priority], entry)

    def remove(self, job_id: JobId) -> bool:
        """Takes a job out (canceled, faulted); False if it was not queued."""
        entry = self._entries.get(job_id)
        if entry is None:
            return False
        self._take(entry)
        return True

    def choose(self, now: float, fits: Callable[[JobId], bool]) -> JobId | None:
        """Removes and returns the job to admit now, or None if none may be admitted.

        `fits(job_id)` says whether the job's resources fit right now; it is called at most once
        per job, in preference order, and must not change the queue. None means: wait for the
        next release, push or tick (the queue may be empty, everything may be blocked, or the
        starvation guard holds for a job that does not fit yet).
        """
        if not self._entries:
            return None
        held = self.held_for(now)
        if held is not None:
            return self._take(self._entries[held[0]]) if fits(held[0]) else None
        immediate = self._lanes[JobPriority.IMMEDIATE]
        if immediate:
            return self._first_fitting(iter(immediate), fits)
        tried: set[JobPriority] = set()
        for offset in range(len(self._cycle)):
            slot = (self._rotation + offset) % len(self._cycle)
            priority = self._cycle[slot]
            if priority in tried:
                continue
            tried.add(priority)
            chosen = self._first_fitting(self._effective_class(priority, now), fits)
            if chosen is not None:
                self._rotation = (slot + 1) % len(self._cycle)
                return chosen
        return None

    def held_for(self, now: float) -> tuple[JobId, float] | None:
        """The job the starvation guard (rule 1) makes the queue hold for at `now`, with the
        time it was queued; None when the guard does not apply. The queue holds only while
        that job does not fit: one that fits is admitted by the next `choose`."""
        immediate = self._lanes[JobPriority.IMMEDIATE]
        heads = [lane[0] for lane in self._lanes.values() if lane]
        if not heads:
            return None
        oldest = immediate[0] if immediate else min(heads)
        if now - oldest.enqueued_at >= self._hold_after:
            return oldest.job_id, oldest.enqueued_at
        return None

    def immediate(self) -> list[JobId]:
        """The IMMEDIATE jobs waiting, in FIFO order; while there are any, no other job is
        admitted (rule 2)."""
        return [entry.job_id for entry in self._lanes[JobPriority.IMMEDIATE]]

    def snapshot(self, now: float) -> list[JobId]:
        """Every queued job in the order `choose` would admit them at `now` if all fit."""
        copy = JobQueue(
            self._weights,
            aging_seconds=self._aging,
            hold_after_seconds=self._hold_after,
            rotation=self._rotation,
        )
        copy._lanes = {priority: list(lane) for priority, lane in self._lanes.items()}
        copy._entries = dict(self._entries)
        order: list[JobId] = []
        while (chosen := copy.choose(now, lambda _: True)) is not None:
            order.append(chosen)
        return order

    def _first_fitting(
        self, entries: Iterator[_Entry], fits: Callable[[JobId], bool]
    ) -> JobId | None:
        for entry in entries:
            if fits(entry.job_id):
                return self._take(entry)
        return None

    def _effective_class(self, priority: JobPriority, now: float) -> Iterator[_Entry]:
        """The jobs whose effective class is `priority` at `now`, in FIFO order.

        A lane is sorted by enqueue time and older jobs are promoted more, so the jobs of one
        lane that land in a given effective class form one contiguous slice of it.
        """
        slices: list[Iterator[_Entry]] = []
        for base in _SHARED:
            if base > priority:
                continue
            lane = self._lanes[base]
            levels = priority - base
            stop = self._promoted_at_least(lane, levels, now)
            start = (
                0
                if priority == JobPriority.HIGHER
                else self._promoted_at_least(lane, levels + 1, now)
            )
            # By index, not `lane[start:stop]`: a choose mostly takes the first job, and the
            # copy made every choose of a snapshot (one per queued job) cost the whole lane.
            slices.append(_between(lane, start, stop))
        return heapq.merge(*slices)

    def _promoted_at_least(self, lane: list[_Entry], levels: int, now: float) -> int:
        """How many jobs at the front of `lane` have waited at least `levels` aging steps."""
        if levels == 0:
            return len(lane)
        return bisect_right(lane, now - levels * self._aging, key=_enqueued_at)

    def _take(self, entry: _Entry) -> JobId:
        lane = self._lanes[entry.priority]
        del lane[bisect_left(lane, entry)]
        del self._entries[entry.job_id]
        return entry.job_id


def _between(lane: list[_Entry], start: int, stop: int) -> Iterator[_Entry]:
    """`lane[start:stop]`, one entry at a time and without a copy."""
    return (lane[index] for index in range(start, stop))
