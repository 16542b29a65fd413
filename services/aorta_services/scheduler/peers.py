"""The other services' verbs the scheduler calls, by their contracts (`aorta.contracts`).

Errors the other service raises reach the caller unchanged (a missing pipeline is still
PIPELINE_NOT_FOUND); a service that is not deployed at all becomes an `Unavailable` that says
which one, in words a person can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from aorta import contracts
from aorta.auth.caller import caller_headers
from aorta.bus import Bus
from aorta.bus.unanswered import no_responders, timed_out
from aorta.bus.verbs import Verb, call
from aorta.errors import Unavailable
from aorta.ids import JobId, PayloadId, PipelineId
from aorta.logger import get_logger
from aorta_services.scheduler.domain.job_record import TritonUris

log = get_logger(__name__)

Req = TypeVar("Req")
Ans = TypeVar("Ans")


ACQUIRE_ATTEMPTS = 3
"""How often a Triton acquire is asked before its job faults: an acquire is idempotent by job
across every models replica, so asking again after a timeout never starts a second server."""


class Peers:
    """Calls to the pipelines, payloads and models services; `timeout` bounds each call."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    async def pipeline_snapshot(self, pipeline_id: PipelineId) -> contracts.PipelineSnapshot:
        """The pipeline's definition now; `NotFound` (PIPELINE_NOT_FOUND) when it has none."""
        return await self._call(
            contracts.PIPELINES_SNAPSHOT, contracts.SnapshotRequest(pipeline_id)
        )

    async def create_payload(
        self, job_id: JobId, input_payloads: Sequence[PayloadId], owner: str
    ) -> PayloadId:
        """A new PIPELINE payload for the job, owned by the job's `owner`, the REUSABLE
        `input_payloads` copied in: `Forbidden` unless the caller may use every one."""
        request = contracts.CreateForJob(job_id, tuple(input_payloads), owner)
        return (await self._call(contracts.PAYLOADS_CREATE_FOR_JOB, request)).payload_id

    async def discard_payload(self, job_id: JobId) -> PayloadId | None:
        """Removes the PIPELINE payload made for a job that was never revealed; returns its id,
        None when the job has none. Idempotent."""
        request = contracts.DiscardForJob(job_id)
        return (await self._call(contracts.PAYLOADS_DISCARD_FOR_JOB, request)).payload_id

    async def delete_payload(self, job_id: JobId) -> PayloadId | None:
        """Deletes the PIPELINE payload of a stopped job that is being deleted, for the
        caller (who must own it); returns its id, None when the job has none left.
        Idempotent."""
        request = contracts.DiscardForJob(job_id)
        return (await self._call(contracts.PAYLOADS_DELETE_FOR_JOB, request)).payload_id

    async def lock_payload(self, payload_id: PayloadId, job_id: JobId) -> None:
        """The job started: its payload becomes read-only and in use."""
        await self._call(contracts.PAYLOADS_LOCK, contracts.JobPayload(payload_id, job_id))

    async def release_payload(self, payload_id: PayloadId, job_id: JobId) -> None:
        """The job stopped: its payload may be deleted again."""
        await self._call(contracts.PAYLOADS_RELEASE, contracts.JobPayload(payload_id, job_id))

    async def acquire_triton(
        self, job_id: JobId, models: Sequence[str], gpus: Sequence[int] = ()
    ) -> TritonUris:
        """A Triton server holding `models` for this job, on its GPUs `gpus` where it has any;
        `Unavailable` when no models service is deployed."""
        request = contracts.AcquireTriton(job_id, tuple(models), tuple(gpus))
        verb = contracts.MODELS_ACQUIRE_TRITON
        attempt = 1
        while True:
            try:
                server = await self._call(verb, request)
            except Unavailable as error:
                # A replica that died (or stalled) mid-acquire never answers; asked again,
                # another replica takes the job's claim over or answers with what it recorded.
                if attempt == ACQUIRE_ATTEMPTS or not timed_out(error, verb.subject):
                    raise
                log.warning("scheduler.triton_acquire_retried", job_id=job_id, attempt=attempt)
                attempt += 1
            else:
                return TritonUris(grpc_uri=server.grpc_uri, http_uri=server.http_uri)

    async def release_triton(self, job_id: JobId) -> None:
        """The job stopped: its Triton servers return to the pool. A models service that is not
        deployed holds nothing, so its absence is not an error."""
        verb = contracts.MODELS_RELEASE_TRITON
        try:
            await call(self._bus, verb, contracts.ReleaseTriton(job_id), timeout=self._timeout)
        except Unavailable as error:
            if not no_responders(error, verb.subject):
                raise

    async def _call(self, verb: Verb[Req, Ans], request: Req) -> Ans:
        """The answer; `Unavailable` naming the service when none serves `verb`. Made for a
        client's call, it carries that caller on (`aorta.auth.caller`), so the other service
        checks what the caller may use."""
        try:
            return await call(
                self._bus, verb, request, timeout=self._timeout, headers=caller_headers()
            )
        except Unavailable as error:
            if no_responders(error, verb.subject):
                raise Unavailable(
                    f"no {verb.service} service answers {verb.subject}: is the {verb.service} "
                    "service running?",
                    code=error.code,
                ) from error
            raise
