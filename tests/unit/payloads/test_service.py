"""The payloads service's Clara verbs over the in-process bus (real SQLite, real blob folder)."""

from __future__ import annotations

import hashlib

import pytest

from aorta import subjects
from aorta.api import payloads_pb2
from aorta.errors import AortaError, ErrorCode
from tests.unit.payloads.payload_calls import JOB, UNUSED_ID, Calls, ident


async def failure(call: object) -> AortaError:
    with pytest.raises(AortaError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_create_makes_an_empty_reusable_payload_with_metadata(calls: Calls) -> None:
    payload_id = await calls.create({"study": "ct-1", "Site": "north"})
    assert len(payload_id) == 32 and int(payload_id, 16) >= 0
    (only,) = await calls.details(payload_id)
    assert only.header.code == 0
    assert only.payload_id.value == payload_id
    assert only.type == payloads_pb2.PAYLOAD_TYPE_REUSABLE
    assert not only.HasField("file") and not only.job_id.value
    assert dict(only.metadata) == {"study": "ct-1", "Site": "north"}
    assert await calls.event_types() == [("created", payload_id)]
    assert calls.events[0].data == {
        "payload_id": payload_id,
        "type": "REUSABLE",
        "job_id": None,
        "files": 0,
    }


async def test_create_refuses_metadata_breaking_claras_rules(calls: Calls) -> None:
    error = await failure(calls.create({"Key": "1", "KEY": "2"}))
    assert error.code == ErrorCode.METADATA_INVALID
    assert "keys are not case-sensitive" in str(error)
    # Clara's 4 MB per object (4 MiB of keys and values) fits one answer; a little more does not.
    too_large = {f"k{i:05}": "v" * 256 for i in range(16_100)}
    error = await failure(calls.create(too_large))
    assert error.code == ErrorCode.METADATA_INVALID
    assert await calls.event_types() == []
    assert await calls.create({f"k{i:05}": "v" * 256 for i in range(15_000)})


async def test_details_lists_the_blob_store_with_sizes_modes_and_checksums(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    await calls.upload(payload_id, "b/scan.dcm", b"dicom", mode=0o640)
    await calls.upload(payload_id, "a.txt", b"")
    await calls.put_output(payload_id, "operators/seg/mask.nii", b"mask!")
    found = await calls.details(payload_id)
    assert [(d.file.name, d.file.size, d.file.mode) for d in found] == [
        ("/input/a.txt", 0, 0),
        ("/input/b/scan.dcm", 5, 0o640),
        ("/operators/seg/mask.nii", 5, 0),
    ]
    assert [list(d.header.messages) for d in found] == [
        [f"sha256 {hashlib.sha256(b'').hexdigest()} /input/a.txt"],
        [f"sha256 {hashlib.sha256(b'dicom').hexdigest()} /input/b/scan.dcm"],
        [],
    ]
    for item in found:
        assert item.header.code == 0
        assert item.payload_id.value == payload_id
        assert item.type == payloads_pb2.PAYLOAD_TYPE_PIPELINE
        assert item.job_id.value == JOB


async def test_outputs_show_the_checksums_their_executor_recorded(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    await calls.push_output(payload_id, "seg", {"mask.nii": b"mask!", "deep/r.txt": b"r"})
    await calls.put_output(payload_id, "operators/seg/stray.txt", b"no manifest names it")
    found = await calls.details(payload_id)

    def line(data: bytes, name: str) -> list[str]:
        return [f"sha256 {hashlib.sha256(data).hexdigest()} {name}"]

    assert [(d.file.name, list(d.header.messages)) for d in found] == [
        ("/operators/seg/deep/r.txt", line(b"r", "/operators/seg/deep/r.txt")),
        ("/operators/seg/mask.nii", line(b"mask!", "/operators/seg/mask.nii")),
        ("/operators/seg/stray.txt", []),
    ]
    assert await calls.delete_for_job(JOB) == {"payload_id": payload_id}
    assert [info.key async for info in calls.blobs.list(f"checksums/payloads/{payload_id}/")] == []


async def test_a_stale_file_record_shows_no_checksum(calls: Calls) -> None:
    payload_id = await calls.create()
    await calls.upload(payload_id, "a", b"first")
    await calls.put_output(payload_id, "input/a", b"replaced without a record")
    (item,) = await calls.details(payload_id)
    assert item.file.size == len(b"replaced without a record")
    assert list(item.header.messages) == []


async def test_metadata_rides_in_the_first_details_message_only(calls: Calls) -> None:
    payload_id = await calls.create({"k": "v"})
    await calls.upload(payload_id, "1", b"1")
    await calls.upload(payload_id, "2", b"2")
    assert [dict(d.metadata) for d in await calls.details(payload_id)] == [{"k": "v"}, {}]


@pytest.mark.parametrize(
    ("payload_id", "code"),
    [(UNUSED_ID, ErrorCode.PAYLOAD_NOT_FOUND), ("not-an-id", ErrorCode.PAYLOAD_ID_INVALID)],
)
async def test_details_of_an_unknown_or_malformed_id(
    calls: Calls, payload_id: str, code: int
) -> None:
    error = await failure(calls.details(payload_id))
    assert error.code == code


async def test_remove_deletes_one_file_by_any_spelling_details_accepts(calls: Calls) -> None:
    payload_id = await calls.create()
    for name in ("keep.dcm", "Gone.dcm", "dir/also-gone"):
        await calls.upload(payload_id, name, name.encode())
    await calls.remove(payload_id, "./input/gone.DCM")
    await calls.remove(payload_id, "dir/also-gone")
    assert await calls.files(payload_id) == {"/input/keep.dcm": 8}
    assert await calls.blob_keys(payload_id) == ["input/keep.dcm"]
    files = calls.store.collection("payload_files")
    assert [d["name"] for d in await files.find({"payload_id": payload_id})] == ["input/keep.dcm"]
    await calls.settle()
    removed = [e.data for e in calls.events if e.event == "file.removed"]
    assert removed == [
        {"payload_id": payload_id, "name": "/input/Gone.dcm", "size": 8},
        {"payload_id": payload_id, "name": "/input/dir/also-gone", "size": 13},
    ]


@pytest.mark.parametrize(
    ("name", "code", "text"),
    [
        ("", ErrorCode.PAYLOAD_FILE_NAME_INVALID, "name the file to remove"),
        ("/input/missing", ErrorCode.PAYLOAD_FILE_NOT_FOUND, "has no file named 'input/missing'"),
        ("/input/../input/a", ErrorCode.PAYLOAD_FILE_NAME_INVALID, "'..' path segment"),
        ("/input", ErrorCode.PAYLOAD_FILE_NOT_FOUND, "is a folder"),
    ],
)
async def test_remove_explains_what_it_cannot_do(
    calls: Calls, name: str, code: int, text: str
) -> None:
    payload_id = await calls.create()
    await calls.upload(payload_id, "a", b"a")
    error = await failure(calls.remove(payload_id, name))
    assert error.code == code
    assert text in str(error)


async def test_remove_from_a_locked_payload_is_refused(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    await calls.upload(payload_id, "a", b"a")
    await calls.lock(payload_id)
    error = await failure(calls.remove(payload_id, "/input/a"))
    assert error.code == ErrorCode.PAYLOAD_READ_ONLY
    assert await calls.files(payload_id) == {"/input/a": 1}


async def test_delete_removes_files_and_records(calls: Calls) -> None:
    payload_id = await calls.create()
    await calls.upload(payload_id, "a", b"a")
    await calls.upload(payload_id, "dir/b", b"bb")
    await calls.delete(payload_id)
    assert await calls.blob_keys(payload_id) == []
    assert await calls.store.collection("payload_files").count({"payload_id": payload_id}) == 0
    assert await calls.store.collection("payloads").count() == 0
    assert (await failure(calls.details(payload_id))).code == ErrorCode.PAYLOAD_NOT_FOUND
    assert (await failure(calls.delete(payload_id))).code == ErrorCode.PAYLOAD_NOT_FOUND
    deleted = [e.data for e in calls.events if e.event == "deleted"]
    assert deleted == [{"payload_id": payload_id, "type": "REUSABLE", "job_id": None, "files": 2}]


async def test_a_job_payload_is_deleted_alone_by_nobody_but_a_forcing_admin(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    created = await failure(calls.delete(payload_id))
    assert created.code == ErrorCode.PAYLOAD_IN_USE
    assert f"the input of job {JOB}, which has not run" in str(created)
    await calls.lock(payload_id)
    for force in (False, True):
        running = await failure(calls.delete(payload_id, force=force))
        assert running.code == ErrorCode.PAYLOAD_IN_USE
        assert f"in use by job {JOB}, which is queued or running" in str(running)
    await calls.release(payload_id)
    stopped = await failure(calls.delete(payload_id))
    assert stopped.code == ErrorCode.PAYLOAD_READ_ONLY
    assert f"`aorta delete job {JOB}`" in str(stopped)
    assert await calls.files(payload_id) == {}
    await calls.delete(payload_id, force=True)
    assert (await failure(calls.details(payload_id))).code == ErrorCode.PAYLOAD_NOT_FOUND


async def test_a_delete_interrupted_midway_is_finished_by_the_next(calls: Calls) -> None:
    payload_id = await calls.create()
    await calls.upload(payload_id, "a", b"a")
    await calls.store.collection("payloads").update(payload_id, {"deleting": True})
    assert (await failure(calls.details(payload_id))).code == ErrorCode.PAYLOAD_NOT_FOUND
    await calls.delete(payload_id)
    assert await calls.blob_keys(payload_id) == []
    assert await calls.store.collection("payloads").count() == 0


async def test_metadata_is_added_and_removed_by_claras_rules(calls: Calls) -> None:
    payload_id = await calls.create({"a": "1"})
    add = payloads_pb2.PayloadsAddMetadataRequest(
        payload_id=ident(payload_id), metadata={"B": "2", "c": "3"}
    )
    added = payloads_pb2.PayloadsAddMetadataResponse.FromString(
        await calls.bus.request(subjects.PAYLOADS_ADD_METADATA, add.SerializeToString())
    )
    assert added.payload_id.value == payload_id
    assert dict(added.metadata) == {"a": "1", "B": "2", "c": "3"}
    again = payloads_pb2.PayloadsAddMetadataRequest(
        payload_id=ident(payload_id), metadata={"A": "x"}
    )
    error = await failure(
        calls.bus.request(subjects.PAYLOADS_ADD_METADATA, again.SerializeToString())
    )
    assert error.code == ErrorCode.METADATA_INVALID
    remove = payloads_pb2.PayloadsRemoveMetadataRequest(
        payload_id=ident(payload_id), keys=["b", "absent"]
    )
    removed = payloads_pb2.PayloadsRemoveMetadataResponse.FromString(
        await calls.bus.request(subjects.PAYLOADS_REMOVE_METADATA, remove.SerializeToString())
    )
    assert dict(removed.metadata) == {"a": "1", "c": "3"}
    assert dict((await calls.details(payload_id))[0].metadata) == {"a": "1", "c": "3"}


async def test_metadata_on_a_job_payload_is_refused(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    add = payloads_pb2.PayloadsAddMetadataRequest(payload_id=ident(payload_id), metadata={"k": "v"})
    error = await failure(
        calls.bus.request(subjects.PAYLOADS_ADD_METADATA, add.SerializeToString())
    )
    assert error.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert "only on REUSABLE payloads" in str(error)


async def test_a_body_that_is_no_request_message_is_refused(calls: Calls) -> None:
    error = await failure(calls.bus.request(subjects.PAYLOADS_REMOVE, b"\xff\xff"))
    assert error.code == ErrorCode.PAYLOAD_REQUEST_INVALID
