"""The verbs other parts of the platform call (their contracts: `aorta.contracts.PAYLOADS_*`).

The scheduler's: `create_for_job` (a job's PIPELINE payload, its REUSABLE inputs copied in),
`lock` (the job started: read-only and in use), `release` (the job stopped: no longer in
use, still read-only), `discard_for_job` (the job was never revealed: its payload goes) and
`delete_for_job` (the stopped job is deleted: its payload goes with it).

The gateway's, around the bytes it streams itself: `check_upload` before an upload stream and
again, taking a commit mark (`domain.CommitMark`), just before each file is committed;
`file_added` once a file is in the blob store, which records it and ends its mark
(`check_upload` with `release` ends one without a file); and `locate` to find the file a
Download names.

`create_for_job`, `check_upload`, `file_added` and `locate` act for a client's call: the caller
(`aorta.auth.caller`) must own the payload (for `create_for_job`, every input payload), or be
an admin; the platform's own calls carry no caller and may do anything.

A payload is never locked while a file is being committed into it (its mark is live): `lock`
is refused then (PAYLOAD_IN_USE), and a locked payload takes no mark, so the file is not
committed. A running job's input therefore never changes, neither gaining a file nor losing
one whose replacement came too late. A file whose upload completes after its payload's
deletion began is refused by `file_added` (PAYLOAD_NOT_FOUND), and the gateway deletes the
object it wrote: a deleted payload leaves none.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

from aorta import contracts, ids
from aorta.errors import AortaError, Conflict, ErrorCode, Invalid, NotFound
from aorta.ids import PayloadId
from aorta.logger import get_logger
from aorta.payload_layout import INPUT_FOLDER, payload_prefix
from aorta.payload_names import check_upload_name
from aorta_services.payloads.contents import PayloadContents
from aorta_services.payloads.domain import (
    FileRecord,
    PayloadKind,
    PayloadRecord,
    owned,
    plan_input_copies,
)
from aorta_services.payloads.events import EventPublisher
from aorta_services.payloads.removal import erase
from aorta_services.payloads.repository import PayloadRepository

log = get_logger(__name__)


class InternalVerbs:
    """The handlers of the platform-internal payload verbs."""

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

    async def create_for_job(self, command: contracts.CreateForJob) -> contracts.CreatedForJob:
        """A PIPELINE payload for the job, holding copies of its REUSABLE input payloads'
        `input/` files, in list order (`domain.plan_input_copies` refuses colliding names
        before anything is copied).

        The record is stored only once every copy is done, so the payload either exists whole
        or not at all; a failure removes what was copied. A retry for a job that has its
        payload already answers that payload (when the inputs are the same).
        """
        existing = await self._repository.find_for_job(command.job_id)
        if existing is not None:
            return self._existing(existing, command.input_payloads)
        known: dict[str, FileRecord] = {}
        inputs: list[tuple[PayloadId, list[str]]] = []
        for source_id in command.input_payloads:
            source = owned(await self._repository.get_present(source_id))
            if source.kind is not PayloadKind.REUSABLE:
                raise Invalid(
                    f"payload {source_id} is the PIPELINE payload of job {source.job_id}; only "
                    "REUSABLE payloads can be given as a job's input",
                    code=ErrorCode.PAYLOAD_REQUEST_INVALID,
                )
            inputs.append((source_id, await self._contents.input_names(source_id)))
            for name, file in (await self._repository.files(source_id)).items():
                known[f"{source_id}/{name}"] = file
        steps = plan_input_copies(inputs)
        record = PayloadRecord(
            PayloadId(ids.new_id()),
            PayloadKind.PIPELINE,
            job_id=command.job_id,
            input_payloads=command.input_payloads,
            owner=command.owner,
        )
        try:
            copied = await self._contents.copy_inputs(record.id, steps)
            document = await self._events.store_created(record, files=len(copied))
        except BaseException as error:
            await self._discard(record.id)
            if isinstance(error, Conflict):
                # Another request made this job's payload meanwhile (a retry after a timeout).
                winner = await self._repository.find_for_job(command.job_id)
                if winner is not None:
                    return self._existing(winner, command.input_payloads)
            raise
        # The job's start (its lock) removes the event; a job never started leaves that to
        # a replay (`aorta.outbox.LEAVE_SECONDS`).
        stored = await self._events.publish_created(document, later=True)
        for step, info in copied:
            name = f"{INPUT_FOLDER}/{step.name}"
            original = known.get(f"{step.source}/{name}")
            same = original is not None and original.size == info.size
            sha256 = info.sha256 or (original.sha256 if original is not None and same else None)
            mode = original.mode if original is not None else 0
            await self._repository.record_file(FileRecord(stored.id, name, info.size, sha256, mode))
        log.info(
            "payload.created",
            payload_id=stored.id,
            kind=stored.kind.value,
            job_id=command.job_id,
            inputs=len(command.input_payloads),
            files=len(copied),
        )
        return contracts.CreatedForJob(stored.id)

    async def lock(self, command: contracts.JobPayload) -> contracts.Done:
        """The job started: its payload becomes read-only for good, and in use. Refused
        (PAYLOAD_IN_USE) while an upload commits a file into it. The `locked` event stays
        staged, published, until the release's write removes it."""
        now = self._clock()
        await self._events.changed(
            command.payload_id,
            lambda current: current.locked(command.job_id, now),
            "locked",
            {"job_id": command.job_id},
            later=True,
        )
        log.info("payload.locked", payload_id=command.payload_id, job_id=command.job_id)
        return contracts.Done()

    async def release(self, command: contracts.JobPayload) -> contracts.Done:
        """The job stopped: its payload is no longer in use (and may be deleted)."""
        await self._events.changed(
            command.payload_id,
            lambda current: current.released(command.job_id),
            "released",
            {"job_id": command.job_id},
        )
        log.info("payload.released", payload_id=command.payload_id, job_id=command.job_id)
        return contracts.Done()

    async def discard_for_job(self, command: contracts.DiscardForJob) -> contracts.Discarded:
        """The job was never revealed (its `Jobs.Create` failed, or its scheduler died
        midway): its PIPELINE payload goes, files and records, as with Delete, and `deleted`
        is published. Answers the payload's id, or null when the job has none (none was made,
        or it is gone already), so a retry succeeds. A REUSABLE payload belongs to no job and
        is never touched; a locked one is refused (`PayloadRecord.marked_discarded`).
        """
        job_id = command.job_id
        found = await self._repository.find_for_job(job_id)
        if found is None:
            return contracts.Discarded(None)
        try:
            record = await self._repository.modify(
                found.id, lambda current: current.marked_discarded(job_id)
            )
        except NotFound:
            # A concurrent discard finished first.
            return contracts.Discarded(None)
        removed = await erase(self._repository, self._contents, self._events, record)
        log.info("payload.discarded", payload_id=record.id, job_id=job_id, files=removed)
        return contracts.Discarded(record.id)

    async def delete_for_job(self, command: contracts.DiscardForJob) -> contracts.Discarded:
        """The stopped job is being deleted: its PIPELINE payload goes, files and records, as
        with Delete, and `deleted` is published. Answers the payload's id, or null when the
        job has none left, so a retry succeeds. Only the payload's owner or an admin may
        (`aorta.auth.ownership`); a payload its job still holds is refused (PAYLOAD_IN_USE).
        """
        job_id = command.job_id
        found = await self._repository.find_for_job(job_id)
        if found is None:
            return contracts.Discarded(None)
        owned(found)
        try:
            record = await self._repository.modify(
                found.id, lambda current: current.marked_deleted_with_job(job_id)
            )
        except NotFound:
            # A concurrent deletion finished first.
            return contracts.Discarded(None)
        removed = await erase(self._repository, self._contents, self._events, record)
        log.info("payload.deleted_with_job", payload_id=record.id, job_id=job_id, files=removed)
        return contracts.Discarded(record.id)

    async def check_upload(self, command: contracts.CheckUpload) -> contracts.UploadAllowed:
        """Whether files may be uploaded now: PAYLOAD_NOT_FOUND, PAYLOAD_READ_ONLY if not.
        With `commit`, the payload is also marked as receiving a file, in the same check;
        with `release`, that mark ends (nothing is checked)."""
        now = self._clock()
        if command.release is not None:
            mark = command.release
            record = await self._repository.modify(
                command.payload_id, lambda current: owned(current).without_commit(mark, now)
            )
        elif command.commit is not None:
            mark = command.commit
            record = await self._repository.modify(
                command.payload_id, lambda current: owned(current).with_commit(mark, now)
            )
        else:
            record = owned(await self._repository.get_present(command.payload_id))
            record.check_writable()
        return contracts.UploadAllowed(record.id, record.kind.value, record.job_id)

    async def file_added(self, command: contracts.FileAdded) -> contracts.Done:
        """Records a file the gateway has put into the payload's `input/` folder.

        Refused with PAYLOAD_NOT_FOUND or PAYLOAD_READ_ONLY when the payload was deleted or
        locked while the file was on its way (locked only when it came without a live commit
        mark): the caller must then delete the object. The file's commit mark ends once it is
        recorded, so its job may start from then on.
        """
        name = f"{INPUT_FOLDER}/{check_upload_name(command.name)}"
        record = owned(await self._repository.get_present(command.payload_id))
        record.check_writable()
        await self._events.file_added(
            FileRecord(record.id, name, command.size, command.sha256, command.mode)
        )
        if command.commit is not None:
            await self._end_commit(record.id, command.commit)
        log.info("payload.file_added", payload_id=record.id, size=command.size)
        return contracts.Done()

    async def locate(self, command: contracts.Locate) -> contracts.Located:
        """The blob key, wire name, size and mode of the file a Download names."""
        record = owned(await self._repository.get_present(command.payload_id))
        stored = await self._contents.locate(record.id, command.name)
        known = await self._repository.file(record.id, stored.name)
        return contracts.Located(
            key=payload_prefix(record.id) + stored.name,
            name=stored.wire_name,
            size=stored.size,
            mode=known.mode if known is not None else 0,
        )

    async def _end_commit(self, payload_id: PayloadId, mark: str) -> None:
        """Ends a recorded file's commit mark. A failure here must not fail the upload, whose
        file is recorded: the mark then expires (`domain.COMMIT_SECONDS`)."""
        now = self._clock()
        try:
            await self._repository.modify(
                payload_id, lambda current: current.without_commit(mark, now)
            )
        except AortaError as error:
            log.warning("payload.commit_mark_kept", payload_id=payload_id, error=str(error))

    def _existing(
        self, record: PayloadRecord, inputs: Sequence[PayloadId]
    ) -> contracts.CreatedForJob:
        if tuple(inputs) != record.input_payloads:
            raise Conflict(
                f"job {record.job_id} already has payload {record.id}, made from other input "
                "payloads",
                code=ErrorCode.PAYLOAD_STORE_ERROR,
            )
        return contracts.CreatedForJob(record.id)

    async def _discard(self, payload_id: PayloadId) -> None:
        """Removes the files of a payload that was never stored; the original error matters
        more than a failure here (the files, unreferenced, are invisible to clients)."""
        with contextlib.suppress(AortaError):
            await self._contents.remove_all(payload_id)
