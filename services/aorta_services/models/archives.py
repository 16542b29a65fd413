"""Model archives in the blob store: accepting an upload, and handing archives to the pool.

An upload arrives as a staging blob the gateway streamed (`staging/models/<random>.zip`). The
service copies it into a local work folder (ZIP needs random access), checks it whole
(`aorta.triton.archive`), and only then stores it under `models/<model id>/<revision>/model.zip`
and writes the record; the staging blob is removed whatever happens. A refused upload leaves
nothing behind. Replacing a model (same name) writes the new revision first, switches the record
to it (optimistic concurrency: a replacement that lost a race tries again on the winner's
state), and only then removes the previous revision's archive.

The work folder is this process's own (locked like the blob store's staging folders), so the
leftovers of a process that died are removed by the next one; staging blobs older than an hour
(a gateway that died mid-upload) are removed when the service starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import timedelta
from pathlib import Path

from aorta.blobs import BlobStore
from aorta.blobs.staging import claim_staging, remove_stale_staging
from aorta.contracts import UploadModel
from aorta.errors import AortaError, Conflict, ErrorCode, Invalid, NotFound
from aorta.ids import ModelId, new_id
from aorta.logger import get_logger
from aorta.metadata import add_metadata
from aorta.opened_files import open_in_thread
from aorta.store import kept_changing, optimistic_update
from aorta.timestamps import utcnow
from aorta.triton.archive import ArchiveLimits, ModelArchive, inspect_archive
from aorta_services.models.answers import check_details_fit
from aorta_services.models.domain.model_record import STAGING_PREFIX, ModelRecord, archive_key
from aorta_services.models.events import uploaded
from aorta_services.models.repository import ModelRepository

log = get_logger(__name__)

STALE_STAGING = timedelta(hours=1)


class ModelArchives:
    """Upload acceptance and archive retrieval over one blob store and one model repository."""

    def __init__(
        self,
        repository: ModelRepository,
        blobs: BlobStore,
        limits: ArchiveLimits,
        work: Path,
        work_lock: int,
    ) -> None:
        self._repository = repository
        self._blobs = blobs
        self._limits = limits
        self._work = work
        self._work_lock = work_lock

    @classmethod
    async def open(
        cls, repository: ModelRepository, blobs: BlobStore, limits: ArchiveLimits, root: Path
    ) -> ModelArchives:
        """Claims a work folder under `root`, removing those of dead processes."""

        def claim() -> tuple[Path, int]:
            remove_stale_staging(root)
            return claim_staging(root)

        work, lock = await asyncio.to_thread(claim)
        return cls(repository, blobs, limits, work, lock)

    async def close(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self._work, True)
        os.close(self._work_lock)

    async def sweep_staging(self) -> int:
        """Removes staging blobs older than `STALE_STAGING`; how many."""
        cutoff = utcnow() - STALE_STAGING
        stale = [
            info.key async for info in self._blobs.list(STAGING_PREFIX) if info.modified < cutoff
        ]
        for key in stale:
            await self._discard(key)
        return len(stale)

    async def accept(self, command: UploadModel) -> tuple[ModelRecord, ModelRecord | None]:
        """Checks and stores the upload; returns the stored record and the one it replaced.

        `Invalid` (MODEL_ARCHIVE_INVALID, MODEL_REQUEST_INVALID, METADATA_INVALID) when the
        upload is refused; nothing is stored then. The staging blob is removed in every case.
        """
        if not command.staging_key.startswith(STAGING_PREFIX):
            await self._discard(command.staging_key)
            raise Invalid(
                "an upload must come from the staging area", code=ErrorCode.MODEL_REQUEST_INVALID
            )
        local = self._work / f"{new_id()}.zip"
        try:
            await self._download(command.staging_key, local)
            archive = await asyncio.to_thread(
                inspect_archive, local, name=command.name, limits=self._limits
            )
            metadata = add_metadata({}, command.metadata)
            return await self._store(command, archive, metadata)
        finally:
            await asyncio.to_thread(local.unlink, True)
            await self._discard(command.staging_key)

    async def _store(
        self, command: UploadModel, archive: ModelArchive, metadata: dict[str, str]
    ) -> tuple[ModelRecord, ModelRecord | None]:
        """Copies the archive into place and writes the record, as a new model or over the one
        of the same name; a model of that name created, replaced or deleted meanwhile is a lost
        race, tried again (`aorta.store.optimistic_update`), MODEL_STORE_ERROR when it keeps
        losing. Returns the stored record and the one it replaced."""
        revision = new_id()
        copied: str | None = None

        async def read() -> tuple[ModelRecord, ModelRecord | None]:
            nonlocal copied
            existing = await self._repository.by_name(archive.name)
            model_id = existing.id if existing else ModelId(new_id())
            key = archive_key(model_id, revision)
            record = ModelRecord(
                id=model_id,
                name=archive.name,
                type=command.type,
                revision=revision,
                archive_key=key,
                archive_size=command.size,
                archive_sha256=command.sha256,
                metadata=metadata,
                backend=archive.backend or archive.platform,
                version=existing.version if existing else 0,
            )
            check_details_fit(record.details())
            if copied != key:
                if copied is not None:
                    await self._discard(copied)
                await self._blobs.copy(command.staging_key, key)
                copied = key
            return record, existing

        async def write(
            prepared: tuple[ModelRecord, ModelRecord | None],
        ) -> tuple[ModelRecord, ModelRecord | None]:
            record, existing = prepared
            if existing is None:
                return await self._repository.insert(record, uploaded(record, replaced=False)), None
            try:
                replacement = await self._repository.replace(
                    record, uploaded(record, replaced=True)
                )
                return replacement, existing
            except NotFound:
                # Deleted since it was read: a lost race too, and the next try creates it anew.
                raise Conflict(f"model {archive.name!r} was deleted meanwhile") from None

        busy = kept_changing(f"model {archive.name!r}", code=ErrorCode.MODEL_STORE_ERROR)
        try:
            stored, existing = await optimistic_update(read, write, gave_up=busy)
        except Conflict:
            # A Conflict comes before any write or after every write lost its race: no record
            # refers to the copy.
            if copied is not None:
                await self._discard(copied)
            raise
        if existing is not None:
            await self._discard(existing.archive_key)
        return stored, existing

    async def write_archive(self, name: str, revision: str, into: Path) -> None:
        """The pool's `ModelSource`: writes the archive of `name` at `revision` to `into`."""
        record = await self._repository.by_name(name)
        if record is None or record.revision != revision:
            raise NotFound(
                f"model {name!r} was deleted or replaced while being loaded; try again",
                code=ErrorCode.MODEL_NOT_FOUND,
            )
        try:
            await self._download(record.archive_key, into)
        except NotFound:
            raise NotFound(
                f"the archive of model {name!r} is missing from the blob store",
                code=ErrorCode.MODEL_NOT_FOUND,
            ) from None

    async def _download(self, key: str, target: Path) -> None:
        sink = await open_in_thread(target.open, "wb")
        try:
            async for chunk in self._blobs.get(key):
                await asyncio.to_thread(sink.write, chunk)
        finally:
            await asyncio.to_thread(sink.close)

    async def _discard(self, key: str) -> None:
        try:
            await self._blobs.delete(key)
        except NotFound:
            return
        except AortaError as error:  # a leftover blob is not worth failing the request for
            log.warning("models.blob_not_removed", key=key, error=str(error))
