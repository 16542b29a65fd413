"""`aorta.v1.Jobs/Delete`: a stopped job goes, with its operators' logs and its PIPELINE payload.

Any replica serves it (`SCHEDULER_DELETE`). The job's owner or an admin may delete it
(`aorta.auth.ownership`); a job that has not stopped is refused with JOB_STATE_CONFLICT and
left as it was. A job that has just stopped gives back its payload lock and Triton server a
moment later (the leader writes that down after the other services answer): a Delete arriving
in between waits for it, a few seconds at most, rather than refusing a job its caller has just
seen stop; one still holding them after that is refused with JOB_STATE_CONFLICT too.

The parts go in an order that a retry can always finish: the payload first (the payloads
service checks the caller owns it too, and answers null once it is gone), then the logs, then
the job's own record, last, so that until the end the job is still there to be deleted again.
Events still in the job's outbox are published before anything goes (a bus that takes none
refuses the Delete with UNAVAILABLE); `job.deleted` is staged apart just before the record goes
(with anything staged meanwhile) and published last, at least once like every job event
(`aorta_services.scheduler.events`).
"""

from __future__ import annotations

import asyncio

from aorta import payload_layout
from aorta.api import aorta_jobs_pb2, common_pb2
from aorta.auth.ownership import check_owner
from aorta.blobs import BlobStore
from aorta.bus import Request
from aorta.errors import AortaError, Conflict, ErrorCode, Unavailable
from aorta.ids import PayloadId
from aorta.logger import get_logger
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.requests import job_id_of, parse
from aorta_services.scheduler.events import JobEvents, job_event
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.repository import JobRepository

log = get_logger(__name__)

RELEASE_WAIT = 5.0
"""Seconds a Delete waits for a stopped job to give back what it held."""
_RELEASE_POLL = 0.05


def check_deletable(record: JobRecord) -> None:
    """`Conflict` (JOB_STATE_CONFLICT) unless `record` stopped and gave back what it held."""
    if not record.phase.stopped:
        raise Conflict(
            f"job {record.id} is {record.phase.value}, not stopped: cancel it first "
            "(aorta cancel job), then delete it",
            code=ErrorCode.JOB_STATE_CONFLICT,
        )
    if not record.released:
        raise Conflict(
            f"job {record.id} stopped but still holds its payload or Triton server; "
            "try again in a few seconds",
            code=ErrorCode.JOB_STATE_CONFLICT,
        )


class JobDeletion:
    """Serves `SCHEDULER_DELETE` over one repository."""

    def __init__(
        self, repository: JobRepository, peers: Peers, events: JobEvents, blobs: BlobStore
    ) -> None:
        self._repository = repository
        self._peers = peers
        self._events = events
        self._blobs = blobs

    async def _once_released(self, record: JobRecord) -> JobRecord:
        """`record` as stored once the stopped job gave back what it held, or after
        `RELEASE_WAIT` seconds; read again from the store, as the leader that releases it may
        be another replica."""
        deadline = asyncio.get_running_loop().time() + RELEASE_WAIT
        while record.phase.stopped and not record.released:
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(_RELEASE_POLL)
            record = await self._repository.get(record.id)
        return record

    async def remove(self, record: JobRecord, *, reason: str = "") -> tuple[PayloadId | None, int]:
        """Removes the stopped, released job `record` (`check_deletable`) in the module
        docstring's order; answers its payload's id (None when it had none left) and how many
        logs went. `reason` (the retention sweep's) is logged and sent with `job.deleted`.
        UNAVAILABLE while its outbox holds events the bus does not take."""
        if not await self._events.flush(record):
            raise Unavailable(
                f"job {record.id} has events the bus has not taken yet; try again shortly"
            )
        payload_id = await self._peers.delete_payload(record.id)
        logs = await self._blobs.delete_prefix(payload_layout.job_logs_prefix(record.id))
        extra = {"reason": reason} if reason else None
        entry = await self._events.stage_deleted(record, job_event("deleted", extra)(record))
        try:
            await self._repository.remove(record.id)
        except AortaError:
            await self._events.not_deleted(entry)
            raise
        log.info("job.deleted", job_id=record.id, payload_id=payload_id, logs=logs, reason=reason)
        await self._events.deleted(entry)
        return payload_id, logs

    async def delete(self, request: Request) -> bytes:
        """Deletes the job the `JobsDeleteRequest` names (module docstring); answers a
        `JobsDeleteResponse`. JOB_NOT_FOUND when there is no such job (or it is gone)."""
        message = parse(request.data, aorta_jobs_pb2.JobsDeleteRequest)
        record = await self._repository.get(job_id_of(message))
        check_owner(record.owner, f"job {record.id}")
        record = await self._once_released(record)
        check_deletable(record)
        payload_id, logs = await self.remove(record)
        return aorta_jobs_pb2.JobsDeleteResponse(
            header=common_pb2.ResponseHeader(code=0),
            job_id=common_pb2.Identifier(value=record.id),
            payload_id=common_pb2.Identifier(value=payload_id or ""),
            logs_removed=logs,
        ).SerializeToString()
