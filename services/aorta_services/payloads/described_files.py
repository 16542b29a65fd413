"""A payload's files, each with what is known of it, for `Payloads.Details`, in bounded memory.

The blob store lists the files in name order; the upload records are read from the store in
the same order, a page at a time, and joined as the listing goes; an operator output's
checksum manifest is read when the listing enters its folder and dropped when it enters
another. So a Details of a payload of a hundred thousand files holds one page of records and
one manifest, never all of them. Both orders are code point order (the blob port's and the
store's for strings), so the join never misses a record.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

from aorta.ids import PayloadId
from aorta_services.payloads.contents import PayloadContents, StoredFile
from aorta_services.payloads.domain import FileRecord
from aorta_services.payloads.repository import PayloadRepository


class _Records:
    """The upload records of one payload in name order, looked up by ascending names."""

    def __init__(self, pages: AsyncIterator[list[FileRecord]]) -> None:
        self._pages = pages
        self._page: list[FileRecord] = []
        self._at = 0
        self._done = False

    async def find(self, name: str) -> FileRecord | None:
        """The record of `name`, passing over those of names before it; the names asked for
        must not decrease from one call to the next."""
        while not self._done:
            if self._at == len(self._page):
                page = await anext(self._pages, None)
                if page is None:
                    self._done = True
                    break
                self._page, self._at = page, 0
                continue
            record = self._page[self._at]
            if record.name > name:
                return None
            self._at += 1
            if record.name == name:
                return record
        return None


async def described_files(
    payload_id: PayloadId, contents: PayloadContents, repository: PayloadRepository
) -> AsyncGenerator[tuple[StoredFile, FileRecord | None], None]:
    """Every stored file of the payload in name order, with its upload record or else what
    the executor's manifest says of it (uploads' records win: they name the same file only
    when a client uploaded over an output, which only the records then describe)."""
    folders = await contents.manifest_prefixes(payload_id)
    manifest_folder: str | None = None
    manifest: dict[str, FileRecord] = {}
    pages = repository.file_pages(payload_id)
    records = _Records(pages)
    async with aclosing(pages), aclosing(contents.files(payload_id)) as listing:
        async for stored in listing:
            known = await records.find(stored.name)
            if known is None:
                folder = next((f for f in folders if stored.name.startswith(f)), None)
                if folder is not None and folder != manifest_folder:
                    manifest_folder = folder
                    manifest = await contents.output_checksums(payload_id, folder)
                known = manifest.get(stored.name) if folder is not None else None
            yield stored, known
