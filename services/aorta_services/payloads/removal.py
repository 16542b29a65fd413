"""Erasing a payload whose deletion began: what Delete and the scheduler's `discard_for_job`
share, so both leave the store and the blobs the same way."""

from __future__ import annotations

from aorta_services.payloads.contents import PayloadContents
from aorta_services.payloads.domain import PayloadRecord
from aorta_services.payloads.events import EventPublisher
from aorta_services.payloads.repository import PayloadRepository


async def erase(
    repository: PayloadRepository,
    contents: PayloadContents,
    events: EventPublisher,
    record: PayloadRecord,
) -> int:
    """Removes the files of payload `record` (marked `deleting` already), then their
    records, then its own record with its `deleted` event; returns how many files there were.

    The record goes last: until then the payload stays marked, so a retry finds it and
    finishes the work.
    """
    removed = await contents.remove_all(record.id)
    await repository.forget_files(record.id)
    await events.deleted(record, removed)
    return removed
