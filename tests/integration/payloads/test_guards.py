"""What keeps payload bytes whole, on both blob stores: broken-off and concurrent uploads,
replacement, read-only and in-use payloads, a job's payload made from reusable ones, and the
discard of one whose job was never revealed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aorta import subjects
from aorta.api import payloads_pb2
from aorta.errors import AortaError, ErrorCode
from aorta.payload_names import checksums
from tests.integration.payloads.payload_grpc import (
    JOB,
    Platform,
    Stub,
    chunk_messages,
    create,
    delete,
    details,
    digest,
    download,
    internal,
    job_payload,
    listing,
    pattern,
    remove,
    upload,
)

pytestmark = pytest.mark.timeout(60)

MiB = 1 << 20


def staged_parts(data_dir: Path) -> list[Path]:
    """Files a local put is writing (or left behind)."""
    return list((data_dir / "blobs" / ".aorta" / "staging").glob("*/*.part"))


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    """Waits (up to 30 s) until `condition` holds: what the server does after a client went
    away has no other sign."""
    async with asyncio.timeout(30):
        while not await condition():  # noqa: ASYNC110 (polling is the only way to see it)
            await asyncio.sleep(0.02)


async def is_staging(data_dir: Path, wanted: bool) -> bool:
    return bool(staged_parts(data_dir)) == wanted


async def test_a_stream_broken_off_mid_file_leaves_nothing_of_it(
    stub: Stub, platform: Platform
) -> None:
    payload_id = await create(stub)
    asked = asyncio.Event()

    async def requests() -> AsyncIterator[payloads_pb2.PayloadsUploadRequest]:
        for message in chunk_messages(payload_id, "done", b"complete"):
            yield message
        for index, message in enumerate(chunk_messages(payload_id, "partial", pattern(12 * MiB))):
            if index == 180:  # past the S3 store's first 8 MiB part
                asked.set()
                await asyncio.Event().wait()
            yield message

    call = stub.Upload(requests())
    await asyncio.wait_for(asked.wait(), 20)
    if platform.kind == "local":
        await eventually(lambda: is_staging(platform.data_dir, True))
    else:
        await asyncio.sleep(0.5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    async def only_the_complete_file() -> bool:
        return await listing(stub, payload_id) == {"/input/done": 8}

    await eventually(only_the_complete_file)
    await eventually(lambda: is_staging(platform.data_dir, False))
    reply = await upload(stub, payload_id, [("partial", b"now whole")])
    assert reply.header.code == 0
    assert await listing(stub, payload_id) == {"/input/done": 8, "/input/partial": 9}


async def test_concurrent_uploads_to_one_payload(stub: Stub) -> None:
    payload_id = await create(stub)
    files = {f"part-{i}.bin": pattern(2 * MiB + i, i) for i in range(6)}
    replies = await asyncio.gather(
        *(upload(stub, payload_id, [(name, data)]) for name, data in files.items())
    )
    assert all(reply.header.code == 0 for reply in replies)
    assert await listing(stub, payload_id) == {f"/input/{n}": len(d) for n, d in files.items()}
    for name, data in files.items():
        assert digest((await download(stub, payload_id, name))[1]) == digest(data)


async def test_a_re_upload_replaces_the_file(stub: Stub) -> None:
    payload_id = await create(stub)
    await upload(stub, payload_id, [("a.dcm", pattern(3 * MiB))])
    reply = await upload(stub, payload_id, [("a.dcm", b"smaller")])
    assert checksums(reply.header.messages) == {"/input/a.dcm": digest(b"smaller")}
    assert await listing(stub, payload_id) == {"/input/a.dcm": 7}
    assert (await download(stub, payload_id, "/input/a.dcm"))[1] == b"smaller"


async def test_a_started_jobs_payload_takes_no_more_files(stub: Stub, platform: Platform) -> None:
    payload_id = await job_payload(platform.bus, [])
    assert (await upload(stub, payload_id, [("scan.dcm", b"scan")])).header.code == 0
    await internal(platform.bus, subjects.PAYLOADS_LOCK, {"payload_id": payload_id, "job_id": JOB})
    refused = await upload(stub, payload_id, [("scan.dcm", b"replaced"), ("more", b"x")])
    assert refused.header.code == ErrorCode.PAYLOAD_READ_ONLY
    assert (
        f"the payload of job {JOB} is read-only since the job started"
        in (refused.header.messages[0])
    )
    assert (await remove(stub, payload_id, "/input/scan.dcm")).code == ErrorCode.PAYLOAD_READ_ONLY
    assert (await download(stub, payload_id, "/input/scan.dcm"))[1] == b"scan"


async def test_a_lock_during_an_upload_keeps_the_previous_file(
    stub: Stub, platform: Platform
) -> None:
    payload_id = await job_payload(platform.bus, [])
    await upload(stub, payload_id, [("scan.dcm", b"original")])
    halfway = asyncio.Event()
    go_on = asyncio.Event()

    async def requests() -> AsyncIterator[payloads_pb2.PayloadsUploadRequest]:
        for index, message in enumerate(chunk_messages(payload_id, "scan.dcm", pattern(MiB))):
            if index == 8:
                halfway.set()
                await go_on.wait()
            yield message

    call = stub.Upload(requests())
    await asyncio.wait_for(halfway.wait(), 10)
    await internal(platform.bus, subjects.PAYLOADS_LOCK, {"payload_id": payload_id, "job_id": JOB})
    go_on.set()
    reply = await call
    assert reply.header.code == ErrorCode.PAYLOAD_READ_ONLY
    assert (await download(stub, payload_id, "/input/scan.dcm"))[1] == b"original"


async def test_a_jobs_payload_is_never_deleted_alone_but_by_a_forcing_admin(
    stub: Stub, platform: Platform
) -> None:
    payload_id = await job_payload(platform.bus, [])
    await upload(stub, payload_id, [("a", b"a")])
    created = await delete(stub, payload_id)
    assert created.code == ErrorCode.PAYLOAD_IN_USE
    assert f"the input of job {JOB}, which has not run" in created.messages[0]
    document = {"payload_id": payload_id, "job_id": JOB}
    await internal(platform.bus, subjects.PAYLOADS_LOCK, document)
    for force in (False, True):
        running = await delete(stub, payload_id, force=force)
        assert running.code == ErrorCode.PAYLOAD_IN_USE
        assert f"in use by job {JOB}, which is queued or running" in running.messages[0]
    await internal(platform.bus, subjects.PAYLOADS_RELEASE, document)
    stopped = await delete(stub, payload_id)
    assert stopped.code == ErrorCode.PAYLOAD_READ_ONLY
    assert f"`aorta delete job {JOB}`" in stopped.messages[0]
    assert await listing(stub, payload_id) == {"/input/a": 1}
    assert (await delete(stub, payload_id, force=True)).code == 0
    assert [info.key async for info in platform.blobs.list(f"payloads/{payload_id}/")] == []


async def test_a_jobs_payload_gets_copies_of_its_reusable_inputs(
    stub: Stub, platform: Platform
) -> None:
    first, second = await create(stub), await create(stub)
    big = pattern(9 * MiB, 7)
    await upload(stub, first, [("study/ct.dcm", big), ("notes.txt", b"first")])
    await upload(stub, second, [("study/mr.dcm", b"mr"), ("extra.txt", b"second")])
    payload_id = await job_payload(platform.bus, [first, second])
    found = await listing(stub, payload_id)
    assert found == {
        "/input/extra.txt": 6,
        "/input/notes.txt": 5,
        "/input/study/ct.dcm": len(big),
        "/input/study/mr.dcm": 2,
    }
    assert digest((await download(stub, payload_id, "/input/study/ct.dcm"))[1]) == digest(big)
    lines = [line for item in await details(stub, payload_id) for line in item.header.messages]
    assert checksums(lines)["/input/study/ct.dcm"] == digest(big)
    assert await listing(stub, first) == {"/input/notes.txt": 5, "/input/study/ct.dcm": len(big)}


async def test_colliding_inputs_make_no_payload(stub: Stub, platform: Platform) -> None:
    first, second = await create(stub), await create(stub)
    await upload(stub, first, [("a", b"1"), ("same.dcm", b"1")])
    await upload(stub, second, [("same.dcm", b"2")])
    with pytest.raises(AortaError) as caught:
        await job_payload(platform.bus, [first, second])
    assert caught.value.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert "both hold 'same.dcm'" in str(caught.value)
    owners = {info.key.split("/")[1] async for info in platform.blobs.list("payloads/")}
    assert owners == {first, second}


async def test_the_payload_of_a_job_never_revealed_is_discarded_whole(
    stub: Stub, platform: Platform
) -> None:
    reusable = await create(stub)
    big = pattern(9 * MiB, 3)
    await upload(stub, reusable, [("study/ct.dcm", big)])
    payload_id = await job_payload(platform.bus, [reusable])
    await upload(stub, payload_id, [("notes.txt", b"notes")])
    discard = {"job_id": JOB}
    answer = await internal(platform.bus, subjects.PAYLOADS_DISCARD_FOR_JOB, discard)
    assert answer == {"payload_id": payload_id}
    assert [info.key async for info in platform.blobs.list(f"payloads/{payload_id}/")] == []
    (gone,) = await details(stub, payload_id)
    assert gone.header.code == ErrorCode.PAYLOAD_NOT_FOUND
    assert await listing(stub, reusable) == {"/input/study/ct.dcm": len(big)}
    assert await internal(platform.bus, subjects.PAYLOADS_DISCARD_FOR_JOB, discard) == {
        "payload_id": None
    }
