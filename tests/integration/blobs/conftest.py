"""Blob stores for the contract suite: every adapter, each on real infrastructure.

`store` is parametrized over the local folder, S3 through a `moto_server` started once per
test module (a fresh bucket per test, once at its root and once under a key prefix), and a real
S3/MinIO endpoint only when `AORTA_TEST_S3_ENDPOINT` (with `AORTA_TEST_S3_ACCESS_KEY`,
`AORTA_TEST_S3_SECRET_KEY`, optionally `AORTA_TEST_S3_BUCKET` and `AORTA_TEST_S3_SECURE`) is
set: each test then works under a prefix of its own, emptied afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aorta.blobs.local import LocalBlobStore
from aorta.blobs.port import BlobStore
from aorta.blobs.s3 import DEFAULT_PART_SIZE, S3BlobStore
from aorta.testing.s3 import S3Server

LOCAL_BLOCK_SIZE = 1 << 20  # what LocalBlobStore writes per thread call

_EXTERNAL = os.environ.get("AORTA_TEST_S3_ENDPOINT", "")
STORE_KINDS = ["local", "s3", "s3-prefixed", *(["s3-external"] if _EXTERNAL else [])]


@dataclass
class StoreCase:
    """A store under test, its kind, and the size at which it changes strategy (a new block
    or part), which tests cross on purpose."""

    kind: str
    store: BlobStore
    boundary: int


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def unique_bucket() -> str:
    return f"aorta-test-{uuid.uuid4().hex[:20]}"


async def open_moto_store(server: S3Server, location: str) -> S3BlobStore:
    return await S3BlobStore.open(
        location,
        endpoint=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        region=server.region,
    )


@pytest.fixture(params=STORE_KINDS)
async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreCase]:
    kind: str = request.param
    if kind == "local":
        store: BlobStore = await LocalBlobStore.open(tmp_path / "blobs")
        boundary = LOCAL_BLOCK_SIZE
    elif kind == "s3-external":
        store = await S3BlobStore.open(
            f"s3://{os.environ.get('AORTA_TEST_S3_BUCKET', 'aorta-test')}/run-{uuid.uuid4().hex}",
            endpoint=_EXTERNAL,
            access_key=os.environ["AORTA_TEST_S3_ACCESS_KEY"],
            secret_key=os.environ["AORTA_TEST_S3_SECRET_KEY"],
            secure=os.environ.get("AORTA_TEST_S3_SECURE", "").lower() in {"1", "true", "yes"},
        )
        boundary = DEFAULT_PART_SIZE
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        suffix = "/base/prefix" if kind == "s3-prefixed" else ""
        store = await open_moto_store(server, f"s3://{unique_bucket()}{suffix}")
        boundary = DEFAULT_PART_SIZE
    try:
        yield StoreCase(kind, store, boundary)
    finally:
        if kind == "s3-external":
            for key in [info.key async for info in store.list("")]:
                await store.delete(key)
        await store.close()


@pytest.fixture
def store(case: StoreCase) -> BlobStore:
    return case.store
