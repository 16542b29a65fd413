"""The S3 store's direct links against moto: a URL PUTs and GETs one object with no
credentials of the caller's own, an upload stays invisible until completed, and completing
takes only the bytes that were announced."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import urllib3

from aorta.blobs.local import LocalBlobStore
from aorta.blobs.port import DIRECT_PART_SIZE, direct_links
from aorta.blobs.s3 import S3BlobStore
from aorta.errors import Invalid, NotFound
from aorta.testing.s3 import S3Server
from tests.integration.blobs.conftest import open_moto_store

DATA = b"direct bytes " * 1000
MD5 = hashlib.md5(DATA).hexdigest()
KEY = "payloads/p/input/a.bin"


@pytest.fixture(params=["", "/under/prefix"])
async def store(request: pytest.FixtureRequest, s3_server: S3Server) -> AsyncIterator[S3BlobStore]:
    opened = await open_moto_store(
        s3_server, f"s3://aorta-test-{uuid.uuid4().hex[:20]}{request.param}"
    )
    try:
        yield opened
    finally:
        await opened.close()


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def send(method: str, url: str, body: bytes | None = None) -> urllib3.BaseHTTPResponse:
    """An HTTP request with nothing but the URL, as a client holds it."""
    http = urllib3.PoolManager()
    return await asyncio.to_thread(http.request, method, url, body=body)


async def test_a_link_uploads_one_object_which_appears_once_completed(
    store: S3BlobStore,
) -> None:
    pending = await store.upload_links(KEY, len(DATA), 60)
    (link,) = pending.parts
    assert link.method == "PUT" and pending.upload_id
    assert "aorta-test-secret" not in link.url
    assert (await send("PUT", link.url, DATA)).status == 200
    with pytest.raises(NotFound):
        await store.stat(KEY)

    info = await store.complete_upload(KEY, pending.upload_id, size=len(DATA), part_md5s=[MD5])

    assert (info.key, info.size) == (KEY, len(DATA))
    assert b"".join([c async for c in store.get(KEY)]) == DATA
    got = await send("GET", (await store.download_link(KEY, 60)).url)
    assert (got.status, got.data) == (200, DATA)
    with pytest.raises(NotFound):  # completed: nothing pending any more
        await store.complete_upload(KEY, pending.upload_id, size=len(DATA), part_md5s=[MD5])


async def test_bytes_other_than_announced_are_dropped(store: S3BlobStore) -> None:
    await store.put(KEY, chunks(b"the previous file"))
    pending = await store.upload_links(KEY, len(DATA), 60)
    await send("PUT", pending.parts[0].url, DATA[:-1] + b"X")

    with pytest.raises(Invalid, match="MD5"):
        await store.complete_upload(KEY, pending.upload_id, size=len(DATA), part_md5s=[MD5])

    assert b"".join([c async for c in store.get(KEY)]) == b"the previous file"
    with pytest.raises(NotFound):
        await store.complete_upload(KEY, pending.upload_id, size=len(DATA), part_md5s=[MD5])


async def test_another_size_nothing_sent_and_a_cancelled_upload_are_refused(
    store: S3BlobStore,
) -> None:
    pending = await store.upload_links(KEY, len(DATA), 60)
    await send("PUT", pending.parts[0].url, DATA)
    with pytest.raises(Invalid, match="bytes"):
        await store.complete_upload(KEY, pending.upload_id, size=len(DATA) + 1, part_md5s=[MD5])
    silent = await store.upload_links(KEY, len(DATA), 60)
    with pytest.raises(Invalid, match="not arrived"):
        await store.complete_upload(KEY, silent.upload_id, size=len(DATA), part_md5s=[MD5])
    cancelled = await store.upload_links(KEY, len(DATA), 60)
    await send("PUT", cancelled.parts[0].url, DATA)
    await store.cancel_upload(KEY, cancelled.upload_id)
    with pytest.raises(NotFound):
        await store.complete_upload(KEY, cancelled.upload_id, size=len(DATA), part_md5s=[MD5])
    with pytest.raises(NotFound):
        await store.stat(KEY)


async def test_a_large_file_is_sent_in_parts_each_checked(store: S3BlobStore) -> None:
    size = DIRECT_PART_SIZE + 3
    data = bytes(range(256)) * (size // 256) + b"end"
    pieces = [data[:DIRECT_PART_SIZE], data[DIRECT_PART_SIZE:]]
    pending = await store.upload_links(KEY, size, 60)
    assert (pending.part_size, len(pending.parts)) == (DIRECT_PART_SIZE, 2)
    for link, piece in reversed(list(zip(pending.parts, pieces, strict=True))):
        assert (await send("PUT", link.url, piece)).status == 200
    md5s = [hashlib.md5(piece).hexdigest() for piece in pieces]

    with pytest.raises(Invalid, match="parts"):
        await store.complete_upload(KEY, pending.upload_id, size=size, part_md5s=md5s[:1])
    again = await store.upload_links(KEY, size, 60)
    for link, piece in zip(again.parts, pieces, strict=True):
        await send("PUT", link.url, piece)
    info = await store.complete_upload(KEY, again.upload_id, size=size, part_md5s=md5s)

    assert info.size == size
    assert b"".join([c async for c in store.get(KEY)]) == data


async def test_links_name_the_public_endpoint(s3_server: S3Server) -> None:
    opened = await S3BlobStore.open(
        f"s3://aorta-test-{uuid.uuid4().hex[:20]}",
        endpoint=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        region=s3_server.region,
        public_endpoint="https://s3.example.org",
    )
    try:
        pending = await opened.upload_links("payloads/p/input/d", 1, 60)
    finally:
        await opened.close()
    parts = urlsplit(pending.parts[0].url)
    assert (parts.scheme, parts.netloc) == ("https", "s3.example.org")
    assert "X-Amz-Expires=60" in parts.query


async def test_a_local_folder_hands_out_no_links(tmp_path: Path) -> None:
    local = await LocalBlobStore.open(tmp_path / "blobs")
    try:
        assert direct_links(local) is None
    finally:
        await local.close()
