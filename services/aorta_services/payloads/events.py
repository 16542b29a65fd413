"""The service's domain events, staged in the store with the change they describe and
published after it (`aorta.outbox`: at least once, the CloudEvent id the deduplication key).

Types (CloudEvents `org.aorta.payload.<event>`, subject `aorta.events.payload.<id>.<event>`):

- `created`: `{"payload_id", "type": "PIPELINE" | "REUSABLE", "job_id": str | null,
  "files": int}` (`files`: how many input files a job's payload was given by copy);
- `deleted`: `{"payload_id", "type", "job_id", "files": int}` (`files`: how many were removed),
  after a Delete or after the payload of a job that was never revealed was discarded;
- `file.added`: `{"payload_id", "name", "size", "sha256": str | null}` after an upload;
- `file.removed`: `{"payload_id", "name", "size"}`;
- `metadata_changed`: `{"payload_id", "change": "added" | "removed", "keys": int}` (`keys`:
  how many the request named) after AddMetadata or RemoveMetadata;
- `locked`: `{"payload_id", "job_id"}` when its job starts (read-only, in use: the job's
  outputs appear in it from then on, without events of the payload);
- `released`: `{"payload_id", "job_id"}` when its job stopped.

`name` is the file's rooted wire name (`/input/scan.dcm`).

Where each is staged: `created` in the payload's document, in the insert that creates it (so
it is published if and only if the payload was stored), and `metadata_changed`, `locked` and
`released` in the document's update that makes the change; `deleted` apart, once the files are
gone and before the payload's record is removed, carrying what the document still had pending;
`file.added` and `file.removed` apart, before the file's record is written or removed. An
event staged apart is published when its record ended up as the change meant (the module
docstring of `aorta.outbox` says exactly when).

A job's payload is written three times in a row: Create (`created`), the job's start
(`locked`) and its stop (`released`). The first two leave the removal of their published
event to the next (`Outbox.flush(..., later=True)`), so a started job's payload costs one
write per change and one more to remove `released`, not two per change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aorta.bus import CloudEvent, make_event
from aorta.errors import AortaError
from aorta.ids import PayloadId
from aorta.outbox import Outbox
from aorta.store import Document
from aorta_services.payloads.domain import FileRecord, PayloadRecord, file_document_id
from aorta_services.payloads.repository import PayloadRepository

SERVICE = "payloads"
ENTITY = "payload"


def payload_event(payload_id: PayloadId, event: str, data: Mapping[str, Any]) -> CloudEvent:
    """`event` about the payload with `data` (plus `payload_id`)."""
    return make_event(SERVICE, ENTITY, payload_id, event, {"payload_id": payload_id, **data})


class EventPublisher:
    """Stores payload changes with their events and publishes them (module docstring)."""

    def __init__(self, outbox: Outbox, repository: PayloadRepository) -> None:
        self._outbox = outbox
        self._repository = repository

    async def created(self, record: PayloadRecord, files: int) -> PayloadRecord:
        """Inserts `record` with its `created` event staged, then publishes it; raises what
        `PayloadRepository.insert` raises (nothing is stored then)."""
        return await self.publish_created(await self.store_created(record, files))

    async def store_created(self, record: PayloadRecord, files: int) -> Document:
        """`created`'s first step: inserts `record` with its event staged."""
        return await self._repository.insert(record, _payload(record, "created", files))

    async def publish_created(self, document: Document, *, later: bool = False) -> PayloadRecord:
        """`created`'s second step: publishes the event staged in `document`; with `later`,
        its removal is left to the payload's next change (a job's payload: its lock)."""
        await self._outbox.flush(self._repository.payloads, document, later=later)
        return PayloadRecord.from_document(document)

    async def changed(
        self,
        id: PayloadId,
        change: Callable[[PayloadRecord], PayloadRecord],
        event: str,
        data: Mapping[str, Any],
        *,
        later: bool = False,
    ) -> PayloadRecord:
        """Applies `change` to payload `id` (`PayloadRepository.modify`) with `event` staged
        in the same write, and the events published before and left staged removed, then
        publishes it; raises what `modify` raises (nothing is stored then). With `later`,
        its removal is left to the payload's next change too."""
        payloads = self._repository.payloads
        left = self._outbox.left(payloads, id)
        document = await self._repository.modify_staged(
            id, change, lambda record: payload_event(record.id, event, data), published=left
        )
        self._outbox.removed(payloads, id, left)
        await self._outbox.flush(payloads, document, later=later)
        return PayloadRecord.from_document(document)

    async def deleted(self, record: PayloadRecord, files: int) -> None:
        """Removes the record of payload `record` (its files gone already, `removed`
        counted) with its `deleted` event staged apart, then publishes it. An absent record
        (a concurrent deletion finished first) is left to that deletion and its event."""
        document = await self._repository.get_document(record.id)
        if document is None:
            return
        # Marked deleting, the payload has no other event to stage: no version to expect.
        entry = await self._outbox.stage_apart(
            _payload(record, "deleted", files), self._repository.payloads, record.id, document
        )
        await self._written(entry, self._repository.delete(record.id))

    async def file_added(self, record: FileRecord) -> None:
        """Writes the file's record with its `file.added` event staged apart, then publishes."""
        data = {"name": "/" + record.name, "size": record.size, "sha256": record.sha256}
        entry = await self._file_entry(record.payload_id, record.name, "file.added", data)
        await self._written(entry, self._repository.record_file(record))

    async def file_removed(
        self, payload_id: PayloadId, name: str, wire_name: str, size: int
    ) -> None:
        """Removes the file's record with its `file.removed` event staged apart, then
        publishes it."""
        data = {"name": wire_name, "size": size}
        entry = await self._file_entry(payload_id, name, "file.removed", data)
        await self._written(entry, self._repository.forget_file(payload_id, name))

    async def _file_entry(
        self, payload_id: PayloadId, name: str, event: str, data: Mapping[str, Any]
    ) -> Document:
        id = file_document_id(payload_id, name)
        return await self._outbox.stage_apart(
            payload_event(payload_id, event, data),
            self._repository.file_records,
            id,
            await self._repository.file_records.find_one({"id": id}),
        )

    async def _written(self, entry: Mapping[str, Any], write: Awaitable[None]) -> None:
        try:
            await write
        except AortaError:
            await self._outbox.discard_apart(entry)
            raise
        await self._outbox.publish_apart(entry)


def _payload(record: PayloadRecord, event: str, files: int) -> CloudEvent:
    data = {"type": record.kind.value, "job_id": record.job_id, "files": files}
    return payload_event(record.id, event, data)
