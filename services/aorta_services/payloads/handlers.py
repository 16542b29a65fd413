"""The Clara verbs of the service: Create, Delete, Details, Remove, AddMetadata, RemoveMetadata.

A payload records the subject that created it (`owner`); every verb but Create and Details is
its owner's or an admin's (`aorta.auth.ownership`), checked on the record the verb reads;
Details is a viewer's and an admin's too (`check_reader`).

Each receives the Clara request message the gateway forwarded, checks the whole request before
it changes anything, and publishes its event only after the store write. Upload and Download
never reach these handlers with bytes: the gateway streams them to and from the blob store and
uses the internal verbs (`internal`) to check and record.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from aorta import ids
from aorta.api import payloads_pb2
from aorta.auth.ownership import FORCE_HEADER, check_may_force, check_reader
from aorta.auth.principal import current_principal
from aorta.bus import Request
from aorta.errors import AortaError, ErrorCode, Invalid
from aorta.ids import PayloadId
from aorta.logger import get_logger
from aorta.metadata import add_metadata, remove_metadata
from aorta_services.payloads import answers, wire
from aorta_services.payloads.contents import PayloadContents
from aorta_services.payloads.described_files import described_files
from aorta_services.payloads.domain import PayloadKind, PayloadRecord, owned
from aorta_services.payloads.events import EventPublisher
from aorta_services.payloads.removal import erase
from aorta_services.payloads.repository import PayloadRepository

log = get_logger(__name__)


class ClaraVerbs:
    """The handlers of the Payloads RPCs the gateway forwards as they are."""

    def __init__(
        self,
        repository: PayloadRepository,
        contents: PayloadContents,
        events: EventPublisher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._contents = contents
        self._events = events
        self._clock = clock

    async def create(self, request: Request) -> bytes:
        """Create: a new, empty REUSABLE payload with the request's metadata."""
        message = wire.parse_message(request.data, payloads_pb2.PayloadsCreateRequest)
        metadata = add_metadata({}, dict(message.metadata))
        record = PayloadRecord(
            PayloadId(ids.new_id()),
            PayloadKind.REUSABLE,
            metadata=metadata,
            owner=current_principal().subject,
        )
        answers.check_metadata_fits(record)
        stored = await self._events.created(record, files=0)
        log.info("payload.created", payload_id=stored.id, kind=stored.kind.value)
        return answers.created(stored)

    async def delete(self, request: Request) -> bytes:
        """Delete: the whole payload, files and records.

        A job's PIPELINE payload is never deleted alone while its job can run (PAYLOAD_IN_USE,
        naming the job), and once the job stopped only with it (`aorta.v1.Jobs/Delete`) or by
        an admin's forced Delete (`aorta.auth.ownership.FORCE_HEADER`; PAYLOAD_READ_ONLY otherwise):
        `PayloadRecord.marked_deleting`. The payload is marked first, so it is gone for every
        caller from then on (an upload finishing meanwhile is refused and its file removed); a
        Delete interrupted midway is finished by the next one.
        """
        message = wire.parse_message(request.data, payloads_pb2.PayloadsDeleteRequest)
        id = ids.payload_id(message.payload_id.value)
        force = request.headers.get(FORCE_HEADER) == "true"
        if force:
            check_may_force(f"payload {id}")
        record = await self._repository.modify(
            id, lambda current: owned(current).marked_deleting(force=force)
        )
        if force and record.kind is PayloadKind.PIPELINE:
            log.warning("payload.deleted_without_job", payload_id=id, job_id=record.job_id)
        removed = await erase(self._repository, self._contents, self._events, record)
        log.info("payload.deleted", payload_id=id, files=removed)
        return answers.deleted()

    async def details(self, request: Request) -> AsyncIterator[bytes]:
        """Details (`contracts.PAYLOADS_DETAILS`): one message per file
        (`answers.details_item`), in name order, listed from the blob store as it streams
        (`described_files`: memory bounded by a page, whatever the number of files), one
        without a file for an empty payload; each with the payload's owner and whether it is
        settled (`answers.details_settled`). A viewer's and an admin's about every payload, a
        `user`'s about its own (`check_reader`)."""
        message = wire.parse_message(request.data, payloads_pb2.PayloadsDetailsRequest)
        record = await self._repository.get_present(ids.payload_id(message.payload_id.value))
        check_reader(record.owner, f"payload {record.id}")
        first = True
        files = described_files(record.id, self._contents, self._repository)
        async with aclosing(files) as listing:
            async for stored, known in listing:
                item = answers.details_item(record, stored, known, first=first)
                first = False
                settled = answers.details_settled(record, stored, known)
                yield answers.details_answer(record, item, settled=settled)
        if first:
            yield answers.details_answer(
                record,
                answers.details_item(record, None, None, first=True),
                settled=answers.details_settled(record, None, None),
            )

    async def remove(self, request: Request) -> bytes:
        """Remove: one file, named as `Details` lists it (see `aorta.payload_names`). The
        payload is marked while the file goes, as while an upload commits one, so its job
        cannot start meanwhile (`PayloadRecord.locked`)."""
        message = wire.parse_message(request.data, payloads_pb2.PayloadsRemoveRequest)
        id = ids.payload_id(message.payload_id.value)
        if not message.name:
            raise Invalid(
                "name the file to remove as Payloads.Details lists it, e.g. /input/scan.dcm",
                code=ErrorCode.PAYLOAD_FILE_NAME_INVALID,
            )
        # Marked as an upload's commit is (`PayloadRecord.with_commit`), so that the payload's
        # job cannot start while its input loses the file.
        mark = ids.new_id()
        await self._repository.modify(
            id, lambda current: owned(current).with_commit(mark, self._clock())
        )
        try:
            stored = await self._contents.locate(id, message.name)
            await self._contents.remove(id, stored.name)
            await self._events.file_removed(id, stored.name, stored.wire_name, stored.size)
        finally:
            await self._end_mark(id, mark)
        log.info("payload.file_removed", payload_id=id, size=stored.size)
        return answers.removed()

    async def _end_mark(self, id: PayloadId, mark: str) -> None:
        """Ends a Remove's mark; should that fail, the mark expires (`COMMIT_SECONDS`)."""
        try:
            await self._repository.modify(
                id, lambda current: current.without_commit(mark, self._clock())
            )
        except AortaError as error:
            log.warning("payload.commit_mark_kept", payload_id=id, error=str(error))

    async def add_metadata(self, request: Request) -> bytes:
        """AddMetadata: Clara's rules (`aorta.metadata`), REUSABLE payloads only."""
        message = wire.parse_message(request.data, payloads_pb2.PayloadsAddMetadataRequest)
        id = ids.payload_id(message.payload_id.value)
        new = dict(message.metadata)

        def added(current: PayloadRecord) -> PayloadRecord:
            record = owned(current).with_metadata(add_metadata(current.metadata, new))
            answers.check_metadata_fits(record)
            return record

        data = {"change": "added", "keys": len(new)}
        stored = await self._events.changed(id, added, "metadata_changed", data)
        log.info("payload.metadata_added", payload_id=id, keys=len(new))
        return answers.metadata_added(stored)

    async def remove_metadata(self, request: Request) -> bytes:
        """RemoveMetadata: absent keys are ignored (see `aorta.metadata`); REUSABLE only."""
        message = wire.parse_message(request.data, payloads_pb2.PayloadsRemoveMetadataRequest)
        id = ids.payload_id(message.payload_id.value)
        keys = list(message.keys)
        stored = await self._events.changed(
            id,
            lambda current: owned(current).with_metadata(remove_metadata(current.metadata, keys)),
            "metadata_changed",
            {"change": "removed", "keys": len(keys)},
        )
        log.info("payload.metadata_removed", payload_id=id, keys=len(keys))
        return answers.metadata_removed(stored)
