"""One object's way into S3: a single PUT when it fits in one part, a multipart upload otherwise.

Drives minio's multipart primitives (`_create_multipart_upload`, `_upload_part`,
`_complete_multipart_upload`, `_abort_multipart_upload`, `_put_object`) rather than the public
`put_object`, which reads parts into fresh `bytes`, concatenating as it goes, and keeps up to
three parts in flight: about five parts of memory instead of two. minio is pinned, and the
contract suite exercises every one of these calls.

`abort_stale_uploads` sweeps away the uploads of processes that died mid-upload.

Everything here blocks; `S3BlobStore` runs it in its threads, a put's calls one at a time.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from minio import Minio
from minio.datatypes import Part
from minio.helpers import DictType

from aorta.blobs.port import BlobInfo
from aorta.errors import Invalid

MAX_PARTS = 10_000
LIST_BATCH = 1000
"""S3's page size of listings, and DeleteObjects' limit."""
_UPLOAD_PAGES = 100  # pages of incomplete uploads one sweep reads at most


class MultipartUpload:
    """One object being uploaded; its methods block and run in the store's threads, one at a
    time and in order (the put awaits each part before sending the next)."""

    def __init__(self, client: Minio, bucket: str, name: str, key: str) -> None:
        self._client = client
        self._bucket = bucket
        self._name = name
        self.key = key
        self.upload_id: str | None = None
        self.committed = False
        self._parts: list[Part] = []
        self._hash = hashlib.sha256()
        self._size = 0
        self._outgoing = bytearray()

    def hand_over(self, block: bytearray) -> None:
        """Gives `send_part` its block. Not an argument: the executor's work item would keep
        an argument alive until its thread next got the GIL, by which time the put may have
        allocated the following buffer: three parts in memory instead of two."""
        self._outgoing = block

    def send_part(self) -> None:
        block, self._outgoing = self._outgoing, bytearray()
        self._send(block)

    def _send(self, block: bytearray) -> None:
        if len(self._parts) == MAX_PARTS:
            raise Invalid(f"blob {self.key!r} is larger than S3's {MAX_PARTS} parts allow")
        if self.upload_id is None:
            headers: DictType = {"Content-Type": "application/octet-stream"}
            self.upload_id = self._client._create_multipart_upload(
                self._bucket, self._name, headers
            )
        self._hash.update(block)
        self._size += len(block)
        number = len(self._parts) + 1
        # minio only needs a buffer (it hashes it and urllib3 sends it): no copy into bytes.
        body: Any = block
        etag = self._client._upload_part(
            self._bucket, self._name, body, None, self.upload_id, number
        )
        self._parts.append(Part(number, etag))

    def commit(self, final: bytearray) -> BlobInfo:
        """Sends the last bytes and makes the object visible: the commit point."""
        if self.upload_id is None:
            self._hash.update(final)
            self._size += len(final)
            body: Any = final
            headers: DictType = {"Content-Type": "application/octet-stream"}
            result: Any = self._client._put_object(self._bucket, self._name, body, headers)
        else:
            if final:
                self._send(final)
            result = self._client._complete_multipart_upload(
                self._bucket, self._name, self.upload_id, self._parts
            )
        self.committed = True
        return BlobInfo(
            key=self.key,
            size=self._size,
            modified=server_time(result.http_headers.get("date")),
            sha256=self._hash.hexdigest(),
        )

    def abort(self) -> None:
        if self.upload_id is not None:
            self._client._abort_multipart_upload(self._bucket, self._name, self.upload_id)


def utc(moment: datetime | None) -> datetime:
    """A timestamp minio parsed, as aware UTC; now when the server gave none."""
    if moment is None:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def server_time(header: str | None) -> datetime:
    """The server's clock from a `Date` header (what S3 stamps the object with), else ours."""
    if header:
        try:
            return utc(parsedate_to_datetime(header))
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC)


def abort_stale_uploads(client: Minio, bucket: str, prefix: str, older_than: float) -> int:
    """Aborts the incomplete multipart uploads under `prefix` begun more than `older_than`
    seconds ago (left by processes that died mid-upload); the number aborted."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    aborted, marker = 0, None
    for _ in range(_UPLOAD_PAGES):
        page = client._list_multipart_uploads(
            bucket, prefix=prefix or None, key_marker=marker, max_uploads=LIST_BATCH
        )
        for upload in page.uploads:
            begun = upload.initiated_time
            if upload.upload_id and begun is not None and utc(begun) <= cutoff:
                client._abort_multipart_upload(bucket, upload.object_name, upload.upload_id)
                aborted += 1
        if not page.is_truncated or not page.next_key_marker:
            break
        marker = page.next_key_marker
    return aborted
