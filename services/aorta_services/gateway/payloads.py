"""Payloads RPCs at the gateway: the bytes go straight between gRPC and the blob store.

Create, Delete, Details, Remove, AddMetadata and RemoveMetadata forward the Clara messages as
they are to the payloads service, which checks that the caller owns the payload (every verb but
Create and Details; `aorta.auth.ownership`). Details' answers come back with the payload's
owner, which the client gets as the initial metadata `aorta-owner`; a settled one is kept at
the gateway until the payload changes (`kept_answers`), sent only to a caller who may read the
payload (`check_reader`: a `user` its own), and the commands that change a
payload (a recorded upload too) drop it, before and after they are forwarded. Upload and
Download move bytes, which never cross the bus (the service checks ownership in
`check_upload`, `file_added` and `locate`, the calls they make anyway):

- **Upload** (client stream, its messages read as wire bytes, see `rpc.WireStreamHandler`):
  `payload_streams.UploadStream` reassembles the files; each one is
  streamed into `blobs.put(payloads/<id>/input/<name>)` as its chunks arrive, so memory stays
  bounded whatever the file size and the file appears only once all of it is stored. The
  service is asked before the stream (`check_upload`) whether the payload accepts files, and
  again just before each file is committed, then taking a commit mark (`CommitMark`): until
  the service is told of the stored file (`file_added`, which records its size, sha256 and
  mode, and ends the mark) its payload cannot be locked, so a job that starts meanwhile is
  refused, never sees its input change. Should the service refuse a file because the payload
  was deleted meanwhile, the gateway deletes the object it wrote. A stream
  that breaks off mid-file (the client cancels, the connection drops) cancels that put: nothing
  of the file remains, and files completed before it stay. The response's `details` are the
  last file's final ones (rooted name, real size, mode); its header carries one
  `sha256 <hex> <name>` line per file stored (code 0).
- **Download** (server stream): the service resolves the name (`locate`); the gateway then
  streams the object in `DOWNLOAD_CHUNK_BYTES` messages, the first with the file's details,
  each encoded around the chunk read from the store (`encoded`), which is never copied into a
  protobuf message.
  An error after the first message cannot be told in a header (clients read only the first),
  so the call then ends with gRPC status UNAVAILABLE, never as a short file with status OK.

A failure is reported in the response header (Clara's manner, see `rpc.py`); when some files
of an upload were stored before it, the header says which.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, cast

import grpc

from aorta import contracts, ids, subjects
from aorta.api import common_pb2, payloads_pb2
from aorta.auth.ownership import FORCE_HEADER, FORCE_METADATA, check_reader
from aorta.blobs import BlobInfo, BlobStore
from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.errors import AortaError, Conflict, ErrorCode, Invalid, NotFound
from aorta.ids import PayloadId
from aorta.observability import metrics
from aorta.payload_layout import input_key, payload_prefix
from aorta.payload_names import checksum_line
from aorta_services.gateway import encoded
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.kept_answers import changing, kept_details
from aorta_services.gateway.payload_streams import IncomingFile, UploadStream
from aorta_services.gateway.rpc import (
    Context,
    Encoded,
    Handler,
    UnaryHandler,
    WireRequests,
    WireStreamHandler,
)

DOWNLOAD_CHUNK_BYTES = 1 << 20
"""Bytes per Download message: Clara clients' default chunk size (they accept up to 4 MiB)."""
MAX_FORWARDED_BYTES = DEFAULT_MAX_PAYLOAD - 64 * 1024
"""The largest request forwarded to the service: one bus message (8 MiB), less room for headers."""
_LISTED = 10
_DOWNLOAD_DATA_TAG = encoded.bytes_field_tag(payloads_pb2.PayloadsDownloadResponse, "data")


def _count_bytes(direction: str, size: int) -> None:
    """Counts payload bytes that passed the gateway: a stored upload, a sent download chunk."""
    if metrics.recording():
        metrics.PAYLOAD_BYTES.labels(direction).inc(size)


class PayloadsService:
    """The payloads service's verbs around the bytes, as the gateway calls them."""

    def __init__(self, gateway: GatewayContext) -> None:
        self._forward = gateway.forward
        self._kept = gateway.kept.payloads

    async def check_upload(
        self, payload_id: PayloadId, *, commit: str | None = None, release: str | None = None
    ) -> None:
        """PAYLOAD_NOT_FOUND or PAYLOAD_READ_ONLY unless files may be uploaded now; with
        `commit`, the payload is marked as receiving a file, with `release` no longer
        (`contracts.CheckUpload`)."""
        await self._forward.call(
            contracts.PAYLOADS_CHECK_UPLOAD,
            contracts.CheckUpload(payload_id, commit=commit, release=release),
        )

    async def file_added(
        self,
        payload_id: PayloadId,
        name: str,
        info: BlobInfo,
        mode: int,
        commit: str | None = None,
    ) -> None:
        """Records a stored file and ends its commit mark; `Conflict` or `NotFound` when the
        payload refuses it."""
        added = contracts.FileAdded(payload_id, name, info.size, info.sha256, mode, commit)
        try:
            await self._forward.call(contracts.PAYLOADS_FILE_ADDED, added)
        finally:
            # The client may read its upload before the `file.added` event reaches us.
            self._kept.drop(payload_id)

    async def locate(self, payload_id: PayloadId, name: str) -> contracts.Located:
        """The file a Download names: PAYLOAD_NOT_FOUND, PAYLOAD_FILE_NOT_FOUND if none."""
        return await self._forward.call(
            contracts.PAYLOADS_LOCATE, contracts.Locate(payload_id, name)
        )


class CommitMark:
    """One file's commit mark (`contracts.CheckUpload.commit`): `take` it just before the
    store commits the file, pass `mark` to `file_added`, which ends it, and `release` it when
    the file was not recorded."""

    def __init__(self, service: PayloadsService, payload_id: PayloadId) -> None:
        self._service = service
        self._payload_id = payload_id
        self.mark = ids.new_id()
        self._asked = False

    async def take(self) -> None:
        """Marks the payload; PAYLOAD_NOT_FOUND or PAYLOAD_READ_ONLY when it takes no files."""
        self._asked = True
        try:
            await self._service.check_upload(self._payload_id, commit=self.mark)
        except (Conflict, NotFound):
            self._asked = False  # refused: no mark was taken
            raise

    async def release(self) -> None:
        """Ends the mark if it may have been taken, even while the call is being cancelled;
        a failure leaves it to expire (`aorta_services.payloads.domain.COMMIT_SECONDS`)."""
        if self._asked:
            self._asked = False
            with contextlib.suppress(AortaError):
                await asyncio.shield(
                    self._service.check_upload(self._payload_id, release=self.mark)
                )


def _forced(context: Context) -> dict[str, str]:
    """The bus header of a Delete its caller forces (`FORCE_METADATA`); the payloads service
    lets only an admin force."""
    for key, value in context.invocation_metadata() or ():
        if key == FORCE_METADATA and value == "true":
            return {FORCE_HEADER: "true"}
    return {}


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Every Payloads RPC."""
    service = PayloadsService(gateway)
    blobs = gateway.blobs

    async def upload(
        requests: WireRequests, context: Context
    ) -> payloads_pb2.PayloadsUploadResponse:
        stream = UploadStream(requests)
        payload_id = await stream.payload_id()
        await service.check_upload(payload_id)
        stored: list[payloads_pb2.PayloadFileDetails] = []
        lines: list[str] = []
        try:
            while True:
                commit = CommitMark(service, payload_id)
                incoming = await stream.next_file(commit.take)
                if incoming is None:
                    break
                key = input_key(payload_id, incoming.name)
                try:
                    info = await _stored(blobs, key, incoming)
                    try:
                        await service.file_added(
                            payload_id, incoming.name, info, incoming.mode, commit.mark
                        )
                    except (Conflict, NotFound):
                        # Deleted (or locked once its mark expired) while the file was on
                        # its way: it must not stay.
                        with contextlib.suppress(AortaError):
                            await blobs.delete(key)
                        raise
                except BaseException:
                    await commit.release()
                    raise
                _count_bytes("upload", info.size)
                wire_name = "/" + key.removeprefix(payload_prefix(payload_id))
                stored.append(
                    payloads_pb2.PayloadFileDetails(
                        name=wire_name, size=info.size, mode=incoming.mode
                    )
                )
                if info.sha256:
                    lines.append(checksum_line(info.sha256, wire_name))
        except AortaError as error:
            if not stored:
                raise
            raise _noting_stored(error, stored) from error
        header = common_pb2.ResponseHeader(code=0, messages=lines)
        return payloads_pb2.PayloadsUploadResponse(header=header, details=stored[-1])

    async def download(
        request: payloads_pb2.PayloadsDownloadRequest, context: Context
    ) -> AsyncIterator[payloads_pb2.PayloadsDownloadResponse | Encoded]:
        payload_id = ids.payload_id(request.payload_id.value)
        if not request.name:
            raise Invalid(
                "name the file to download as Payloads.Details lists it, e.g. /input/scan.dcm",
                code=ErrorCode.PAYLOAD_FILE_NAME_INVALID,
            )
        found = await service.locate(payload_id, request.name)
        header = common_pb2.ResponseHeader(code=0)
        details = payloads_pb2.PayloadFileDetails(name=found.name, size=found.size, mode=found.mode)
        first = payloads_pb2.PayloadsDownloadResponse(header=header, details=details)
        prefix = first.SerializeToString()
        started = False
        try:
            # The port documents `get` as an async generator; closed here as soon as we stop.
            reading = cast(
                AsyncGenerator[bytes, None], blobs.get(found.key, chunk_size=DOWNLOAD_CHUNK_BYTES)
            )
            async with aclosing(reading) as data:
                async for chunk in data:
                    yield encoded.with_bytes(prefix, _DOWNLOAD_DATA_TAG, chunk)
                    _count_bytes("download", len(chunk))
                    if not started:
                        prefix = payloads_pb2.PayloadsDownloadResponse(
                            header=header
                        ).SerializeToString()
                        started = True
        except AortaError as error:
            if started:
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    f"the download of {found.name} broke off after some data was sent: {error}",
                )
            if isinstance(error, NotFound):
                raise NotFound(
                    f"payload {payload_id} has no file named {found.name!r} any more",
                    code=ErrorCode.PAYLOAD_FILE_NOT_FOUND,
                ) from error
            raise
        if not started:
            yield first

    forward = gateway.forward

    kept = gateway.kept.payloads

    def details(
        request: payloads_pb2.PayloadsDetailsRequest, context: Context
    ) -> AsyncIterator[Encoded]:
        return kept_details(
            kept,
            request.payload_id.value,
            request,
            context,
            lambda: forward.call_stream(contracts.PAYLOADS_DETAILS, request, reads=True),
            _named,
            lambda owner: check_reader(owner, f"payload {request.payload_id.value}"),
        )

    return {
        "Create": _bounded(
            forward.unary(subjects.PAYLOADS_CREATE, payloads_pb2.PayloadsCreateResponse)
        ),
        "Delete": changing(
            forward.unary(
                subjects.PAYLOADS_DELETE,
                payloads_pb2.PayloadsDeleteResponse,
                extra_headers=_forced,
            ),
            kept,
            _named,
        ),
        "Details": details,
        "Download": download,
        "Remove": changing(
            forward.unary(subjects.PAYLOADS_REMOVE, payloads_pb2.PayloadsRemoveResponse),
            kept,
            _named,
        ),
        "Upload": WireStreamHandler(upload),
        "AddMetadata": _bounded(
            changing(
                forward.unary(
                    subjects.PAYLOADS_ADD_METADATA, payloads_pb2.PayloadsAddMetadataResponse
                ),
                kept,
                _named,
            )
        ),
        "RemoveMetadata": _bounded(
            changing(
                forward.unary(
                    subjects.PAYLOADS_REMOVE_METADATA, payloads_pb2.PayloadsRemoveMetadataResponse
                ),
                kept,
                _named,
            )
        ),
    }


async def _stored(blobs: BlobStore, key: str, incoming: IncomingFile) -> BlobInfo:
    """`incoming` put under `key`; a file where the payload has a folder of its name, or a
    folder where it has a file, is PAYLOAD_FILE_NAME_INVALID."""
    try:
        return await blobs.put(key, incoming.chunks())
    except Conflict:
        if not incoming.complete:
            raise  # a rule of the stream or the payload, not the store's
        # A folder cannot hold a file and a folder of one name (S3 could).
        raise Invalid(
            f"file {incoming.name!r} cannot be stored: the payload's input already "
            "holds a file where this name has a folder, or a folder of this name",
            code=ErrorCode.PAYLOAD_FILE_NAME_INVALID,
        ) from None


def _named(message: Any) -> str:
    """The payload a request or a Details message names."""
    return str(message.payload_id.value)


def _bounded(handler: UnaryHandler) -> UnaryHandler:
    """`handler`, refusing a request (all metadata) too large to cross the bus in one message."""

    async def bounded(request: Any, context: Context) -> Any:
        size = request.ByteSize()
        if size > MAX_FORWARDED_BYTES:
            raise Invalid(
                f"the request is {size} bytes, more than the {MAX_FORWARDED_BYTES} bytes the "
                "platform carries in one message; send less metadata per request",
                code=ErrorCode.METADATA_INVALID,
            )
        return await handler(request, context)

    return bounded


def _noting_stored(error: AortaError, stored: list[payloads_pb2.PayloadFileDetails]) -> AortaError:
    """`error`, with a message naming the files of the stream stored before it."""
    names = ", ".join(details.name for details in stored[:_LISTED])
    more = f" and {len(stored) - _LISTED} more" if len(stored) > _LISTED else ""
    note = f"{len(stored)} file(s) of this upload were stored before the error: {names}{more}"
    return type(error)(*error.messages, note, code=error.code)
