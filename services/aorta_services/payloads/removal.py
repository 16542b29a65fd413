"""Erasing a payload whose deletion began: what Delete and the scheduler's `discard_for_job`
share, so both leave the store and the blobs the same way."""

from __future__ import annotations

from aorta.ids import PayloadId
from aorta_services.payloads.contents import PayloadContents
from aorta_services.payloads.repository import PayloadRepository


async def erase(
    repository: PayloadRepository, contents: PayloadContents, payload_id: PayloadId
) -> int:
    """Removes the files of payload `payload_id` (marked `deleting` already), then their
    records, then its own record; returns how many files there were.

    The record goes last: until then the payload stays marked, so a retry finds it and
    finishes the work.
    """
    removed = await contents.remove_all(payload_id)
    await repository.forget_files(payload_id)
    await repository.delete(payload_id)
    return removed
