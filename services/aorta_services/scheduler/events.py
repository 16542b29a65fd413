"""The scheduler's domain events: stored with the change they describe, then published.

Events (CloudEvents on `aorta.events.job.<job id>.<event>`, source `aorta/scheduler`):

- `job.created`, `job.queued`, `job.started` (admitted, RUNNING), `job.stopped`: `data` is
  `{"job_id", "name", "pipeline_id", "payload_id", "priority", "state", "status"}` with the
  enum names (`"STOPPED"`, `"FAULTED"`), plus `"messages"` on `stopped`.
- `job.operator.started` and `job.operator.stopped`: `{"job_id", "operator", "attempt",
  "status"}`, plus `"exit_code"` and `"reason"` on `stopped`.
- `job.metadata_changed` (AddMetadata, RemoveMetadata): as `job.created`.
- `job.payload_removed` (the retention sweep deleted a stopped job's payload, the job stays)
  and `job.deleted` (the job is gone): the job's fields, plus `"reason"` when retention did it.

The staging and publishing are `aorta.outbox`'s, the one implementation every service uses.

Delivery is at least once, through an outbox in the job's own document (`JobRecord.outbox`):

1. a change that has an event is wrapped with `staged`, which builds the event (id included)
   from the changed record and appends it to the outbox, so the event is stored in the same
   atomic write as the change, or not at all;
2. after the write, the writer `flush`es the record: its pending events are published in order
   (stopping at the first the bus does not take) and exactly those published are removed from
   the document (other writers may have staged more meanwhile). The leader's operator runs
   and admissions leave that removal to the job's next write instead (`flush(record,
   later=True)`, then `modify`): on a chain of operators each end and each start is then one
   write of the job's document, not two. The events this process published but left staged
   are remembered, so no flush publishes them again, and the next flush of the job that
   removes events removes them too;
3. the leader `replay`s at its takeover and at every resync: it flushes every job whose outbox
   is not empty, so an event whose writer died, or whose bus was down, is published late. An
   event this process published and left for the job's next write is left there by the
   replay for `LEAVE_SECONDS` (the next write is usually milliseconds away; a removal of its
   own would be a write more), then removed; a replica that does not know it went out (a new
   leader) publishes it again within JetStream's duplicate window, as `aorta.outbox` does;
4. `job.deleted`, whose document is gone, is staged apart before the job's record is removed
   (`stage_deleted`, with whatever the document still held), published after, and replayed
   by the leader like the rest (`aorta.outbox.Outbox.stage_apart` says exactly when).

An event keeps its id however often it is published, and the bus publishes with the id as
`Nats-Msg-Id`, so JetStream stores a replay within its duplicate window once; beyond it (a
writer that died between the publish and the removal, a leader taking over later) a consumer
may see an event twice and must treat the id as the deduplication key. A bus failure never
fails the change: it is logged (`job.event_delayed`) and the event stays pending. Only an event
the bus can never take (`Invalid`: above the message limit) is dropped, logged as
`job.event_lost`, so that it cannot hold back the job's later events forever.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from structlog.contextvars import bound_contextvars

from aorta.bus import Bus, CloudEvent, make_event
from aorta.errors import AortaError, NotFound
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta.outbox import APART_GRACE, LEAVE_SECONDS, Outbox, event_document, publish_staged
from aorta.store import Document
from aorta_services.scheduler.domain import OperatorStatus
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.job_metrics import published
from aorta_services.scheduler.repository import JobRepository

log = get_logger(__name__)

SERVICE = "scheduler"
COUNTED_REMEMBERED = 4096
"""How many event ids `JobEvents` remembers having counted: far more than are published in
the moment a writer's flush and the leader's replay can overlap."""

Change = Callable[[JobRecord], JobRecord]
EventBuilder = Callable[[JobRecord], CloudEvent]
"""Builds an event from a job record as changed (the record the event describes)."""


def job_event(event: str, extra: Mapping[str, Any] | None = None) -> EventBuilder:
    """`job.<event>` for the record as changed; `extra` adds fields to its `data`."""

    def build(record: JobRecord) -> CloudEvent:
        data: dict[str, Any] = {
            "job_id": record.id,
            "name": record.name,
            "pipeline_id": record.pipeline_id,
            "payload_id": record.payload_id,
            "priority": record.priority.name,
            "state": record.phase.state.name,
            "status": record.phase.status.name,
        }
        if event == "stopped":
            data["messages"] = list(record.messages)
        data.update(extra or {})
        return make_event(SERVICE, "job", record.id, event, data)

    return build


def operator_event(
    name: str,
    event: str,
    *,
    status: OperatorStatus,
    exit_code: int | None = None,
    reason: str = "",
) -> EventBuilder:
    """`job.operator.<event>` for operator `name` of the record as changed."""

    def build(record: JobRecord) -> CloudEvent:
        data: dict[str, Any] = {
            "job_id": record.id,
            "operator": name,
            "attempt": record.operator(name).attempt,
            "status": status.name,
        }
        if event == "stopped":
            data["exit_code"] = exit_code
            data["reason"] = reason
        return make_event(SERVICE, "job", record.id, f"operator.{event}", data)

    return build


def staged(change: Change, build: EventBuilder) -> Change:
    """`change`, with the event `build` makes of its result staged in the job's outbox.

    Still pure apart from the event's fresh id and time: a `change` that refuses (raises)
    stages nothing, and one re-run after a lost race stages the event of the run that wins.
    """

    def changed(record: JobRecord) -> JobRecord:
        after = change(record)
        return after.with_event(event_document(build(after)))

    return changed


class JobEvents:
    """Publishes the events staged in job documents, then removes them (module docstring)."""

    def __init__(
        self,
        bus: Bus,
        repository: JobRepository,
        *,
        apart_grace: float = APART_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`apart_grace`: how long `job.deleted` staged apart is left to its writer before
        the replay judges it (`aorta.outbox.APART_GRACE`; tests shorten it); `clock` times
        how long an event has been left (module docstring, 3)."""
        self._bus = bus
        self._repository = repository
        self._outbox = Outbox(bus, repository.store, service=SERVICE, grace=apart_grace)
        self._clock = clock
        self._left: dict[str, dict[str, float]] = {}
        """Per job, the events this process published but left staged in its document, with
        when it left them."""
        self._flushing: dict[str, int] = {}
        """Per job, the writers' flushes in flight in this process: the replay leaves their
        events to them rather than publish and remove the same events beside them."""
        self._counted = _RecentIds(COUNTED_REMEMBERED)
        """The events this process counted in its metrics lately: a writer's flush and the
        leader's replay can publish one event at the same moment, the bus keeps one, and the
        metrics must count one too."""

    async def flush(self, record: JobRecord, *, later: bool = False) -> bool:
        """Publishes `record`'s pending events in order, then removes the published ones from
        the job's document. Stops at the first event the bus does not take: it and the ones
        after it stay pending for the leader's replay. Returns whether none was left for that
        reason; store and bus errors are logged, never raised (the change itself is stored).

        Events this process published already are not published again. With `later`, the
        published events stay staged until the job's next `modify` (or next flush without
        `later`) removes them: for a writer that is about to write the job again anyway."""
        self._flushing[record.id] = self._flushing.get(record.id, 0) + 1
        try:
            return await self._flush(record, later=later, replaying=False)
        finally:
            if self._flushing[record.id] == 1:
                del self._flushing[record.id]
            else:
                self._flushing[record.id] -= 1

    async def _flush(self, record: JobRecord, *, later: bool, replaying: bool) -> bool:
        """`flush`; `replaying` keeps the events left less than `LEAVE_SECONDS` ago staged."""
        left = self._left.get(record.id, {})
        done: list[str] = []
        delivered = True
        with bound_contextvars(job_id=record.id):
            for document in record.outbox:
                if document["id"] in left:
                    continue
                if not await self._publish(document):
                    delivered = False
                    break
                if self._counted.add(document["id"]):
                    published(document, record)
                done.append(document["id"])
            now = self._clock()
            if later:
                if done:
                    self._left.setdefault(record.id, {}).update(dict.fromkeys(done, now))
                return delivered
            if replaying:
                left = {id: at for id, at in left.items() if now - at >= LEAVE_SECONDS}
            gone = frozenset(done) | frozenset(left)
            if gone:
                await self._remove(record, gone)
        return delivered

    async def modify(
        self, job_id: JobId, change: Change, *, known: JobRecord | None = None
    ) -> JobRecord:
        """`JobRepository.modify(job_id, change, known=known)`, the write also removing the
        events this process published and left staged (`flush(..., later=True)`)."""
        left = frozenset(self._left.get(job_id, ()))
        if not left:
            return await self._repository.modify(job_id, change, known=known)
        record = await self._repository.modify(
            job_id, lambda current: change(current.without_events(left)), known=known
        )
        self._removed(job_id, left)
        return record

    async def stage_deleted(self, record: JobRecord, event: CloudEvent) -> Document:
        """Stages `job.deleted` apart before job `record`'s document is removed, with the
        events the document still holds; raises the store's errors (keep the job then).
        Returns the entry for `deleted` or `not_deleted`."""
        document = await self._repository.document(record.id)
        return await self._outbox.stage_apart(event, self._repository.jobs, record.id, document)

    async def deleted(self, entry: Document) -> bool:
        """Publishes what `stage_deleted` staged, the job's record gone; the leader's replay
        publishes it later when the bus does not take it now. Never raises."""
        return await self._outbox.publish_apart(entry)

    async def not_deleted(self, entry: Document) -> None:
        """Forgets what `stage_deleted` staged: the job's record could not be removed."""
        await self._outbox.discard_apart(entry)

    async def replay(self) -> None:
        """Flushes every job with pending events (the leader: at takeover, at each resync);
        stops at the first the bus does not take, until the next replay. Store errors raise."""
        for job_id, event_ids in await self._repository.pending_events():
            now = self._clock()
            left = self._left.get(job_id, {})
            if {id for id, at in left.items() if now - at < LEAVE_SECONDS}.issuperset(event_ids):
                continue  # published, and left for the job's next write: nothing to read
            try:
                record = await self._repository.get(job_id, hidden=True)
            except NotFound:
                continue  # gone since, with its events
            if record.id in self._flushing:
                continue  # its writer publishes them now, and removes them with one write
            if not await self._flush(record, later=False, replaying=True):
                return
        await self._outbox.replay()

    async def _publish(self, document: Mapping[str, Any]) -> bool:
        return await publish_staged(self._bus, document, log_as="job")

    async def _remove(self, record: JobRecord, event_ids: frozenset[str]) -> None:
        try:
            # From `record`, which its writer or the replay just read: no read first unless
            # another write came between.
            await self._repository.modify(
                record.id, lambda r: r.without_events(event_ids), hidden=True, known=record
            )
        except NotFound:
            self._left.pop(record.id, None)  # the job is gone, and its events with it
        except AortaError as error:
            # The events stay staged: the leader's replay publishes them again under the
            # same ids, which the bus stores once.
            log.warning("job.event_not_cleared", events=len(event_ids), error=str(error))
        else:
            self._removed(record.id, event_ids)

    def _removed(self, job_id: str, event_ids: frozenset[str]) -> None:
        left = self._left.get(job_id)
        if left is not None:
            for event_id in event_ids:
                left.pop(event_id, None)
            if not left:
                del self._left[job_id]


class _RecentIds:
    """The last `size` ids added, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, id: str) -> bool:
        """Remembers `id`; returns whether it was new."""
        if id in self._ids:
            return False
        self._ids[id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True
