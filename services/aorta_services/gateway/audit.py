"""The audit log: records appended to the state store, published as CloudEvents, swept by age.

Records are only ever inserted (never updated); each is also published, best effort, as a
CloudEvent on `aorta.audit.<service>.<method>`, for integrations that watch the bus. The store
is what counts: `append` raises when the record could not be stored, so a mutating call can be
refused before it proceeds (see `aorta_services.gateway.guard`). Records older than the
retention are deleted by every gateway replica in turn; deleting by age is idempotent, so
replicas need no coordination.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from aorta import subjects
from aorta.bus import Bus
from aorta.bus.events import make_event
from aorta.errors import AortaError, Unavailable
from aorta.ids import new_id
from aorta.logger import get_logger
from aorta.store import StateStore
from aorta.timestamps import to_iso, utcnow
from aorta_services.gateway.audit_record import AuditRecord, event_tokens

log = get_logger(__name__)

COLLECTION = "audit_records"
SWEEP_EVERY = 3600.0
"""Seconds between two retention sweeps of one replica."""
_PAGE = 500


class AuditTrail:
    """Appends, lists and sweeps the audit records of one state store."""

    def __init__(self, store: StateStore, bus: Bus) -> None:
        self._records = store.collection(COLLECTION)
        self._bus = bus

    async def prepare(self) -> None:
        """Creates the indexes listing and sweeping use; idempotent. They only make reads
        faster, so a store that cannot make them now is logged, not fatal: the gateway still
        starts (and refuses mutating calls for as long as the store takes no record)."""
        try:
            await self._records.ensure_index(["time"])
            await self._records.ensure_index(["subject", "time"])
            await self._records.ensure_index(["resources.job_id", "time"])
        except AortaError as exc:
            log.warning("audit.index_failed", error=str(exc))

    async def append(
        self,
        *,
        subject: str,
        client: str,
        method: str,
        result: str,
        request_id: str,
        call_id: str,
        resources: Mapping[str, str],
    ) -> AuditRecord:
        """Stores a new record (now), then publishes it; returns it.

        Raises `Unavailable` when the store did not take the record (the event is then not
        published). A failed publish is only logged.
        """
        record = AuditRecord(
            id=new_id(),
            time=to_iso(utcnow()),
            subject=subject,
            client=client,
            method=method,
            result=result,
            request_id=request_id,
            call_id=call_id,
            resources=dict(resources),
        )
        try:
            await self._records.insert(record.document())
        except AortaError as exc:
            log.error("audit.write_failed", method=method, error=str(exc))
            raise Unavailable(
                "the audit log cannot be written, so the call was not carried out; "
                "retry when the state store is reachable"
            ) from exc
        await self._publish(record)
        return record

    async def _publish(self, record: AuditRecord) -> None:
        service, method = event_tokens(record.method)
        try:
            event = make_event(
                "gateway", "audit", record.id, f"{service}.{method}", record.document()
            )
            await self._bus.publish(subjects.audit(service, method), event.to_json())
        except (AortaError, OSError) as exc:
            log.warning("audit.publish_failed", method=record.method, error=str(exc))

    async def records(
        self, *, since: str = "", subject: str = "", job_id: str = "", limit: int = 0
    ) -> AsyncIterator[AuditRecord]:
        """Records oldest first: from `since` (an RFC 3339 time) on, of `subject`, naming
        `job_id`; at most `limit` (0: all). Read page by page, so a long log is never held
        in memory at once."""
        query: dict[str, Any] = {}
        if since:
            query["time"] = {"$gte": since}
        if subject:
            query["subject"] = subject
        if job_id:
            query["resources.job_id"] = job_id
        sent = 0
        while True:
            page_size = _PAGE if not limit else min(_PAGE, limit - sent)
            page = await self._records.find(query, sort=[("time", 1)], limit=page_size, skip=sent)
            for document in page:
                yield AuditRecord.from_document(document)
            sent += len(page)
            if len(page) < page_size or (limit and sent >= limit):
                return

    async def sweep(self, retention: timedelta, now: datetime | None = None) -> int:
        """Deletes the records older than `retention`; returns how many went."""
        cutoff = to_iso((now or utcnow()) - retention)
        removed = await self._records.delete_many({"time": {"$lt": cutoff}})
        if removed:
            log.info("audit.swept", removed=removed, before=cutoff)
        return removed


async def sweep_forever(trail: AuditTrail, retention: timedelta, every: float) -> None:
    """Sweeps now and then every `every` seconds until cancelled; a failed sweep is logged
    and tried again at the next turn."""
    while True:
        try:
            await trail.sweep(retention)
        except AortaError as exc:
            log.warning("audit.sweep_failed", error=str(exc))
        await asyncio.sleep(every)
