"""The blob side of payloads: which files a payload holds, which one a name means, copies, removal.

The blob store is the source of truth of a payload's files (see `aorta.payload_layout`): a file
exists when its object exists under `payloads/<id>/`, and it is as large as that object. Names
here are relative to the payload root (`input/scan.dcm`, `operators/seg/mask.nii`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import cast

from aorta.blobs import BlobInfo, BlobStore
from aorta.errors import Conflict, ErrorCode, NotFound
from aorta.ids import PayloadId
from aorta.payload_layout import (
    CHECKSUMS_MANIFEST,
    INPUT_FOLDER,
    input_key,
    input_prefix,
    output_checksums_key,
    payload_checksums_prefix,
    payload_prefix,
    read_checksum_manifest,
)
from aorta.payload_names import lookup_name, resolve
from aorta_services.payloads.domain import CopyStep, FileRecord

COPY_CONCURRENCY = 8
"""Copies in flight at once: S3 copies are one request each, so a payload of many small files
copies in a fraction of the time; a local copy streams, and eight streams keep a disk busy."""


@dataclass(frozen=True)
class StoredFile:
    """One file of a payload as the blob store holds it."""

    name: str
    size: int

    @property
    def wire_name(self) -> str:
        """The name Clara clients see: rooted at the payload (`/input/scan.dcm`)."""
        return "/" + self.name


class PayloadContents:
    """A payload's files in the blob store."""

    def __init__(self, blobs: BlobStore, *, copy_concurrency: int = COPY_CONCURRENCY) -> None:
        self._blobs = blobs
        self._copy_concurrency = copy_concurrency

    async def files(self, payload_id: PayloadId) -> AsyncGenerator[StoredFile, None]:
        """Every file of the payload, sorted by name (`input/` before `operators/`)."""
        prefix = payload_prefix(payload_id)
        async with aclosing(_generator(self._blobs.list(prefix))) as listing:
            async for info in listing:
                yield StoredFile(info.key[len(prefix) :], info.size)

    async def input_names(self, payload_id: PayloadId) -> list[str]:
        """The names of the payload's `input/` files, relative to that folder, sorted."""
        prefix = input_prefix(payload_id)
        async with aclosing(_generator(self._blobs.list(prefix))) as listing:
            return [info.key[len(prefix) :] async for info in listing]

    async def locate(self, payload_id: PayloadId, name: str) -> StoredFile:
        """The file a lookup name means (`aorta.payload_names.resolve`).

        `Invalid` (PAYLOAD_FILE_NAME_INVALID) for a malformed name, `NotFound`
        (PAYLOAD_FILE_NOT_FOUND) when it means no file or several.
        """
        wanted = lookup_name(name)
        try:
            # The exact name wins whatever else exists: no listing needed.
            info = await self._blobs.stat(payload_prefix(payload_id) + wanted)
            return StoredFile(wanted, info.size)
        except NotFound:
            pass
        known: dict[str, StoredFile] = {}
        async with aclosing(self.files(payload_id)) as listing:
            async for stored in listing:
                known[stored.name] = stored
        return known[resolve(payload_id, wanted, known)]

    async def copy_inputs(
        self, target: PayloadId, steps: Sequence[CopyStep]
    ) -> list[tuple[CopyStep, BlobInfo]]:
        """Copies each step's `input/` file of its source into `target`'s `input/` (server-side
        where the store can), a few at a time; returns what each copy wrote, in step order.

        On failure or cancellation the copies in flight are cancelled and the error raised;
        what was copied stays: the caller removes `target`'s files. `Conflict`
        (PAYLOAD_STORE_ERROR) when a source file disappeared meanwhile.
        """
        room = asyncio.Semaphore(self._copy_concurrency)

        async def copy(step: CopyStep) -> tuple[CopyStep, BlobInfo]:
            async with room:
                source = input_key(step.source, step.name)
                try:
                    return step, await self._blobs.copy(source, input_key(target, step.name))
                except NotFound:
                    raise Conflict(
                        f"{INPUT_FOLDER}/{step.name} of payload {step.source} was removed while "
                        "it was being copied; create the job again",
                        code=ErrorCode.PAYLOAD_STORE_ERROR,
                    ) from None

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(copy(step)) for step in steps]
        except BaseExceptionGroup as failed:
            # The first failure is the cause; the others are its consequences or the same.
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def remove(self, payload_id: PayloadId, name: str) -> None:
        """Deletes one file; `NotFound` (PAYLOAD_FILE_NOT_FOUND) when it is gone already."""
        try:
            await self._blobs.delete(payload_prefix(payload_id) + name)
        except NotFound:
            raise NotFound(
                f"payload {payload_id} has no file named {'/' + name!r}",
                code=ErrorCode.PAYLOAD_FILE_NOT_FOUND,
            ) from None

    async def remove_all(self, payload_id: PayloadId) -> int:
        """Deletes every file of the payload, and the checksums of its outputs; returns how
        many files there were."""
        removed = await self._blobs.delete_prefix(payload_prefix(payload_id))
        await self._blobs.delete_prefix(payload_checksums_prefix(payload_id))
        return removed

    async def manifest_prefixes(self, payload_id: PayloadId) -> list[str]:
        """The folders of the payload (names relative to it, ending with `/`) whose files an
        executor stored with a checksum manifest (`aorta.payload_layout`), longest first: one
        per operator output, so the list is short however many files the outputs hold."""
        prefix = payload_checksums_prefix(payload_id)
        found = []
        async with aclosing(_generator(self._blobs.list(prefix))) as manifests:
            async for manifest in manifests:
                if manifest.key.endswith(CHECKSUMS_MANIFEST):
                    found.append(manifest.key[len(prefix) : -len(CHECKSUMS_MANIFEST)])
        return sorted(found, key=len, reverse=True)

    async def output_checksums(self, payload_id: PayloadId, folder: str) -> dict[str, FileRecord]:
        """What the executor recorded of the files it stored in `folder` of the payload (one
        of `manifest_prefixes`), as file records by name; none when the manifest is gone."""
        key = output_checksums_key(payload_prefix(payload_id) + folder)
        try:
            data = b"".join([chunk async for chunk in self._blobs.get(key)])
        except NotFound:
            return {}  # replaced by a later attempt meanwhile
        prefix = payload_prefix(payload_id)
        return {
            item.key[len(prefix) :]: FileRecord(
                payload_id, item.key[len(prefix) :], item.size, item.sha256
            )
            for item in read_checksum_manifest(key, data).values()
            if item.key.startswith(prefix)
        }


def _generator(listing: AsyncIterator[BlobInfo]) -> AsyncGenerator[BlobInfo, None]:
    """The port types `list` as an iterator, but documents it as an async generator: typed so,
    it can be closed as soon as it is no longer needed rather than when collected."""
    return cast(AsyncGenerator[BlobInfo, None], listing)
