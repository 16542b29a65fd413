"""`aorta.v1.Jobs/Page`: its filter, cursor and answer (pure, no I/O).

A page is read from the store's keyset pages (`Collection.pages`) in `LIST_KEY` order, newest
first, starting after the job the cursor names. The cursor is that job's key, (created time,
job id), exactly as stored, so the next page is a range read of the same index however many
jobs lie before it, and jobs created meanwhile never shift it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from aorta.api import aorta_jobs_pb2, jobs_pb2
from aorta.errors import ErrorCode, Invalid
from aorta_services.scheduler.domain import list_wire
from aorta_services.scheduler.domain.listing import JobListing
from aorta_services.scheduler.domain.requests import list_filter, unix_seconds

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_PAGE_BYTES = 4 * 1024 * 1024
"""About the most bytes of jobs one answer carries (a page ends early before more), so a page
of jobs carrying megabytes of metadata still fits one bus message."""

Cursor = tuple[float, str]
"""(created, job id) of the last job of a page, as the store holds them."""


def page_size(message: aorta_jobs_pb2.JobsPageRequest) -> int:
    """The jobs the request asks for: `DEFAULT_PAGE_SIZE` for 0, else 1 to `MAX_PAGE_SIZE`."""
    if message.page_size == 0:
        return DEFAULT_PAGE_SIZE
    if message.page_size > MAX_PAGE_SIZE:
        raise Invalid(
            f"page_size {message.page_size} is above the most a page holds, {MAX_PAGE_SIZE}",
            code=ErrorCode.JOB_REQUEST_INVALID,
        )
    return message.page_size


def page_filter(message: aorta_jobs_pb2.JobsPageRequest) -> dict[str, Any]:
    """The store filter for the request's filters, the same as Jobs.List's for the ones they
    share (`list_filter`), with the created-before bound."""
    conditions = list_filter(
        jobs_pb2.JobsListRequest(
            filter=jobs_pb2.JobsListRequest.JobFilter(
                has_state=message.has_state,
                has_status=message.has_status,
                pipeline_id=message.pipeline_id,
                created_after=message.created_after,
            )
        )
    )
    if message.created_before.value > 0:
        created = conditions.setdefault("created", {})
        created["$lt"] = unix_seconds(message.created_before.value)
    return conditions


def encode_cursor(cursor: Cursor) -> str:
    """The opaque text a client passes back to read the page after `cursor`."""
    raw = json.dumps([cursor[0], cursor[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor | None:
    """The key a cursor names (None for the empty cursor); `Invalid` for other text."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created, job_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        created, job_id = None, None
    if (
        isinstance(created, bool)
        or not isinstance(created, int | float)
        or not isinstance(job_id, str)
    ):
        raise Invalid(
            "the cursor is not one Jobs.Page gave; start again without it",
            code=ErrorCode.JOB_REQUEST_INVALID,
        )
    return float(created), job_id


def page_answer(listed: Sequence[JobListing], size: int) -> bytes:
    """The serialized answer for the jobs read after the cursor (up to `size + 1`, the extra
    one only telling that more follow): at most `size` jobs and about `MAX_PAGE_BYTES`, at
    least one, and the cursor of the last one sent when any job is left out."""
    sent: list[bytes] = []
    total = 0
    for job in listed[:size]:
        details = list_wire.job_details(job)
        if sent and total + len(details) > MAX_PAGE_BYTES:
            break
        sent.append(details)
        total += len(details)
    cursor = ""
    if len(sent) < len(listed):
        last = listed[len(sent) - 1]
        cursor = encode_cursor((last.created, last.id))
    return list_wire.page(sent, cursor)
