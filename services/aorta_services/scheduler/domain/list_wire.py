"""A `Jobs.List` item and an `aorta.v1.Jobs/Page` answer encoded straight to protobuf wire
bytes (pure, no I/O).

Building a `JobsListResponse` and serializing it costs about a hundred microseconds a job in
Python (message objects, three datetimes twice each), the largest part of what a whole List of
a long history costs. This writes the same message field by field, each time converted once,
so that a List of 100,000 jobs is not bounded by it. The bytes parse to exactly the message
`answers.list_item` builds (tests/unit/scheduler/test_list_wire.py compares them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from aorta.errors import ErrorCode, Invalid
from aorta_services.scheduler.domain.listing import JobListing
from aorta_services.scheduler.domain.states import JobPhase, JobPriority

_LENGTH_DELIMITED, _VARINT = 2, 0


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = tuple(bytes((n,)) for n in range(0x80))


def _tag(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


# The tags of JobsListResponse's fields and its JobDetails' (protos/aorta/api/jobs.proto);
# aorta.v1.JobsPageResponse has the same header and details fields, and its cursor.
_HEADER, _DETAILS = _tag(1, _LENGTH_DELIMITED), _tag(2, _LENGTH_DELIMITED)
_CURSOR = _tag(3, _LENGTH_DELIMITED)
_JOB_ID, _PAYLOAD_ID, _PIPELINE_ID, _NAME = (_tag(n, _LENGTH_DELIMITED) for n in (1, 2, 3, 4))
_STATE, _STATUS, _PRIORITY = (_tag(n, _VARINT) for n in (5, 6, 7))
_CREATED_TEXT, _STARTED_TEXT, _STOPPED_TEXT = (_tag(n, _LENGTH_DELIMITED) for n in (10, 11, 12))
_CREATED, _STARTED, _STOPPED, _METADATA = (_tag(n, _LENGTH_DELIMITED) for n in (13, 14, 15, 16))
# Field 1 of an Identifier (value) and of a map entry (key), field 2 of a map entry (value).
_KEY = _IDENTIFIER_VALUE = _tag(1, _LENGTH_DELIMITED)
_VALUE = _tag(2, _LENGTH_DELIMITED)
_TIMESTAMP_VALUE = _tag(1, _VARINT)
# A ResponseHeader with code 0 and no messages: present, empty.
_EMPTY_HEADER = _HEADER + _varint(0)


def _delimited(tag: bytes, body: bytes) -> bytes:
    return tag + _varint(len(body)) + body


def _text(tag: bytes, value: str) -> bytes:
    """A string field; proto3 leaves an empty one out."""
    return _delimited(tag, value.encode()) if value else b""


_YEAR_ONE = 719_162 * 86_400
"""Seconds from 0001-01-01 to the Unix epoch, both at midnight UTC."""

_FIRST, _LAST = -_YEAR_ONE, 253_402_300_799
"""The Unix times of 0001-01-01 00:00:00 and 9999-12-31 23:59:59, the range `datetime` holds."""


def _times(seconds: float | None) -> tuple[bytes, bytes]:
    """The deprecated text form of a Clara time (UTF-8, empty when not set) and the body of its
    `Timestamp` (seconds since year 1, `sint64` zigzag-encoded; empty when 0), as
    `answers.clara_string` and `answers.timestamp` give them.

    Worked out from the number as `datetime.fromtimestamp` does (its microseconds rounded half
    to even), without building a datetime: three times a job, that and strftime were most of
    an item's encoding. The day's text is kept (`_day`), since a history's jobs share days."""
    if seconds is None:
        return b"", b""
    fraction, whole = math.modf(seconds)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        micro -= 1_000_000
        whole += 1.0
    elif micro < 0:
        micro += 1_000_000
        whole -= 1.0
    stamp = int(whole)
    if not _FIRST <= stamp <= _LAST:
        # datetime refuses it as it always did.
        datetime.fromtimestamp(seconds, UTC)
    days, of_day = divmod(stamp, 86_400)
    hour, of_hour = divmod(of_day, 3_600)
    minute, second = divmod(of_hour, 60)
    # printf-style formatting of ints measured twice as fast as the same f-string.
    text = _day(days) + b"%02d:%02d:%02dZ" % (hour, minute, second)
    # As `timedelta.total_seconds` computes it for `answers.timestamp`, float rounding included
    # (a moment a microsecond before a whole second can round up to it).
    value = int(((stamp + _YEAR_ONE) * 1_000_000 + micro) / 1_000_000)
    if not value:
        return text, b""
    return text, _TIMESTAMP_VALUE + _varint(value << 1 if value > 0 else (-value << 1) - 1)


@lru_cache(maxsize=1024)
def _day(days: int) -> bytes:
    """The date part of a Clara time text, `days` after the Unix epoch, and its space; the
    year in four digits, zero-padded, as `aorta.timestamps.to_clara_string` writes it."""
    day = date.fromordinal(days + 719_163)
    return b"%04d-%02d-%02d " % (day.year, day.month, day.day)


def _metadata(pairs: Iterable[tuple[str, str]]) -> bytes:
    return b"".join(
        _delimited(_METADATA, _text(_KEY, key) + _text(_VALUE, value)) for key, value in pairs
    )


def _identifier_into(parts: list[bytes], tag: bytes, value: str) -> None:
    """An `Identifier` submessage, present even when its value is empty."""
    encoded = value.encode()
    if not encoded:
        parts += (tag, b"\x00")
        return
    length = _varint(len(encoded))
    parts += (tag, _varint(1 + len(length) + len(encoded)), _IDENTIFIER_VALUE, length, encoded)


def list_item(job: JobListing) -> bytes:
    """The serialized `JobsListResponse` of one listed job: a code-0 header and its details."""
    return _item(job_details(job))


def stored_item(document: Mapping[str, Any]) -> bytes:
    """`list_item` of the listing a projected job document holds (`LISTED_FIELDS`), encoded
    straight from the document: a whole List builds no `JobListing` per job. `Invalid`
    (JOB_STORE_ERROR) where `JobListing.from_document` finds the document malformed."""
    try:
        details = _details(
            document["id"],
            document["payload_id"],
            document["pipeline_id"],
            document["name"],
            _PHASES[document["phase"]],
            _PRIORITIES[document["priority"]],
            float(document["created"]),
            document.get("started"),
            document.get("stopped"),
            dict(document.get("metadata", ())),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise Invalid(
            f"stored job {document.get('id')!r} is malformed: {error!r}",
            code=ErrorCode.JOB_STORE_ERROR,
        ) from error
    return _item(details)


def stored_metadata_size(document: Mapping[str, Any]) -> int:
    """`JobListing.metadata_size` of a projected job document (0 when it is malformed, which
    `stored_item` then says)."""
    try:
        return sum(len(key) + len(value) for key, value in document.get("metadata", ()))
    except (TypeError, ValueError):
        return 0


def _item(details: bytes) -> bytes:
    return b"".join((_EMPTY_HEADER, _DETAILS, _varint(len(details)), details))


def page(jobs: Iterable[bytes], next_cursor: str) -> bytes:
    """The serialized `aorta.v1.JobsPageResponse`: a code-0 header, each job's `job_details`
    bytes, then the cursor of the next page (left out when empty)."""
    return b"".join(
        (_EMPTY_HEADER, *(_delimited(_DETAILS, job) for job in jobs), _text(_CURSOR, next_cursor))
    )


def _phase_fields(phase: JobPhase) -> bytes:
    """The encoded state and status of `phase`; proto3 leaves a zero enum out."""
    return b"".join(
        tag + _varint(number)
        for tag, number in ((_STATE, int(phase.state)), (_STATUS, int(phase.status)))
        if number
    )


_PHASES = {phase.value: _phase_fields(phase) for phase in JobPhase}
"""Each stored phase's encoded state and status."""

_PRIORITIES = {
    int(priority): _PRIORITY + _varint(int(priority)) if priority else b""
    for priority in JobPriority
}
"""Each stored priority's encoded field."""


def job_details(job: JobListing) -> bytes:
    """The serialized `JobsListResponse.JobDetails` of one listed job."""
    return _details(
        job.id,
        job.payload_id,
        job.pipeline_id,
        job.name,
        _PHASES[job.phase.value],
        _PRIORITIES[int(job.priority)],
        job.created,
        job.started,
        job.stopped,
        job.metadata,
    )


def _details(
    job_id: str,
    payload_id: str,
    pipeline_id: str,
    name: str,
    phase: bytes,
    priority: bytes,
    created: float,
    started: float | None,
    stopped: float | None,
    metadata: Mapping[str, str],
) -> bytes:
    """A `JobDetails` from its fields, `phase` and `priority` already encoded.

    Its pieces are gathered into one list and joined once (a function call and a bytes
    concatenation per field cost as much as the rest of an item's encoding together): proto3
    leaves out an empty string and a zero enum, and keeps the empty identifiers and
    timestamps `answers.list_item` sets."""
    created_text, created_stamp = _times(created)
    started_text, started_stamp = _times(started)
    stopped_text, stopped_stamp = _times(stopped)
    parts: list[bytes] = []
    _identifier_into(parts, _JOB_ID, job_id)
    _identifier_into(parts, _PAYLOAD_ID, payload_id)
    _identifier_into(parts, _PIPELINE_ID, pipeline_id)
    encoded_name = name.encode()
    if encoded_name:
        parts += (_NAME, _varint(len(encoded_name)), encoded_name)
    parts += (phase, priority)
    for tag, text in (
        (_CREATED_TEXT, created_text),
        (_STARTED_TEXT, started_text),
        (_STOPPED_TEXT, stopped_text),
    ):
        if text:
            parts += (tag, _varint(len(text)), text)
    for tag, stamp in (
        (_CREATED, created_stamp),
        (_STARTED, started_stamp),
        (_STOPPED, stopped_stamp),
    ):
        parts += (tag, _varint(len(stamp)), stamp)
    if metadata:
        parts.append(_metadata(metadata.items()))
    return b"".join(parts)
