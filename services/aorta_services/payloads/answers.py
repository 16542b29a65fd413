"""The Clara response messages the service sends.

`Details` streams one message per file, each with the header, the payload id, the type and the
job id; the metadata rides in the first message only (NVIDIA's client reads it from there), so
the stream grows with the number of files, not with files x metadata. An empty payload is one
message without a `file`. A file whose checksum is known carries it in its message's header as
the line `sha256 <hex> <name>` (code 0: Clara clients read messages only on failure; Clara's
messages have no checksum field).

Every answer must fit in one bus message: `check_metadata_fits` refuses metadata that would
make the first `Details` message too large, before anything is stored.
"""

from __future__ import annotations

from aorta import contracts
from aorta.api import common_pb2, payloads_pb2
from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.errors import ErrorCode, Invalid
from aorta.payload_names import MAX_LOOKUP_BYTES, checksum_line
from aorta_services.payloads.contents import StoredFile
from aorta_services.payloads.domain import FileRecord, PayloadKind, PayloadRecord

MAX_ANSWER_BYTES = DEFAULT_MAX_PAYLOAD - 64 * 1024
"""The largest answer the service sends: one bus message (`DEFAULT_MAX_PAYLOAD`, 8 MiB), less
room for the headers and the reply envelope; room for 4 MiB of metadata (`aorta.metadata`)."""

_CLARA_TYPES = {
    PayloadKind.PIPELINE: payloads_pb2.PAYLOAD_TYPE_PIPELINE,
    PayloadKind.REUSABLE: payloads_pb2.PAYLOAD_TYPE_REUSABLE,
}


def header(messages: list[str] | None = None) -> common_pb2.ResponseHeader:
    """A success header (code 0), with `messages` if any."""
    return common_pb2.ResponseHeader(code=0, messages=messages or [])


def created(record: PayloadRecord) -> bytes:
    return payloads_pb2.PayloadsCreateResponse(
        header=header(),
        payload_id=common_pb2.Identifier(value=record.id),
        type=_CLARA_TYPES[record.kind],
    ).SerializeToString()


def deleted() -> bytes:
    return payloads_pb2.PayloadsDeleteResponse(header=header()).SerializeToString()


def removed() -> bytes:
    return payloads_pb2.PayloadsRemoveResponse(header=header()).SerializeToString()


def metadata_added(record: PayloadRecord) -> bytes:
    return payloads_pb2.PayloadsAddMetadataResponse(
        header=header(),
        payload_id=common_pb2.Identifier(value=record.id),
        metadata=dict(record.metadata),
    ).SerializeToString()


def metadata_removed(record: PayloadRecord) -> bytes:
    return payloads_pb2.PayloadsRemoveMetadataResponse(
        header=header(),
        payload_id=common_pb2.Identifier(value=record.id),
        metadata=dict(record.metadata),
    ).SerializeToString()


def details_item(
    record: PayloadRecord, stored: StoredFile | None, known: FileRecord | None, *, first: bool
) -> payloads_pb2.PayloadsDetailsResponse:
    """One `Details` message: about `stored` (None for an empty payload), with what its file
    record adds (mode; the checksum when the record's size is still the file's)."""
    message = payloads_pb2.PayloadsDetailsResponse(
        header=header(),
        payload_id=common_pb2.Identifier(value=record.id),
        type=_CLARA_TYPES[record.kind],
    )
    if record.job_id:
        message.job_id.value = record.job_id
    if first:
        message.metadata.update(record.metadata)
    if stored is not None:
        message.file.name = stored.wire_name
        message.file.size = stored.size
        if known is not None:
            message.file.mode = known.mode
            if known.sha256 and known.size == stored.size:
                message.header.messages.append(checksum_line(known.sha256, stored.wire_name))
    return message


def details_answer(
    record: PayloadRecord,
    message: payloads_pb2.PayloadsDetailsResponse,
    *,
    settled: bool = False,
) -> bytes:
    """A `Details` message as the bus carries it, with the payload's owner and whether it is
    settled (`details_settled`)."""
    return contracts.PAYLOADS_DETAILS.encode_answer(
        contracts.PayloadDetailsItem(message, record.owner, settled)
    )


def details_settled(
    record: PayloadRecord, stored: StoredFile | None, known: FileRecord | None
) -> bool:
    """Whether a `Details` message can change only with one of the payload's events: the
    payload is in no job's use (a running job's outputs appear without one) and the file is
    recorded at the size stored (an upload's object appears before its record and its
    `file.added` event, and a refused one's object goes again without an event)."""
    if record.in_use_by_job is not None or record.deleting:
        return False
    return stored is None or (known is not None and known.size == stored.size)


def check_metadata_fits(record: PayloadRecord, limit: int = MAX_ANSWER_BYTES) -> None:
    """`Invalid` (METADATA_INVALID) when the first `Details` message of `record`, holding its
    metadata and the longest file name and checksum line there can be, exceeds `limit`."""
    longest = StoredFile("x" * MAX_LOOKUP_BYTES, 2**63)
    known = FileRecord(record.id, longest.name, longest.size, "0" * 64, 0o7777)
    size = len(details_answer(record, details_item(record, longest, known, first=True)))
    if size > limit:
        raise Invalid(
            f"the metadata of payload {record.id} would take {size} bytes in one answer, more "
            f"than the {limit} bytes the platform carries in one message; keep it smaller",
            code=ErrorCode.METADATA_INVALID,
        )
