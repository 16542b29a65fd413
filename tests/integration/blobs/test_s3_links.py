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
from aorta.blobs.port import direct_links
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
    link = await store.upload_link(KEY, 60)
    assert link.method == "PUT" and link.upload_id
    assert "aorta-test-secret" not in link.url
    assert (await send("PUT", link.url, DATA)).status == 200
    with pytest.raises(NotFound):
        await store.stat(KEY)

    info = await store.complete_upload(KEY, link.upload_id, size=len(DATA), md5=MD5)

    assert (info.key, info.size) == (KEY, len(DATA))
    assert b"".join([c async for c in store.get(KEY)]) == DATA
    got = await send("GET", (await store.download_link(KEY, 60)).url)
    assert (got.status, got.data) == (200, DATA)
    with pytest.raises(NotFound):  # completed: nothing pending any more
        await store.complete_upload(KEY, link.upload_id, size=len(DATA), md5=MD5)


async def test_bytes_other_than_announced_are_dropped(store: S3BlobStore) -> None:
    await store.put(KEY, chunks(b"the previous file"))
    link = await store.upload_link(KEY, 60)
    await send("PUT", link.url, DATA[:-1] + b"X")

    with pytest.raises(Invalid, match="MD5"):
        await store.complete_upload(KEY, link.upload_id, size=len(DATA), md5=MD5)

    assert b"".join([c async for c in store.get(KEY)]) == b"the previous file"
    with pytest.raises(NotFound):
        await store.complete_upload(KEY, link.upload_id, size=len(DATA), md5=MD5)


async def test_another_size_nothing_sent_and_a_cancelled_upload_are_refused(
    store: S3BlobStore,
) -> None:
    link = await store.upload_link(KEY, 60)
    await send("PUT", link.url, DATA)
    with pytest.raises(Invalid, match="bytes"):
        await store.complete_upload(KEY, link.upload_id, size=len(DATA) + 1, md5=MD5)
    silent = await store.upload_link(KEY, 60)
    with pytest.raises(Invalid, match="not arrived"):
        await store.complete_upload(KEY, silent.upload_id, size=len(DATA), md5=MD5)
    cancelled = await store.upload_link(KEY, 60)
    await send("PUT", cancelled.url, DATA)
    await store.cancel_upload(KEY, cancelled.upload_id)
    with pytest.raises(NotFound):
        await store.complete_upload(KEY, cancelled.upload_id, size=len(DATA), md5=MD5)
    with pytest.raises(NotFound):
        await store.stat(KEY)


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
        link = await opened.upload_link("staging/d", 60)
    finally:
        await opened.close()
    parts = urlsplit(link.url)
    assert (parts.scheme, parts.netloc) == ("https", "s3.example.org")
    assert "X-Amz-Expires=60" in parts.query


async def test_a_local_folder_hands_out_no_links(tmp_path: Path) -> None:
    local = await LocalBlobStore.open(tmp_path / "blobs")
    try:
        assert direct_links(local) is None
    finally:
        await local.close()
