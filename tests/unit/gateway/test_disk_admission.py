"""New jobs and uploads refused at the gateway while a disk is nearly full; reads served."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, cast

import grpc
import pytest
from google.protobuf.message import Message

from aorta.api import jobs_pb2, jobs_pb2_grpc, payloads_pb2, payloads_pb2_grpc
from aorta.bus.memory import MemoryBus
from aorta.disk_space import DiskNearlyFull, DiskUsage
from aorta.disk_watch import DiskWatch
from aorta.errors import ErrorCode
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta_services.gateway import app as gateway_app
from aorta_services.gateway import disk_admission
from aorta_services.gateway.rpc import Handler, WireRequests, WireStreamHandler


class Disk:
    """One stand-in disk whose free space the test sets."""

    def __init__(self, available: int) -> None:
        self.available = available

    def __call__(self, folder: Path) -> DiskUsage:
        return DiskUsage(str(folder), total=100, available=self.available)


async def answered(request: Any, context: Any) -> Message:
    return jobs_pb2.JobsCreateResponse()


async def uploaded(requests: AsyncIterator[Any], context: Any) -> Message:
    async for _ in requests:
        pass
    return payloads_pb2.PayloadsUploadResponse()


async def uploaded_wire(requests: WireRequests, context: Any) -> Message:
    while await requests.next() is not None:
        pass
    return payloads_pb2.PayloadsUploadResponse()


async def chunks(count: int, disk: Disk, fill_after: int) -> AsyncIterator[Message]:
    for number in range(count):
        if number == fill_after:
            disk.available = 1
        yield payloads_pb2.PayloadsUploadRequest()


class WireChunks:
    """`chunks` as the wire bytes a `WireStreamHandler` reads."""

    def __init__(self, count: int, disk: Disk, fill_after: int) -> None:
        self._count = count
        self._disk = disk
        self._fill_after = fill_after
        self._sent = 0

    async def next(self) -> bytes | None:
        if self._sent == self._count:
            return None
        if self._sent == self._fill_after:
            self._disk.available = 1
        self._sent += 1
        return payloads_pb2.PayloadsUploadRequest().SerializeToString()

    async def malformed(self) -> NoReturn:
        raise AssertionError("every message parses")


Called = Callable[..., Awaitable[Message]]


def handlers(service: str, disk: Disk) -> dict[str, Called]:
    watch = DiskWatch([Path("/data")], 0.9, disk)
    plain: dict[str, Handler] = {"Create": answered, "Start": answered, "Status": answered}
    if service == "Payloads":
        plain = {"Upload": WireStreamHandler(uploaded_wire), "Details": answered}
    if service == "Models":
        plain = {"UploadModel": uploaded}
    return {
        name: handler.serve if isinstance(handler, WireStreamHandler) else cast(Called, handler)
        for name, handler in disk_admission.guarded(service, plain, watch).items()
    }


async def test_jobs_create_and_start_are_refused_above_the_watermark() -> None:
    disk = Disk(available=50)
    jobs = handlers("Jobs", disk)
    await jobs["Create"](jobs_pb2.JobsCreateRequest(), None)
    disk.available = 5
    for method in ("Create", "Start"):
        with pytest.raises(DiskNearlyFull) as refused:
            await jobs[method](jobs_pb2.JobsCreateRequest(), None)
        assert refused.value.code == ErrorCode.JOB_STORE_ERROR
        assert "new jobs are refused" in refused.value.messages[0]
    # Reads go on.
    await jobs["Status"](jobs_pb2.JobsStatusRequest(), None)


async def test_an_upload_under_way_stops_when_the_disk_crosses_the_watermark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(disk_admission, "RECHECK_SECONDS", 0.0)
    disk = Disk(available=50)
    payloads = handlers("Payloads", disk)
    await payloads["Upload"](WireChunks(5, disk, fill_after=99), None)
    with pytest.raises(DiskNearlyFull) as refused:
        await payloads["Upload"](WireChunks(5, disk, fill_after=2), None)
    assert refused.value.code == ErrorCode.PAYLOAD_STORE_ERROR
    with pytest.raises(DiskNearlyFull):
        await payloads["Upload"](WireChunks(1, disk, fill_after=99), None)


async def test_a_model_upload_under_way_stops_when_the_disk_crosses_the_watermark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(disk_admission, "RECHECK_SECONDS", 0.0)
    disk = Disk(available=50)
    models = handlers("Models", disk)
    await models["UploadModel"](chunks(5, disk, fill_after=99), None)
    with pytest.raises(DiskNearlyFull) as refused:
        await models["UploadModel"](chunks(5, disk, fill_after=2), None)
    assert refused.value.code == ErrorCode.MODEL_STORE_ERROR


async def test_the_gateway_answers_clara_s_header_with_the_reason(tmp_path: Path) -> None:
    # A watermark a millionth of a disk: every real disk is over it.
    settings = Settings.from_env(
        {
            "AORTA_DATA_DIR": str(tmp_path),
            "AORTA_RPC_TIMEOUT": "2",
            "AORTA_DISK_WATERMARK": "0.0001",
        }
    )
    bus = MemoryBus(default_timeout=2.0)
    try:
        async with service_context(settings, bus) as context:
            running = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                    jobs = jobs_pb2_grpc.JobsStub(channel)
                    created = await jobs.Create(jobs_pb2.JobsCreateRequest(name="j"), timeout=10)
                    payloads = payloads_pb2_grpc.PayloadsStub(channel)
                    made = await payloads.Create(payloads_pb2.PayloadsCreateRequest(), timeout=10)
            finally:
                await running.stop(1.0)
    finally:
        await bus.close()
    assert created.header.code == ErrorCode.JOB_STORE_ERROR
    assert created.header.messages[0].startswith(f"disk nearly full: {tmp_path} is on a disk")
    assert made.header.code == ErrorCode.PAYLOAD_STORE_ERROR
