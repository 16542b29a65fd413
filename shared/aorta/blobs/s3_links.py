"""Direct links of the S3 store (`aorta.blobs.port.DirectLinks`): pre-signed URLs, and the
check that completes an upload made through one.

URLs are signed locally (AWS Signature V4 in the query string, no request to the store) by a
second minio client that knows only the address clients reach the store at, the public
endpoint, which may differ from the platform's own (a cluster-internal service name, say).
A URL names one object and one method and expires; the store's credentials never leave the
platform.

Upload links are the parts of a multipart upload of the object's own key, begun by the
platform (one part up to `DIRECT_PART_SIZE`, so a client may send several at once): S3 shows
nothing under the key until the upload is completed, and only the platform completes it, once
every part the store received has its size and the announced MD5, which the store computed
itself (a part's ETag is its MD5 on S3, MinIO and moto, unless SSE-KMS or SSE-C encrypts it).
Completing names those ETags, so a second PUT to a URL while the check runs makes the
completion fail instead of slipping other bytes in. No byte is read back or copied: on S3 and
MinIO completing is a metadata operation. An upload never completed is aborted by the store's
sweep of stale multipart uploads.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from minio import Minio
from minio.datatypes import Part
from minio.error import S3Error

from aorta.blobs.port import (
    MAX_DIRECT_PARTS,
    BlobInfo,
    DirectLink,
    DirectUpload,
    direct_part_size,
)
from aorta.errors import AortaError, Conflict, Invalid, NotFound

_MD5 = re.compile(r"[0-9a-f]{32}")


def public_client(
    public_endpoint: str, *, access_key: str, secret_key: str, secure: bool, region: str
) -> Minio:
    """A client that only signs URLs for `public_endpoint` (`HOST[:PORT]`, or a URL whose
    `https` scheme turns TLS on); `Invalid` for an endpoint that is neither."""
    endpoint = public_endpoint
    if "://" in public_endpoint:
        parts = urlsplit(public_endpoint)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path.strip("/"):
            raise Invalid(
                f"S3 public endpoint {public_endpoint!r} is not HOST[:PORT] or http(s)://HOST[:PORT]"
            )
        endpoint, secure = parts.netloc, parts.scheme == "https"
    try:
        return Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
    except ValueError as error:
        raise Invalid(f"S3 public endpoint {public_endpoint!r} is not valid: {error}") from None


Call = Callable[..., Awaitable[Any]]
"""The store's `_call`: runs a blocking minio call in its threads, translating errors."""


class S3Links:
    """The `DirectLinks` of one bucket, on object names (the store adds its key prefix);
    `call` runs blocking work."""

    def __init__(self, client: Minio, signer: Minio, bucket: str, call: Call) -> None:
        self._client = client
        self._signer = signer
        self._bucket = bucket
        self._call = call

    async def upload_links(self, key: str, name: str, size: int, expires_in: int) -> DirectUpload:
        headers = {"Content-Type": "application/octet-stream"}
        upload_id = await self._call(
            key, self._client._create_multipart_upload, self._bucket, name, headers
        )
        part_size = direct_part_size(size)
        count = max(1, -(-size // part_size))
        expires = timedelta(seconds=expires_in)
        urls = [
            self._signer.get_presigned_url(
                "PUT",
                self._bucket,
                name,
                expires,
                extra_query_params={"partNumber": str(number), "uploadId": upload_id},
            )
            for number in range(1, count + 1)
        ]
        links = tuple(DirectLink(url=url, method="PUT", expires_in=expires_in) for url in urls)
        return DirectUpload(upload_id=upload_id, part_size=part_size, parts=links)

    async def download_link(
        self, key: str, name: str, expires_in: int, filename: str | None
    ) -> DirectLink:
        await self._call(key, self._client.stat_object, self._bucket, name)
        saved = {"response-content-disposition": _attachment(filename)} if filename else None
        url = await self._call(
            key,
            self._signer.get_presigned_url,
            "GET",
            self._bucket,
            name,
            timedelta(seconds=expires_in),
            response_headers=saved,
        )
        return DirectLink(url=url, method="GET", expires_in=expires_in)

    async def complete_upload(
        self, key: str, name: str, upload_id: str, *, size: int, part_md5s: Sequence[str]
    ) -> BlobInfo:
        if not all(_MD5.fullmatch(md5) for md5 in part_md5s):
            raise Invalid("give each part's MD5 as 32 lowercase hex digits")
        try:
            listed = await self._call(
                key,
                self._client._list_parts,
                self._bucket,
                name,
                upload_id,
                max_parts=MAX_DIRECT_PARTS,
            )
        except AortaError as error:
            raise _missing(error, upload_id) from None
        try:
            parts = _the_parts(listed.parts, size=size, part_md5s=part_md5s)
        except Invalid:
            await self.cancel_upload(key, name, upload_id)
            raise
        try:
            await self._call(
                key,
                self._client._complete_multipart_upload,
                self._bucket,
                name,
                upload_id,
                [Part(part.part_number, part.etag) for part in parts],
            )
        except AortaError as error:
            if _code(error) == "InvalidPart":
                raise Conflict("the uploaded file changed while it was checked") from None
            raise _missing(error, upload_id) from None
        return BlobInfo(key=key, size=size, modified=datetime.now(UTC))

    async def cancel_upload(self, key: str, name: str, upload_id: str) -> None:
        """Best effort: a pending upload is invisible anyway, and swept when stale."""
        with contextlib.suppress(AortaError):
            await self._call(
                key, self._client._abort_multipart_upload, self._bucket, name, upload_id
            )


def _the_parts(parts: list[Part], *, size: int, part_md5s: Sequence[str]) -> list[Part]:
    """The parts of a direct upload, when there are as many as `part_md5s`, each of the size
    `direct_part_size(size)` gives it and of its MD5; `Invalid` otherwise."""
    part_size = direct_part_size(size)
    expected = max(1, -(-size // part_size))
    if len(part_md5s) != expected:
        raise Invalid(f"a file of {size} bytes has {expected} parts, not {len(part_md5s)}")
    numbers = [part.part_number for part in parts]
    if numbers != list(range(1, expected + 1)):
        missing = expected - len(parts)
        raise Invalid(f"{missing or 'some'} of the file's {expected} parts have not arrived")
    for part, md5 in zip(parts, part_md5s, strict=True):
        wanted = min(part_size, size - (part.part_number - 1) * part_size)
        received = str(part.etag).strip('"').lower()
        if part.size != wanted:
            raise Invalid(
                f"the blob store received {part.size} bytes of part {part.part_number}, "
                f"not {wanted}"
            )
        if received != md5:
            raise Invalid(
                f"the blob store received bytes of MD5 {received} in part {part.part_number}, "
                f"not the {md5} announced"
            )
    return parts


def _code(error: AortaError) -> str:
    cause = error.__cause__
    return str(cause.code) if isinstance(cause, S3Error) else ""


def _missing(error: AortaError, upload_id: str) -> AortaError:
    """`error`, as `NotFound` when S3 knows no such upload."""
    if _code(error) == "NoSuchUpload":
        return NotFound(f"no upload {upload_id!r} is pending")
    return error


def _attachment(filename: str) -> str:
    """A Content-Disposition that saves as `filename` (quotes and controls dropped)."""
    safe = "".join(c for c in filename if c.isprintable() and c not in '"\\')
    return f'attachment; filename="{safe}"'
