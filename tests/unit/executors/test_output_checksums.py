"""Pushed outputs get a SHA-256 each, computed as they stream into the blob store and kept in
a manifest beside the payload that the payloads service reads."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import pytest

from aorta.blobs import BlobInfo
from aorta.blobs.local import LocalBlobStore
from aorta.errors import Invalid, NotFound
from aorta.executors import VolumeBinding
from aorta.executors.transfers import push_outputs
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import create_workspace
from aorta.payload_layout import (
    StoredChecksum,
    output_checksums_key,
    payload_checksums_prefix,
    read_checksum_manifest,
)

OUTPUT = VolumeBinding("seg/output", "/output", "payloads/p1/operators/seg/")
NAMED = VolumeBinding("seg/masks", "/masks", "payloads/p1/operators/seg/masks/")


class CountedStore(LocalBlobStore):
    """A local store that notes each call that changes it."""

    changes: list[str]

    async def put(self, key: str, chunks: AsyncIterable[bytes | memoryview]) -> BlobInfo:
        self.changes.append(f"put {key}")
        return await super().put(key, chunks)

    async def delete(self, key: str) -> None:
        self.changes.append(f"delete {key}")
        await super().delete(key)

    async def delete_prefix(self, prefix: str) -> int:
        self.changes.append(f"delete_prefix {prefix}")
        return await super().delete_prefix(prefix)


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[CountedStore]:
    store = await CountedStore.open(tmp_path / "blobs")
    store.changes = []
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


async def test_an_output_with_no_file_stores_nothing_where_nothing_was_stored(
    tmp_path: Path, blobs: CountedStore
) -> None:
    workspace = Workspace(tmp_path / "w")
    await create_workspace(workspace, [OUTPUT, NAMED])
    (workspace.volume("/masks") / "mask.nii").write_bytes(b"mask")

    pushed = await push_outputs(blobs, [OUTPUT, NAMED], workspace)

    assert pushed.files == 1
    mask = NAMED.blob_prefix + "mask.nii"
    # No manifest for the output that holds no file, no deletion where nothing was stored.
    assert blobs.changes == [f"put {mask}", f"put {output_checksums_key(NAMED.blob_prefix)}"]
    with pytest.raises(NotFound):
        await blobs.stat(output_checksums_key(OUTPUT.blob_prefix))


async def test_an_empty_attempt_removes_an_earlier_attempts_files_and_manifest(
    tmp_path: Path, blobs: CountedStore
) -> None:
    workspace = Workspace(tmp_path / "w")
    await create_workspace(workspace, [OUTPUT])
    (workspace.volume("/output") / "a.txt").write_bytes(b"first")
    await push_outputs(blobs, [OUTPUT], workspace)
    await create_workspace(workspace, [OUTPUT])
    blobs.changes.clear()

    pushed = await push_outputs(blobs, [OUTPUT], workspace)

    assert pushed.files == 0
    assert [info.key async for info in blobs.list("payloads/p1/")] == []
    assert [info.key async for info in blobs.list(payload_checksums_prefix("p1"))] == []
    assert blobs.changes == [
        f"delete {output_checksums_key(OUTPUT.blob_prefix)}",
        f"delete_prefix {OUTPUT.blob_prefix}",
    ]


async def test_a_name_no_key_can_have_keeps_the_earlier_files_and_manifest(
    tmp_path: Path, blobs: CountedStore
) -> None:
    workspace = Workspace(tmp_path / "w")
    await create_workspace(workspace, [OUTPUT])
    (workspace.volume("/output") / "a.txt").write_bytes(b"first")
    await push_outputs(blobs, [OUTPUT], workspace)
    await create_workspace(workspace, [OUTPUT])
    (workspace.volume("/output") / "bad\tname").write_bytes(b"second")
    blobs.changes.clear()

    with pytest.raises(Invalid, match="/output/bad"):
        await push_outputs(blobs, [OUTPUT], workspace)

    assert blobs.changes == []
    key = OUTPUT.blob_prefix + "a.txt"
    assert await manifest(blobs, OUTPUT.blob_prefix) == {key: StoredChecksum(key, 5, sha(b"first"))}


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
