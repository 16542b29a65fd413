"""`aorta.v1.Payloads`: the direct path of Aorta's own clients to the blob store.

When the blob store hands out links (S3, MinIO: `aorta.blobs.port.DirectLinks`), a client
asks here for a pre-signed URL and moves a file's bytes to or from the store itself, at the
store's speed; the gateway only authorises, checks and records. Everything but the bytes is
the gRPC path's (`payloads.py`), through the same verbs of the payloads service:

- **DirectUpload**: the payload must accept files (`check_upload`: ownership, read-only, the
  disk watermark at the door like Payloads.Upload) and the name must be a valid upload name;
  the answer is a PUT URL per part of `input/<name>`, whose upload stays pending, invisible,
  until the platform completes it (`DirectLinks`), so nothing half-sent or unchecked is ever
  part of a payload, and an `upload_id` naming it.
- **CommitDirectUpload**: asked again whether the payload accepts files, taking a commit mark
  as the gRPC path does (`payloads.CommitMark`: a payload locked meanwhile drops the pending
  upload; while the mark holds, its job cannot start), the store completes the upload only
  when it received every part with its size and announced MD5, which it computed itself
  (`DirectLinks.complete_upload`); the file is then recorded by `file_added` with that size
  and the SHA-256 the client computed of the same bytes, as the gRPC path records them, which
  ends the mark, and the object removed should the payload have been deleted meanwhile.
- **DirectDownload**: the file is found (`locate`: ownership, name resolution) and a GET URL
  of its object answered, with its details.

A store without links (the local folder) answers `supported: false`, and so does an upload
larger than S3 takes; the client then uses Payloads.Upload and Download. An upload
never committed is aborted by the S3 store's sweep of stale multipart uploads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re

from aorta import ids
from aorta.api import aorta_payloads_pb2, common_pb2, payloads_pb2
from aorta.blobs import BlobInfo
from aorta.blobs.port import MAX_DIRECT_UPLOAD, DirectLink, DirectLinks, direct_links
from aorta.errors import AortaError, Conflict, ErrorCode, Invalid, NotFound
from aorta.ids import PayloadId
from aorta.payload_layout import input_key, payload_prefix
from aorta.payload_names import check_upload_name, checksum_line
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.payloads import CommitMark, PayloadsService
from aorta_services.gateway.rpc import Context, Handler

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MD5 = re.compile(r"[0-9a-f]{32}")
_UPLOAD_ID = re.compile(r"[\x21-\x7e]{1,1024}")
_NO_LINKS = (
    "the platform's blob store hands out no direct links (it is a local folder): "
    "use Payloads.Upload and Payloads.Download"
)


def _hex(value: str, pattern: re.Pattern[str], what: str) -> str:
    """`value` as lowercase hex matching `pattern`; `Invalid` (PAYLOAD_REQUEST_INVALID)."""
    digest = value.strip().lower()
    if not pattern.fullmatch(digest):
        raise Invalid(f"give the file's {what}", code=ErrorCode.PAYLOAD_REQUEST_INVALID)
    return digest


def _upload_id(value: str) -> str:
    if not _UPLOAD_ID.fullmatch(value):
        raise Invalid(
            "give the upload_id DirectUpload answered", code=ErrorCode.PAYLOAD_REQUEST_INVALID
        )
    return value


def _wire_link(link: DirectLink) -> aorta_payloads_pb2.DirectLink:
    return aorta_payloads_pb2.DirectLink(
        url=link.url,
        method=link.method,
        headers=dict(link.headers),
        expires_in_seconds=link.expires_in,
    )


def _unsupported(why: str) -> common_pb2.ResponseHeader:
    return common_pb2.ResponseHeader(code=0, messages=[why])


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Every `aorta.v1.Payloads` RPC."""
    service = PayloadsService(gateway)
    links = direct_links(gateway.blobs)
    expires_in = gateway.settings.direct_link_seconds

    async def direct_upload(
        request: aorta_payloads_pb2.PayloadsDirectUploadRequest, context: Context
    ) -> aorta_payloads_pb2.PayloadsDirectUploadResponse:
        payload_id = ids.payload_id(request.payload_id.value)
        name = check_upload_name(request.name)
        if request.sha256:
            _hex(request.sha256, _SHA256, "SHA-256 as 64 hex digits")
        await service.check_upload(payload_id)
        if links is None:
            return aorta_payloads_pb2.PayloadsDirectUploadResponse(header=_unsupported(_NO_LINKS))
        if request.size > MAX_DIRECT_UPLOAD:
            why = f"a file over {MAX_DIRECT_UPLOAD} bytes goes through Payloads.Upload"
            return aorta_payloads_pb2.PayloadsDirectUploadResponse(header=_unsupported(why))
        pending = await links.upload_links(input_key(payload_id, name), request.size, expires_in)
        return aorta_payloads_pb2.PayloadsDirectUploadResponse(
            supported=True,
            upload_id=pending.upload_id,
            parts=[_wire_link(link) for link in pending.parts],
            part_size=pending.part_size,
        )

    async def commit_direct_upload(
        request: aorta_payloads_pb2.PayloadsCommitDirectUploadRequest, context: Context
    ) -> aorta_payloads_pb2.PayloadsCommitDirectUploadResponse:
        payload_id = ids.payload_id(request.payload_id.value)
        name = check_upload_name(request.details.name)
        sha256 = _hex(request.sha256, _SHA256, "SHA-256 as 64 hex digits")
        part_md5s = [
            _hex(md5, _MD5, "MD5 of each part as 32 hex digits") for md5 in request.part_md5s
        ]
        upload_id = _upload_id(request.upload_id)
        if links is None:
            raise Invalid(_NO_LINKS, code=ErrorCode.PAYLOAD_REQUEST_INVALID)
        key = input_key(payload_id, name)
        commit = CommitMark(service, payload_id)
        try:
            await commit.take()
        except (Conflict, NotFound):
            # Locked or deleted since the link was given: its bytes must never land.
            await links.cancel_upload(key, upload_id)
            raise
        try:
            completed = await _completed(
                links, payload_id, name, upload_id, request.details.size, part_md5s
            )
            info = dataclasses.replace(completed, sha256=sha256)
            try:
                await service.file_added(payload_id, name, info, request.details.mode, commit.mark)
            except (Conflict, NotFound):
                # Deleted (or locked once its mark expired) while the file was on its way: it
                # must not stay.
                with contextlib.suppress(AortaError):
                    await gateway.blobs.delete(key)
                raise
        except BaseException:
            await commit.release()
            raise
        wire_name = "/" + key.removeprefix(payload_prefix(payload_id))
        return aorta_payloads_pb2.PayloadsCommitDirectUploadResponse(
            header=common_pb2.ResponseHeader(code=0, messages=[checksum_line(sha256, wire_name)]),
            details=payloads_pb2.PayloadFileDetails(
                name=wire_name, size=info.size, mode=request.details.mode
            ),
        )

    async def direct_download(
        request: aorta_payloads_pb2.PayloadsDirectDownloadRequest, context: Context
    ) -> aorta_payloads_pb2.PayloadsDirectDownloadResponse:
        payload_id = ids.payload_id(request.payload_id.value)
        if not request.name:
            raise Invalid(
                "name the file to download as Payloads.Details lists it, e.g. /input/scan.dcm",
                code=ErrorCode.PAYLOAD_FILE_NAME_INVALID,
            )
        found = await service.locate(payload_id, request.name)
        details = payloads_pb2.PayloadFileDetails(name=found.name, size=found.size, mode=found.mode)
        if links is None:
            return aorta_payloads_pb2.PayloadsDirectDownloadResponse(
                header=_unsupported(_NO_LINKS), details=details
            )
        filename = found.name.rsplit("/", 1)[-1]
        try:
            link = await links.download_link(found.key, expires_in, filename=filename)
        except NotFound:
            raise NotFound(
                f"payload {payload_id} has no file named {found.name!r} any more",
                code=ErrorCode.PAYLOAD_FILE_NOT_FOUND,
            ) from None
        return aorta_payloads_pb2.PayloadsDirectDownloadResponse(
            supported=True, link=_wire_link(link), details=details
        )

    return {
        "DirectUpload": direct_upload,
        "CommitDirectUpload": commit_direct_upload,
        "DirectDownload": direct_download,
    }


async def _completed(
    links: DirectLinks,
    payload_id: PayloadId,
    name: str,
    upload_id: str,
    size: int,
    part_md5s: list[str],
) -> BlobInfo:
    """The pending upload `upload_id` completed as the file `name` of the payload, once the
    store received `size` bytes in parts of the MD5s `part_md5s`; each refusal in a client's
    words."""
    key = input_key(payload_id, name)
    try:
        return await links.complete_upload(key, upload_id, size=size, part_md5s=part_md5s)
    except Invalid as error:
        raise Invalid(
            f"upload {upload_id} of {name!r} refused: {error}; nothing was stored, upload "
            "the file again",
            code=ErrorCode.PAYLOAD_REQUEST_INVALID,
        ) from None
    except NotFound:
        raise NotFound(
            f"no upload {upload_id} of {name!r} is waiting in payload {payload_id}: it was "
            "committed or refused already, or named another file",
            code=ErrorCode.PAYLOAD_FILE_NOT_FOUND,
        ) from None
    except Conflict as error:
        raise Conflict(str(error), code=ErrorCode.PAYLOAD_REQUEST_INVALID) from None
