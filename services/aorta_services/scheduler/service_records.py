"""The `services` collection: the one place the scheduler reads and writes service records.

Any replica may write (Clara.Stop sets `stop_requested` on every live service); the leader does
the rest. Every write is a read-modify-write against the version read, as for jobs.
"""

from __future__ import annotations

from collections.abc import Callable

from aorta.bus import CloudEvent
from aorta.errors import Conflict, ErrorCode, NotFound
from aorta.outbox import staging_record
from aorta.store import Collection, Document, StateStore, kept_changing, modify_document
from aorta_services.scheduler.domain.services import ServiceRecord, ServiceState

SERVICES = "services"


class ServiceRepository:
    """Service records; every method is safe to call concurrently."""

    def __init__(self, store: StateStore) -> None:
        self._services: Collection = store.collection(SERVICES)

    @property
    def collection(self) -> Collection:
        """The `services` collection, whose documents carry their staged events
        (`aorta.outbox`)."""
        return self._services

    async def modify_staged(
        self,
        service_id: str,
        change: Callable[[ServiceRecord], ServiceRecord],
        event: Callable[[ServiceRecord], CloudEvent],
    ) -> Document:
        """`modify`, with the `event` of the changed record staged in the same write; returns
        the stored document (for `aorta.outbox.Outbox.flush`)."""
        return await modify_document(
            self._services,
            service_id,
            staging_record(ServiceRecord.from_document, change, event),
            missing=lambda: NotFound(f"no service has id {service_id}"),
            gave_up=kept_changing(f"service {service_id}", code=ErrorCode.JOB_STORE_ERROR),
        )

    async def prepare(self) -> None:
        """Creates the index the leader's queries use; idempotent."""
        await self._services.ensure_index(["state"])

    async def get(self, service_id: str) -> ServiceRecord | None:
        """The record of `service_id`, None when no job ever used it."""
        try:
            return ServiceRecord.from_document(await self._services.get(service_id))
        except NotFound:
            return None

    async def all(self) -> list[ServiceRecord]:
        """Every record, by name then id."""
        documents = await self._services.find(sort=[("name", 1)])
        return [ServiceRecord.from_document(document) for document in documents]

    async def live(self) -> list[ServiceRecord]:
        """The records of services starting or ready."""
        states = [ServiceState.STARTING.value, ServiceState.READY.value]
        documents = await self._services.find({"state": {"$in": states}})
        return [ServiceRecord.from_document(document) for document in documents]

    async def put(
        self,
        service_id: str,
        change: Callable[[ServiceRecord], ServiceRecord],
        first: Callable[[], ServiceRecord],
    ) -> ServiceRecord:
        """Replaces the record with `change(current)` as one atomic step, `change(first())`
        when there is none yet; returns what was stored."""
        try:
            return await self._modify(service_id, change)
        except NotFound:
            pass
        document = change(first()).to_document()
        try:
            return ServiceRecord.from_document(await self._services.insert(document))
        except Conflict:
            # Another writer inserted it meanwhile: change what it wrote.
            return await self._modify(service_id, change)

    async def modify(
        self, service_id: str, change: Callable[[ServiceRecord], ServiceRecord]
    ) -> ServiceRecord:
        """Replaces an existing record with `change(current)`; `NotFound` when absent."""
        return await self._modify(service_id, change)

    async def _modify(
        self, service_id: str, change: Callable[[ServiceRecord], ServiceRecord]
    ) -> ServiceRecord:
        stored = await modify_document(
            self._services,
            service_id,
            lambda document: change(ServiceRecord.from_document(document)).to_document(),
            missing=lambda: NotFound(f"no service has id {service_id}"),
            gave_up=kept_changing(f"service {service_id}", code=ErrorCode.JOB_STORE_ERROR),
        )
        return ServiceRecord.from_document(stored)
