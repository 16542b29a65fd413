"""`aorta.v1.Services` (List, ReadLogs): any replica answers from the `services` collection and
the logs the service runners keep in the blob store (`domain.services.service_log_key`).

List answers a `user` with the services its own jobs used, ReadLogs is an admin's or the one
owner's of every job that used the service (`domain.service_access`): the caller rides in the
bus header the gateway sets, as for the Jobs verbs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aorta.api import aorta_services_pb2, common_pb2
from aorta.auth.principal import current_principal
from aorta.blobs import BlobStore
from aorta.bus import Request
from aorta.errors import NotFound
from aorta.executors.run_log import split_lines
from aorta_services.scheduler.domain import answers, requests
from aorta_services.scheduler.domain.service_access import (
    check_may_read_log,
    listed,
    may_read_log,
)
from aorta_services.scheduler.domain.services import ServiceRecord, service_log_key
from aorta_services.scheduler.service_records import ServiceRepository


def service_details(record: ServiceRecord) -> aorta_services_pb2.ServiceDetails:
    """One record as the API shows it."""
    allocation = record.allocation
    return aorta_services_pb2.ServiceDetails(
        service_id=record.id,
        name=record.name,
        image=record.image,
        tag=record.tag,
        command=list(record.command),
        state=record.state.value,
        address=record.address,
        job_ids=[common_pb2.Identifier(value=job) for job in record.users],
        pipeline_ids=[common_pb2.Identifier(value=p) for p in record.pipelines],
        last_used=record.last_used,
        message=record.message,
        gpus=len(allocation.gpus) if allocation is not None else record.request.gpu,
        cpu=record.request.cpu,
        memory_mb=record.request.memory_mb,
    )


class ServiceQueries:
    """Serves `SCHEDULER_SERVICES` and `SCHEDULER_SERVICE_LOGS`."""

    def __init__(self, repository: ServiceRepository, blobs: BlobStore) -> None:
        self._repository = repository
        self._blobs = blobs

    async def list_services(self, request: Request) -> AsyncIterator[bytes]:
        """One `ServicesListResponse` per service the caller may see, by name; one empty
        message for none."""
        requests.parse(request.data, aorta_services_pb2.ServicesListRequest)
        seen = (listed(record) for record in await self._repository.all())
        records = [record for record in seen if record is not None]
        if not records:
            yield aorta_services_pb2.ServicesListResponse().SerializeToString()
        for record in records:
            answer = aorta_services_pb2.ServicesListResponse(service=service_details(record))
            yield answer.SerializeToString()

    async def read_logs(self, request: Request) -> AsyncIterator[bytes]:
        """The service's stored log in messages of bounded size; `NotFound` for a service
        never started (by id, or by name compared case-insensitively), `Forbidden` when the
        caller may not read it."""
        message = requests.parse(request.data, aorta_services_pb2.ServicesReadLogsRequest)
        record = await self._find(message.service.strip())
        check_may_read_log(record)
        lines = split_lines(self._blobs.get(service_log_key(record.id)))
        async for chunk in answers.log_messages(record.id, record.name, lines):
            answer = aorta_services_pb2.ServicesReadLogsResponse(
                service_id=record.id, logs=list(chunk.logs)
            )
            yield answer.SerializeToString()

    async def _find(self, wanted: str) -> ServiceRecord:
        if not wanted:
            raise NotFound("name the service whose log to read (its id or its name)")
        by_id = await self._repository.get(wanted)
        if by_id is not None:
            return by_id
        named = [r for r in await self._repository.all() if r.name.lower() == wanted.lower()]
        if not named:
            raise NotFound(f"no pipeline service has the id or name {wanted!r}")
        # Of several services of that name (other commands), the caller's own first.
        readable = [r for r in named if may_read_log(r, current_principal())]
        return max(readable or named, key=lambda record: record.last_used)
