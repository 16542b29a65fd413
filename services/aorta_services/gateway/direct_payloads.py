"""`aorta.v1.Payloads`: the direct path of Aorta's own clients to the blob store.

When the blob store hands out links (S3, MinIO: `aorta.blobs.port.DirectLinks`), a client
asks here for a pre-signed URL and moves a file's bytes to or from the store itself, at the
store's speed; the gateway only authorises, checks and records. Everything but the bytes is
the gRPC path's (`payloads.py`), through the same verbs of the payloads service:

- **DirectUpload**: the payload must accept files (`check_upload`: ownership, read-only, the
  disk watermark at the door like Payloads.Upload) and the name must be a valid upload name;
  the answer is a PUT URL to a staging key (`STAGING_ROOT`) outside every payload, so
  nothing half-sent or unchecked is ever part of one, and an `upload_id` naming it.
- **CommitDirectUpload**: asked again whether the payload accepts files, the store hashes the
  staged bytes itself and moves them to `input/<name>` only when size and SHA-256 are the
  announced ones (`DirectLinks.promote`); the file is then recorded by `file_added`, with the
  size and SHA-256 the gRPC path would record, and the object removed should the payload
  have been locked or deleted meanwhile.
- **DirectDownload**: the file is found (`locate`: ownership, name resolution) and a GET URL
  of its object answered, with its details.

A store without links (the local folder) answers `supported: false`, and so does an upload
larger than one PUT may carry; the client then uses Payloads.Upload and Download. Staged
objects whose upload is never committed stay under `STAGING_ROOT` (not swept yet).
"""

from __future__ import annotations

import contextlib
import re

from aorta import ids
from aorta.api import aorta_payloads_pb2, common_pb2, payloads_pb2
from aorta.blobs.port import MAX_DIRECT_UPLOAD, DirectLink, direct_links
from aorta.errors import AortaError, Conflict, ErrorCode, Invalid, NotFound
from aorta.ids import PayloadId
from aorta.payload_layout import input_key, payload_prefix
from aorta.payload_names import check_upload_name, checksum_line
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.payloads import PayloadsService
from aorta_services.gateway.rpc import Context, Handler

STAGING_ROOT = "direct-uploads/"
"""Where direct uploads wait for their commit: `direct-uploads/<payload id>/<upload id>`."""
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NO_LINKS = (
    "the platform's blob store hands out no direct links (it is a local folder): "
    "use Payloads.Upload and Payloads.Download"
)


def staging_key(payload_id: PayloadId, upload_id: str) -> str:
    """The key a direct upload is staged under."""
    return f"{STAGING_ROOT}{payload_id}/{upload_id}"


def _sha256(value: str) -> str:
    """`value` as lowercase hex SHA-256; `Invalid` (PAYLOAD_REQUEST_INVALID) otherwise."""
    digest = value.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise Invalid(
            "give the file's SHA-256 as 64 hex digits", code=ErrorCode.PAYLOAD_REQUEST_INVALID
        )
    return digest


def _upload_id(value: str) -> str:
    return ids.canonical_id(value, what="upload", code=ErrorCode.PAYLOAD_REQUEST_INVALID)


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
        check_upload_name(request.name)
        if request.sha256:
            _sha256(request.sha256)
        await service.check_upload(payload_id)
        if links is None:
            return aorta_payloads_pb2.PayloadsDirectUploadResponse(header=_unsupported(_NO_LINKS))
        if request.size > MAX_DIRECT_UPLOAD:
            why = f"a file over {MAX_DIRECT_UPLOAD} bytes goes through Payloads.Upload"
            return aorta_payloads_pb2.PayloadsDirectUploadResponse(header=_unsupported(why))
        upload_id = ids.new_id()
        link = await links.upload_link(staging_key(payload_id, upload_id), expires_in)
        return aorta_payloads_pb2.PayloadsDirectUploadResponse(
            supported=True, link=_wire_link(link), upload_id=upload_id
        )

    async def commit_direct_upload(
        request: aorta_payloads_pb2.PayloadsCommitDirectUploadRequest, context: Context
    ) -> aorta_payloads_pb2.PayloadsCommitDirectUploadResponse:
        payload_id = ids.payload_id(request.payload_id.value)
        name = check_upload_name(request.details.name)
        sha256 = _sha256(request.sha256)
        upload_id = _upload_id(request.upload_id)
        if links is None:
            raise Invalid(_NO_LINKS, code=ErrorCode.PAYLOAD_REQUEST_INVALID)
        await service.check_upload(payload_id)
        key = input_key(payload_id, name)
        try:
            info = await links.promote(
                staging_key(payload_id, upload_id), key, size=request.details.size, sha256=sha256
            )
        except Invalid as error:
            raise Invalid(
                f"upload {upload_id} of {name!r} refused: {error}; nothing was stored, upload "
                "the file again",
                code=ErrorCode.PAYLOAD_REQUEST_INVALID,
            ) from None
        except NotFound:
            raise NotFound(
                f"no upload {upload_id} is waiting for payload {payload_id}: it was committed "
                "already, or its bytes never arrived",
                code=ErrorCode.PAYLOAD_FILE_NOT_FOUND,
            ) from None
        except Conflict as error:
            raise Conflict(str(error), code=ErrorCode.PAYLOAD_REQUEST_INVALID) from None
        try:
            await service.file_added(payload_id, name, info, request.details.mode)
        except (Conflict, NotFound):
            # Locked or deleted while the file was on its way: it must not stay.
            with contextlib.suppress(AortaError):
                await gateway.blobs.delete(key)
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
