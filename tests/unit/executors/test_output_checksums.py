"""Pushed outputs get a SHA-256 each, computed as they stream into the blob store and kept in
a manifest beside the payload that the payloads service reads."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.blobs.local import LocalBlobStore
from aorta.executors import VolumeBinding
from aorta.executors.transfers import create_workspace, push_outputs
from aorta.executors.workspace import Workspace
from aorta.payload_layout import (
    StoredChecksum,
    output_checksums_key,
    payload_checksums_prefix,
    read_checksum_manifest,
)

OUTPUT = VolumeBinding("seg/output", "/output", "payloads/p1/operators/seg/")
NAMED = VolumeBinding("seg/masks", "/masks", "payloads/p1/operators/seg/masks/")


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[LocalBlobStore]:
    store = await LocalBlobStore.open(tmp_path / "blobs")
    yield store
    await store.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def manifest(blobs: LocalBlobStore, prefix: str) -> dict[str, StoredChecksum]:
    key = output_checksums_key(prefix)
    data = b"".join([chunk async for chunk in blobs.get(key)])
    return dict(read_checksum_manifest(key, data))


async def test_every_pushed_file_is_in_its_outputs_manifest(
    tmp_path: Path, blobs: LocalBlobStore
) -> None:
    workspace = Workspace(tmp_path / "w")
    await create_workspace(workspace, [OUTPUT, NAMED])
    (workspace.volume("/output") / "deep").mkdir()
    (workspace.volume("/output") / "deep" / "report.txt").write_bytes(b"report")
    (workspace.volume("/masks") / "mask.nii").write_bytes(b"mask")

    pushed = await push_outputs(blobs, [OUTPUT, NAMED], workspace)

    assert pushed.files == 2
    report = "payloads/p1/operators/seg/deep/report.txt"
    mask = "payloads/p1/operators/seg/masks/mask.nii"
    assert await manifest(blobs, OUTPUT.blob_prefix) == {
        report: StoredChecksum(report, 6, sha(b"report"))
    }
    assert await manifest(blobs, NAMED.blob_prefix) == {mask: StoredChecksum(mask, 4, sha(b"mask"))}
    # The manifests sit outside the payload, so no client lists them as files of it.
    listed = [info.key async for info in blobs.list("payloads/p1/")]
    assert sorted(listed) == sorted([report, mask])
    manifests = [info.key async for info in blobs.list(payload_checksums_prefix("p1"))]
    assert sorted(manifests) == sorted(
        [output_checksums_key(OUTPUT.blob_prefix), output_checksums_key(NAMED.blob_prefix)]
    )


async def test_a_later_attempt_replaces_the_manifest(tmp_path: Path, blobs: LocalBlobStore) -> None:
    workspace = Workspace(tmp_path / "w")
    await create_workspace(workspace, [OUTPUT])
    (workspace.volume("/output") / "a.txt").write_bytes(b"first")
    await push_outputs(blobs, [OUTPUT], workspace)
    await create_workspace(workspace, [OUTPUT])
    (workspace.volume("/output") / "b.txt").write_bytes(b"second")
    await push_outputs(blobs, [OUTPUT], workspace)
    key = "payloads/p1/operators/seg/b.txt"
    assert await manifest(blobs, OUTPUT.blob_prefix) == {
        key: StoredChecksum(key, 6, sha(b"second"))
    }


@pytest.mark.parametrize(
    ("key", "data"),
    [
        (output_checksums_key(OUTPUT.blob_prefix), b"not json"),
        (output_checksums_key(OUTPUT.blob_prefix), b'{"files": [{"name": "x"}]}'),
        ("payloads/p1/operators/seg/SHA256SUMS.json", b'{"files": []}'),
    ],
)
def test_a_damaged_or_misplaced_manifest_holds_no_checksum(key: str, data: bytes) -> None:
    assert read_checksum_manifest(key, data) == {}
