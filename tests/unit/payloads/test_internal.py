"""The payloads service's internal verbs: the scheduler's and the gateway's."""

from __future__ import annotations

import hashlib
import json

import pytest

from aorta import subjects
from aorta.blobs import BlobInfo
from aorta.errors import AortaError, ErrorCode, Unavailable
from tests.unit.payloads.payload_calls import JOB, OTHER_JOB, UNUSED_ID, Calls


async def failure(call: object) -> AortaError:
    with pytest.raises(AortaError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def two_inputs(calls: Calls) -> tuple[str, str]:
    first, second = await calls.create(), await calls.create()
    await calls.upload(first, "a.dcm", b"first a", mode=0o600)
    await calls.upload(first, "series/1.dcm", b"one")
    await calls.upload(second, "b.dcm", b"second b")
    await calls.upload(second, "series/2.dcm", b"two")
    return first, second


async def test_a_job_payload_holds_copies_of_its_reusable_inputs(calls: Calls) -> None:
    first, second = await two_inputs(calls)
    payload_id = await calls.for_job(JOB, [first, second])
    found = await calls.details(payload_id)
    assert [(d.file.name, d.file.size, d.file.mode) for d in found] == [
        ("/input/a.dcm", 7, 0o600),
        ("/input/b.dcm", 8, 0),
        ("/input/series/1.dcm", 3, 0),
        ("/input/series/2.dcm", 3, 0),
    ]
    assert list(found[0].header.messages) == [f"sha256 {digest(b'first a')} /input/a.dcm"]
    assert all(d.job_id.value == JOB for d in found)
    assert await calls.files(first) == {"/input/a.dcm": 7, "/input/series/1.dcm": 3}
    await calls.settle()
    created = [e.data for e in calls.events if e.event == "created" and e.subject == payload_id]
    assert created == [{"payload_id": payload_id, "type": "PIPELINE", "job_id": JOB, "files": 4}]


async def test_a_retry_answers_the_jobs_payload(calls: Calls) -> None:
    first, _ = await two_inputs(calls)
    payload_id = await calls.for_job(JOB, [first])
    assert await calls.for_job(JOB, [first]) == payload_id
    error = await failure(calls.for_job(JOB, []))
    assert error.code == ErrorCode.PAYLOAD_STORE_ERROR
    assert f"job {JOB} already has payload {payload_id}" in str(error)


async def test_colliding_inputs_leave_nothing_behind(calls: Calls) -> None:
    first, second = await two_inputs(calls)
    await calls.upload(second, "a.dcm", b"clash")
    error = await failure(calls.for_job(JOB, [first, second]))
    assert error.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert f"payloads {first} and {second} both hold 'a.dcm'" in str(error)
    assert await calls.store.collection("payloads").count({"job_id": JOB}) == 0
    assert [info.key async for info in calls.blobs.list("payloads/")] == sorted(
        [
            *(f"payloads/{first}/input/{n}" for n in ("a.dcm", "series/1.dcm")),
            *(f"payloads/{second}/input/{n}" for n in ("a.dcm", "b.dcm", "series/2.dcm")),
        ]
    )


@pytest.mark.parametrize(
    ("inputs", "code", "text"),
    [
        ([UNUSED_ID], ErrorCode.PAYLOAD_NOT_FOUND, f"no payload has id {UNUSED_ID}"),
        (["nope"], ErrorCode.PAYLOAD_ID_INVALID, "'nope'"),
    ],
)
async def test_unknown_inputs_are_refused(
    calls: Calls, inputs: list[str], code: int, text: str
) -> None:
    error = await failure(calls.for_job(JOB, inputs))
    assert error.code == code and text in str(error)


async def test_a_job_payload_is_no_input(calls: Calls) -> None:
    other = await calls.for_job(OTHER_JOB, [])
    error = await failure(calls.for_job(JOB, [other]))
    assert error.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert f"PIPELINE payload of job {OTHER_JOB}" in str(error)


async def test_discarding_a_jobs_payload_removes_its_files_and_records(calls: Calls) -> None:
    first, second = await two_inputs(calls)
    payload_id = await calls.for_job(JOB, [first, second])
    await calls.upload(payload_id, "extra.dcm", b"extra")
    await calls.put_output(payload_id, "operators/seg/mask.nii", b"mask")
    other = await calls.for_job(OTHER_JOB, [first])
    assert await calls.discard(JOB) == {"payload_id": payload_id}
    assert await calls.blob_keys(payload_id) == []
    assert await calls.store.collection("payloads").count({"job_id": JOB}) == 0
    assert await calls.store.collection("payload_files").count({"payload_id": payload_id}) == 0
    error = await failure(calls.details(payload_id))
    assert error.code == ErrorCode.PAYLOAD_NOT_FOUND
    # The REUSABLE inputs the payload was copied from, and another job's payload, stay.
    assert await calls.files(first) == {"/input/a.dcm": 7, "/input/series/1.dcm": 3}
    assert await calls.files(second) == {"/input/b.dcm": 8, "/input/series/2.dcm": 3}
    assert await calls.files(other) == {"/input/a.dcm": 7, "/input/series/1.dcm": 3}
    await calls.settle()
    deleted = [e.data for e in calls.events if e.event == "deleted"]
    assert deleted == [{"payload_id": payload_id, "type": "PIPELINE", "job_id": JOB, "files": 6}]
    # Idempotent: a retry, or a job that never had a payload, finds nothing to do.
    assert await calls.discard(JOB) == {"payload_id": None}
    assert await calls.discard("c" * 32) == {"payload_id": None}
    assert await calls.for_job(JOB, []) != payload_id


async def test_discard_refuses_a_started_jobs_payload_and_a_bad_job_id(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    await calls.upload(payload_id, "scan.dcm", b"scan")
    await calls.lock(payload_id)
    error = await failure(calls.discard(JOB))
    assert error.code == ErrorCode.PAYLOAD_READ_ONLY
    assert f"job {JOB} started" in str(error)
    assert await calls.files(payload_id) == {"/input/scan.dcm": 4}
    assert (await failure(calls.discard("not-an-id"))).code == ErrorCode.JOB_ID_INVALID


async def test_deleting_with_a_stopped_job_removes_its_read_only_payload(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    await calls.upload(payload_id, "scan.dcm", b"scan")
    await calls.lock(payload_id)
    await calls.put_output(payload_id, "operators/seg/mask.nii", b"mask")
    held = await failure(calls.delete_for_job(JOB))
    assert held.code == ErrorCode.PAYLOAD_IN_USE
    assert await calls.files(payload_id) == {"/input/scan.dcm": 4, "/operators/seg/mask.nii": 4}
    await calls.release(payload_id)
    assert await calls.delete_for_job(JOB) == {"payload_id": payload_id}
    assert await calls.blob_keys(payload_id) == []
    assert await calls.store.collection("payload_files").count({"payload_id": payload_id}) == 0
    assert (await failure(calls.details(payload_id))).code == ErrorCode.PAYLOAD_NOT_FOUND
    assert await calls.delete_for_job(JOB) == {"payload_id": None}


async def test_deleting_with_a_job_never_touches_a_reusable_payload(calls: Calls) -> None:
    first, _ = await two_inputs(calls)
    payload_id = await calls.for_job(JOB, [first])
    assert await calls.delete_for_job(JOB) == {"payload_id": payload_id}
    assert await calls.files(first) == {"/input/a.dcm": 7, "/input/series/1.dcm": 3}


async def test_a_locked_payload_takes_no_upload(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    check = {"payload_id": payload_id}
    assert await calls.json(subjects.PAYLOADS_CHECK_UPLOAD, check) == {
        "payload_id": payload_id,
        "type": "PIPELINE",
        "job_id": JOB,
    }
    await calls.lock(payload_id)
    await calls.lock(payload_id)
    for call in (
        calls.json(subjects.PAYLOADS_CHECK_UPLOAD, check),
        calls.file_added(payload_id, "late", 1, digest(b"x")),
    ):
        error = await failure(call)
        assert error.code == ErrorCode.PAYLOAD_READ_ONLY
        assert f"the payload of job {JOB} is read-only since the job started" in str(error)
    await calls.release(payload_id)
    assert (
        await failure(calls.json(subjects.PAYLOADS_CHECK_UPLOAD, check))
    ).code == ErrorCode.PAYLOAD_READ_ONLY


async def test_a_payload_receiving_a_file_is_not_locked_until_the_file_is_recorded(
    calls: Calls,
) -> None:
    payload_id = await calls.for_job(JOB, [])
    first, second = "1" * 32, "2" * 32
    for mark in (first, second):
        answer = await calls.json(
            subjects.PAYLOADS_CHECK_UPLOAD, {"payload_id": payload_id, "commit": mark}
        )
        assert answer == {"payload_id": payload_id, "type": "PIPELINE", "job_id": JOB}
    error = await failure(calls.lock(payload_id))
    assert error.code == ErrorCode.PAYLOAD_IN_USE
    assert f"payload {payload_id} is still receiving files" in str(error)
    document = {"payload_id": payload_id, "name": "a", "size": 1, "sha256": None, "commit": first}
    assert await calls.json(subjects.PAYLOADS_FILE_ADDED, document) == {}
    assert (await failure(calls.lock(payload_id))).code == ErrorCode.PAYLOAD_IN_USE
    released = {"payload_id": payload_id, "release": second}
    for _ in range(2):
        await calls.json(subjects.PAYLOADS_CHECK_UPLOAD, released)
    await calls.lock(payload_id)
    late = await failure(
        calls.json(subjects.PAYLOADS_CHECK_UPLOAD, {"payload_id": payload_id, "commit": first})
    )
    assert late.code == ErrorCode.PAYLOAD_READ_ONLY
    await calls.json(subjects.PAYLOADS_CHECK_UPLOAD, released)


async def test_lock_and_release_belong_to_the_payloads_job(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    assert (await failure(calls.lock(payload_id, OTHER_JOB))).code == ErrorCode.PAYLOAD_IN_USE
    await calls.lock(payload_id)
    assert (await failure(calls.release(payload_id, OTHER_JOB))).code == ErrorCode.PAYLOAD_IN_USE
    reusable = await calls.create()
    error = await failure(calls.lock(reusable))
    assert error.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert (await failure(calls.lock(UNUSED_ID))).code == ErrorCode.PAYLOAD_NOT_FOUND


async def test_file_added_records_and_announces_the_file(calls: Calls) -> None:
    payload_id = await calls.create()
    await calls.upload(payload_id, "dir/x.dcm", b"xyz", mode=0o644)
    await calls.upload(payload_id, "dir/x.dcm", b"replaced")
    files = await calls.store.collection("payload_files").find({"payload_id": payload_id})
    assert [(d["name"], d["size"], d["sha256"], d["mode"]) for d in files] == [
        ("input/dir/x.dcm", 8, digest(b"replaced"), 0)
    ]
    await calls.settle()
    added = [e.data for e in calls.events if e.event == "file.added"]
    assert added[-1] == {
        "payload_id": payload_id,
        "name": "/input/dir/x.dcm",
        "size": 8,
        "sha256": digest(b"replaced"),
    }


@pytest.mark.parametrize(
    ("change", "code", "text"),
    [
        ({"name": "../x"}, ErrorCode.PAYLOAD_FILE_NAME_INVALID, "'..' path segment"),
        ({"size": -1}, ErrorCode.PAYLOAD_REQUEST_INVALID, "size must be"),
        ({"sha256": "ABC"}, ErrorCode.PAYLOAD_REQUEST_INVALID, "sha256 must be"),
        ({"mode": 0o10000}, ErrorCode.PAYLOAD_REQUEST_INVALID, "mode must be"),
        ({"payload_id": UNUSED_ID}, ErrorCode.PAYLOAD_NOT_FOUND, "no payload has id"),
    ],
)
async def test_file_added_checks_its_body(
    calls: Calls, change: dict[str, object], code: int, text: str
) -> None:
    payload_id = await calls.create()
    body = {"payload_id": payload_id, "name": "x", "size": 1, "sha256": None, "mode": 0}
    error = await failure(calls.json(subjects.PAYLOADS_FILE_ADDED, {**body, **change}))
    assert error.code == code and text in str(error)


async def test_internal_bodies_must_be_json_objects(calls: Calls) -> None:
    for subject in (
        subjects.PAYLOADS_LOCK,
        subjects.PAYLOADS_LOCATE,
        subjects.PAYLOADS_CREATE_FOR_JOB,
        subjects.PAYLOADS_DISCARD_FOR_JOB,
    ):
        error = await failure(calls.bus.request(subject, b"[1, 2]"))
        assert error.code == ErrorCode.PAYLOAD_REQUEST_INVALID
        assert "malformed payloads" in str(error)
    body = json.dumps({"job_id": JOB, "input_payloads": "not a list"}).encode()
    error = await failure(calls.bus.request(subjects.PAYLOADS_CREATE_FOR_JOB, body))
    assert "input_payloads must be a list" in str(error)


async def test_locate_finds_what_a_download_names(calls: Calls) -> None:
    payload_id = await calls.for_job(JOB, [])
    await calls.upload(payload_id, "Scan.dcm", b"scan", mode=0o600)
    await calls.put_output(payload_id, "operators/seg/mask.nii", b"mask")
    prefix = f"payloads/{payload_id}/"
    for name, key, mode in [
        ("/input/Scan.dcm", "input/Scan.dcm", 0o600),
        ("./input/scan.DCM", "input/Scan.dcm", 0o600),
        ("Scan.dcm", "input/Scan.dcm", 0o600),
        ("operators/seg/mask.nii", "operators/seg/mask.nii", 0),
    ]:
        answer = await calls.json(
            subjects.PAYLOADS_LOCATE, {"payload_id": payload_id, "name": name}
        )
        assert answer == {"key": prefix + key, "name": "/" + key, "size": 4, "mode": mode}
    error = await failure(
        calls.json(subjects.PAYLOADS_LOCATE, {"payload_id": payload_id, "name": "/nope"})
    )
    assert error.code == ErrorCode.PAYLOAD_FILE_NOT_FOUND


async def test_a_copy_failing_midway_leaves_no_payload_and_no_files(
    calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await two_inputs(calls)
    copy = calls.blobs.copy

    async def failing(source: str, target: str) -> BlobInfo:
        if source.endswith("/b.dcm"):
            raise Unavailable("the blob store went away")
        return await copy(source, target)

    monkeypatch.setattr(calls.blobs, "copy", failing)
    error = await failure(calls.for_job(JOB, [first, second]))
    assert isinstance(error, Unavailable) and "went away" in str(error)
    assert await calls.store.collection("payloads").count({"job_id": JOB}) == 0
    owners = {info.key.split("/")[1] async for info in calls.blobs.list("payloads/")}
    assert owners == {first, second}
    monkeypatch.setattr(calls.blobs, "copy", copy)
    payload_id = await calls.for_job(JOB, [first, second])
    assert len(await calls.files(payload_id)) == 4
