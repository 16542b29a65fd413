"""Direct links of the S3 store (`aorta.blobs.port.DirectLinks`): pre-signed URLs, and the
check that moves an uploaded object into place.

URLs are signed locally (AWS Signature V4 in the query string, no request to the store) by a
second minio client that knows only the address clients reach the store at, the public
endpoint, which may differ from the platform's own (a cluster-internal service name, say).
A URL names one object and one method and expires; the store's credentials never leave the
platform.

`promote` does not trust the uploader: it hashes the staged object as the store serves it
(in a worker thread, at the store's speed), and copies it into place only when it is still
the object that was hashed (the copy is conditional on its ETag), so a second PUT to the same
URL while the check runs cannot slip other bytes in. Endpoints that verify a signed
`x-amz-checksum-sha256` would let this hashing be skipped; moto, the tests' endpoint, stores
that header without checking it, so the platform hashes itself everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from aorta.blobs.port import BlobInfo, DirectLink
from aorta.blobs.s3_upload import utc
from aorta.errors import AortaError, Conflict, Invalid

P = ParamSpec("P")
T = TypeVar("T")

_HASH_CHUNK = 1 << 20
_PRECONDITION = {"PreconditionFailed"}


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

    async def upload_link(self, name: str, expires_in: int) -> DirectLink:
        url = await self._call(
            None,
            self._signer.presigned_put_object,
            self._bucket,
            name,
            timedelta(seconds=expires_in),
        )
        return DirectLink(url=url, method="PUT", expires_in=expires_in)

    async def download_link(
        self, key: str, name: str, expires_in: int, filename: str | None
    ) -> DirectLink:
        await self._call(key, self._client.stat_object, self._bucket, name)
        saved = {"response-content-disposition": _attachment(filename)} if filename else None
        url = await self._call(
            key,
            self._signer.presigned_get_object,
            self._bucket,
            name,
            timedelta(seconds=expires_in),
            response_headers=saved,
        )
        return DirectLink(url=url, method="GET", expires_in=expires_in)

    async def promote(
        self, staged: str, key: str, names: tuple[str, str], *, size: int, sha256: str
    ) -> BlobInfo:
        staged_name, name = names
        try:
            found = await self._call(staged, self._client.stat_object, self._bucket, staged_name)
            held = int(found.size or 0)
            if held != size:
                raise Invalid(f"the uploaded file has {held} bytes, not the {size} announced")
            etag = str(found.etag)
            digest = await self._call(staged, self._hash, staged_name, etag)
            if digest != sha256:
                raise Invalid(
                    f"the uploaded bytes have sha256 {digest}, not the {sha256} announced"
                )
            source = CopySource(self._bucket, staged_name, match_etag=etag)
            try:
                copied = await self._call(
                    staged, self._client.copy_object, self._bucket, name, source
                )
            except AortaError as error:
                if isinstance(error.__cause__, S3Error) and error.__cause__.code in _PRECONDITION:
                    raise Conflict("the uploaded file changed while it was checked") from None
                raise
        finally:
            await self._drop(staged, staged_name)
        return BlobInfo(key=key, size=size, modified=utc(copied.last_modified), sha256=digest)

    def _hash(self, staged_name: str, etag: str) -> str:
        response = self._client.get_object(
            self._bucket, staged_name, request_headers={"If-Match": etag}
        )
        try:
            digest = hashlib.sha256()
            while data := response.read(_HASH_CHUNK, decode_content=False):
                digest.update(data)
            return digest.hexdigest()
        finally:
            response.close()
            response.release_conn()

    async def _drop(self, staged: str, staged_name: str) -> None:
        """Best effort: a staged object left behind is invisible to the payload anyway."""
        with contextlib.suppress(AortaError):
            await self._call(staged, self._client.remove_object, self._bucket, staged_name)


def _attachment(filename: str) -> str:
    """A Content-Disposition that saves as `filename` (quotes and controls dropped)."""
    safe = "".join(c for c in filename if c.isprintable() and c not in '"\\')
    return f'attachment; filename="{safe}"'
