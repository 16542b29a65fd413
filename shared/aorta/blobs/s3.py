"""The S3 blob store (MinIO, or any S3 endpoint) over the synchronous `minio` client.

Every minio call runs in the store's own threads. `put` streams: the caller's chunks are
regrouped into parts of `part_size` bytes (8 MiB by default) and uploaded one at a time while
the next part fills, so memory stays at about two parts whatever the object size. An object
smaller than one part is a single PUT; anything larger is a multipart upload, which S3 makes
visible only when it is completed: that is the commit point, and a failed or cancelled put
aborts the upload instead. The largest object is 10,000 parts (78 GiB at 8 MiB).

The upload itself, and why it bypasses minio's `put_object`, is `aorta.blobs.s3_upload`.

S3 cannot record a hash before an upload completes, and object metadata cannot change
afterwards, so `put` returns the sha256 it computed while `stat`, `list` and `copy` return None.
A process that dies mid-upload leaves an incomplete multipart upload: invisible to `list`, but
stored until someone aborts it. The store aborts those under its prefix begun more than a day
ago (`STALE_UPLOAD_AGE`; a live put finishes or aborts its own long before) when it opens and
every hour while it is open; a bucket lifecycle rule (`AbortIncompleteMultipartUpload`) does the
same on the server's side.

The store hands out direct links (`aorta.blobs.port.DirectLinks`, `aorta.blobs.s3_links`),
signed for `public_endpoint` when clients reach the store at another address than the platform.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterator, Sequence
from contextlib import aclosing
from itertools import islice
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Object
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from minio.helpers import check_bucket_name

from aorta.blobs.keys import check_key, check_prefix
from aorta.blobs.port import DEFAULT_CHUNK_SIZE, BlobInfo, DirectLink, DirectUpload
from aorta.blobs.s3_errors import translated
from aorta.blobs.s3_links import S3Links, public_client
from aorta.blobs.s3_upload import LIST_BATCH, MultipartUpload, abort_stale_uploads, utc
from aorta.blobs.streams import WorkerThreads, blocks, check_range, settle
from aorta.errors import AortaError, Internal, Invalid
from aorta.logger import get_logger
from aorta.tasks import cancel_and_wait

P = ParamSpec("P")
T = TypeVar("T")

_log = get_logger(__name__)

DEFAULT_PART_SIZE = 8 << 20
MIN_PART_SIZE = 5 << 20  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 << 30
STALE_UPLOAD_AGE = 24 * 3600.0
"""Seconds after which an incomplete multipart upload is taken as left by a dead process."""
UPLOAD_SWEEP_INTERVAL = 3600.0
"""Seconds between sweeps of stale uploads while the store is open."""


def parse_location(location: str) -> tuple[str, str]:
    """`s3://BUCKET[/PREFIX]` as (bucket, key prefix ending with "/" or empty); `Invalid`."""
    parts = urlsplit(location)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise Invalid(f"blob store location {location!r} is not of the form s3://BUCKET[/PREFIX]")
    try:
        check_bucket_name(parts.netloc, strict=True)
    except ValueError as error:
        raise Invalid(f"blob store location {location!r}: {error}") from None
    prefix = parts.path.strip("/")
    if prefix:
        check_key(prefix)
        prefix += "/"
    return parts.netloc, prefix


class S3BlobStore:
    """A `BlobStore` over a bucket, optionally under a key prefix (see the module docstring).

    Construct with `await S3BlobStore.open(...)`, which also creates the bucket if missing.
    Errors: `NotFound` for a missing object, `Unavailable` when the endpoint cannot be reached
    or is overloaded (after urllib3's few retries), `Internal` for any other refusal (bad
    credentials, a missing bucket).
    """

    def __init__(
        self,
        location: str,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        secure: bool = False,
        region: str = "",
        part_size: int = DEFAULT_PART_SIZE,
        workers: int = 8,
        public_endpoint: str = "",
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise Invalid(f"S3 part size {part_size} is outside [{MIN_PART_SIZE}, {MAX_PART_SIZE}]")
        self._bucket, self._prefix = parse_location(location)
        # Direct links are signed for the address clients reach (`public_endpoint`), in the
        # region the store is in: S3 checks both in the signature.
        signer = public_client(
            public_endpoint or endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region or "us-east-1",
        )
        self._endpoint = endpoint
        self._part_size = part_size
        # minio's own pool waits 5 minutes to connect and holds 10 connections; ours fails
        # fast and holds one per worker thread. CA certificates: the system's (and
        # SSL_CERT_FILE, which OpenSSL reads itself).
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10.0, read=300.0),
            maxsize=workers,
            cert_reqs="CERT_REQUIRED",
            retries=urllib3.Retry(
                total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        try:
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region or None,
                http_client=self._http,
            )
        except ValueError as error:
            self._http.clear()
            raise Invalid(
                f"S3 endpoint {endpoint!r} is not valid (expected HOST[:PORT]): {error}"
            ) from None
        self._threads = WorkerThreads("aorta-blobs-s3", workers)
        self._links = S3Links(self._client, signer, self._bucket, self._call)
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        location: str,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        secure: bool = False,
        region: str = "",
        part_size: int = DEFAULT_PART_SIZE,
        workers: int = 8,
        public_endpoint: str = "",
    ) -> S3BlobStore:
        """Builds the store and creates its bucket if missing (another replica creating it at
        the same moment is fine). `Invalid` for a bad location, endpoint or part size;
        `Unavailable` when the endpoint cannot be reached."""
        store = cls(
            location,
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            part_size=part_size,
            workers=workers,
            public_endpoint=public_endpoint,
        )
        try:
            await store._call(None, store._ensure_bucket)
        except BaseException:
            await store.close()
            raise
        await store._sweep_uploads_once()
        store._sweeper = asyncio.create_task(store._sweep_uploads(), name="aorta-s3-uploads")
        return store

    async def abort_stale_uploads(self, older_than: float = STALE_UPLOAD_AGE) -> int:
        """Aborts the incomplete multipart uploads under this store's prefix begun more than
        `older_than` seconds ago, which processes that died mid-upload left; the number
        aborted. Errors as for any call."""
        return await self._call(
            None, abort_stale_uploads, self._client, self._bucket, self._prefix, older_than
        )

    async def _sweep_uploads(self) -> None:
        while True:
            await asyncio.sleep(UPLOAD_SWEEP_INTERVAL)
            await self._sweep_uploads_once()

    async def _sweep_uploads_once(self) -> None:
        """`abort_stale_uploads`, a failure logged (an endpoint may refuse to list them)."""
        try:
            aborted = await self.abort_stale_uploads()
        except AortaError as error:
            _log.warning("stale uploads not swept", bucket=self._bucket, error=str(error))
        else:
            if aborted:
                _log.info("stale uploads aborted", bucket=self._bucket, count=aborted)

    async def put(self, key: str, chunks: AsyncIterable[bytes | memoryview]) -> BlobInfo:
        upload = MultipartUpload(self._client, self._bucket, self._name(key), key)
        in_flight: asyncio.Future[None] | None = None
        try:
            final = bytearray()
            async with aclosing(blocks(chunks, self._part_size)) as source:
                async for block in source:
                    if in_flight is not None:
                        # Backpressure: one part on the wire while the next one fills.
                        previous = in_flight
                        in_flight = None
                        await self._finish(previous, key)
                    if len(block) == self._part_size:
                        upload.hand_over(block)
                        in_flight = self._threads.submit(upload.send_part)
                    else:
                        final = block
            if in_flight is not None:
                previous = in_flight
                in_flight = None
                await self._finish(previous, key)
            return await self._call(key, upload.commit, final)
        except BaseException:
            if in_flight is not None:
                await settle(in_flight)
            if upload.upload_id is not None and not upload.committed:
                await self._abort(upload)
            raise

    async def get(
        self,
        key: str,
        *,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncGenerator[bytes, None]:
        name = self._name(key)
        check_range(offset, length, chunk_size)
        if length == 0:
            await self.stat(key)
            return
        response = await self._call(key, self._open_range, name, offset, length)
        if response is None:
            return
        exhausted = False
        try:
            while True:
                # The stored bytes, even of an object another tool gave a Content-Encoding.
                data = await self._call(key, response.read, chunk_size, decode_content=False)
                if not data:
                    exhausted = True
                    break
                yield data
        finally:
            if not exhausted:
                response.close()  # unread bytes make the connection unusable
            response.release_conn()

    async def stat(self, key: str) -> BlobInfo:
        found = await self._call(key, self._client.stat_object, self._bucket, self._name(key))
        return BlobInfo(key=key, size=int(found.size or 0), modified=utc(found.last_modified))

    async def list(self, prefix: str) -> AsyncGenerator[BlobInfo, None]:
        check_prefix(prefix)
        listing: Iterator[Object] = self._client.list_objects(
            self._bucket, prefix=self._prefix + prefix, recursive=True
        )
        while batch := await self._call(None, _take, listing, LIST_BATCH):
            for found in batch:
                info = self._info(found)
                if info is not None:
                    yield info

    async def delete(self, key: str) -> None:
        name = self._name(key)
        # S3 deletes absent keys silently; the port promises NotFound.
        await self._call(key, self._client.stat_object, self._bucket, name)
        await self._call(key, self._client.remove_object, self._bucket, name)

    async def delete_prefix(self, prefix: str) -> int:
        if prefix == "":
            raise Invalid("delete_prefix needs a non-empty prefix")
        check_prefix(prefix)
        deleted = 0
        batch: list[str] = []
        async with aclosing(self.list(prefix)) as listing:
            async for info in listing:
                batch.append(self._prefix + info.key)
                if len(batch) == LIST_BATCH:
                    deleted += await self._call(None, self._remove_many, batch)
                    batch = []
        if batch:
            deleted += await self._call(None, self._remove_many, batch)
        return deleted

    async def copy(self, source: str, target: str) -> BlobInfo:
        """Server-side copy (CopyObject; multipart UploadPartCopy above 5 GiB)."""
        source_name, target_name = self._name(source), self._name(target)
        if source != target:
            copied = CopySource(self._bucket, source_name)
            await self._call(source, self._client.copy_object, self._bucket, target_name, copied)
        return await self.stat(target)

    async def upload_links(self, key: str, size: int, expires_in: int) -> DirectUpload:
        return await self._links.upload_links(key, self._name(key), size, expires_in)

    async def download_link(
        self, key: str, expires_in: int, *, filename: str | None = None
    ) -> DirectLink:
        return await self._links.download_link(key, self._name(key), expires_in, filename)

    async def complete_upload(
        self, key: str, upload_id: str, *, size: int, part_md5s: Sequence[str]
    ) -> BlobInfo:
        name = self._name(key)
        return await self._links.complete_upload(
            key, name, upload_id, size=size, part_md5s=part_md5s
        )

    async def cancel_upload(self, key: str, upload_id: str) -> None:
        await self._links.cancel_upload(key, self._name(key), upload_id)

    async def close(self) -> None:
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
        await self._threads.close()
        self._http.clear()

    def _name(self, key: str) -> str:
        return self._prefix + check_key(key)

    def _info(self, found: Object) -> BlobInfo | None:
        key = str(found.object_name)[len(self._prefix) :]
        try:
            check_key(key)
        except Invalid:
            return None  # written by another tool (a "folder/" marker, say): not ours to show
        return BlobInfo(key=key, size=int(found.size or 0), modified=utc(found.last_modified))

    async def _call(
        self, key: str | None, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Runs a blocking minio call in a thread, translating its errors (`NotFound` names
        `key`)."""
        return await self._finish(self._threads.submit(fn, *args, **kwargs), key)

    async def _finish(self, future: asyncio.Future[T], key: str | None) -> T:
        try:
            return await self._threads.finish(future)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
            where = f"the S3 store at {self._endpoint} (bucket {self._bucket!r})"
            raise translated(error, key, where) from error

    async def _abort(self, upload: MultipartUpload) -> None:
        """Best effort: the upload is invisible anyway; aborting only frees its parts."""
        try:
            await self._call(None, upload.abort)
        except AortaError as error:
            _log.warning(
                "could not abort a multipart upload",
                bucket=self._bucket,
                key=upload.key,
                error=str(error),
            )

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self._bucket):
            return
        try:
            self._client.make_bucket(self._bucket)
        except S3Error as error:
            if error.code != "BucketAlreadyOwnedByYou":  # another replica was quicker
                raise

    def _open_range(self, name: str, offset: int, length: int | None) -> Any:
        try:
            return self._client.get_object(self._bucket, name, offset=offset, length=length or 0)
        except S3Error as error:
            if error.code == "InvalidRange":  # the object exists; the range starts past its end
                return None
            raise

    def _remove_many(self, names: builtins.list[str]) -> int:
        errors = list(self._client.remove_objects(self._bucket, [DeleteObject(n) for n in names]))
        if errors:
            shown = "; ".join(f"{e.name}: {e.code} {e.message}" for e in errors[:5])
            raise Internal(f"S3 refused to delete {len(errors)} of {len(names)} objects: {shown}")
        return len(names)


def _take(items: Iterator[T], count: int) -> list[T]:
    return list(islice(items, count))
