"""The S3 store's direct links against moto: a URL PUTs and GETs one object with no
credentials of the caller's own, and `promote` moves only the bytes that were announced."""

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
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(params=["", "/under/prefix"])
async def store(request: pytest.FixtureRequest, s3_server: S3Server) -> AsyncIterator[S3BlobStore]:
    opened = await open_moto_store(
        s3_server, f"s3://aorta-test-{uuid.uuid4().hex[:20]}{request.param}"
    )
    try:
        yield opened
    finally:
        await opened.close()


async def send(method: str, url: str, body: bytes | None = None) -> urllib3.BaseHTTPResponse:
    """An HTTP request with nothing but the URL, as a client holds it."""
    http = urllib3.PoolManager()
    return await asyncio.to_thread(http.request, method, url, body=body)


async def test_a_link_moves_one_object_and_promote_records_its_checksum(
    store: S3BlobStore,
) -> None:
    link = await store.upload_link("staging/a", 60)
    assert link.method == "PUT"
    assert "aorta-test-secret" not in link.url
    assert (await send("PUT", link.url, DATA)).status == 200

    info = await store.promote("staging/a", "payloads/p/input/a.bin", size=len(DATA), sha256=DIGEST)

    assert (info.size, info.sha256) == (len(DATA), DIGEST)
    assert b"".join([c async for c in store.get("payloads/p/input/a.bin")]) == DATA
    assert [i.key async for i in store.list("staging/")] == []
    got = await send("GET", (await store.download_link("payloads/p/input/a.bin", 60)).url)
    assert (got.status, got.data) == (200, DATA)


async def test_promote_refuses_bytes_other_than_announced(store: S3BlobStore) -> None:
    link = await store.upload_link("staging/b", 60)
    tampered = DATA[:-1] + b"X"
    await send("PUT", link.url, tampered)

    with pytest.raises(Invalid, match="sha256"):
        await store.promote("staging/b", "payloads/p/input/b.bin", size=len(DATA), sha256=DIGEST)

    with pytest.raises(NotFound):
        await store.stat("payloads/p/input/b.bin")
    assert [i.key async for i in store.list("staging/")] == []


async def test_promote_refuses_another_size_and_a_missing_upload(store: S3BlobStore) -> None:
    await send("PUT", (await store.upload_link("staging/c", 60)).url, DATA)
    with pytest.raises(Invalid, match="bytes"):
        await store.promote("staging/c", "payloads/p/input/c", size=len(DATA) + 1, sha256=DIGEST)
    with pytest.raises(NotFound):
        await store.promote("staging/none", "payloads/p/input/c", size=1, sha256=DIGEST)


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
