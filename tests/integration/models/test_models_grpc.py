"""Every Models RPC through the gateway, over gRPC with our own stubs, answered by the models
service across a real nats-server."""

from __future__ import annotations

import asyncio
import io
import os
import time
import zipfile
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from aorta.api import common_pb2, models_pb2
from aorta.bus import CloudEvent
from aorta.errors import ErrorCode
from aorta_services.gateway import models as gateway_models

if TYPE_CHECKING:
    from aorta.api.models_pb2_grpc import ModelsAsyncStub

CHUNK = 64 * 1024
UNUSED_ID = "0123456789abcdef0123456789abcdef"
CONFIG = 'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n'


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


def model_zip(name: str, *, top: bool = True, extra: dict[str, bytes] | None = None) -> bytes:
    prefix = f"{name}/" if top else ""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{prefix}config.pbtxt", CONFIG.format(name=name))
        archive.writestr(f"{prefix}1/model.py", "class TritonPythonModel:\n    pass\n")
        for member, content in (extra or {}).items():
            archive.writestr(member, content)
    return buffer.getvalue()


async def sent(messages: Iterable[Any]) -> AsyncIterator[Any]:
    for message in messages:
        yield message


async def upload(
    stub: ModelsAsyncStub,
    data: bytes,
    name: str = "",
    *,
    model_type: int = models_pb2.MODEL_TYPE_UNKNOWN,
    metadata: dict[str, str] | None = None,
) -> models_pb2.ModelsUploadModelResponse:
    details = models_pb2.ModelDetails(name=name, type=model_type, metadata=metadata or {})
    first = models_pb2.ModelsUploadModelRequest(details=details)
    rest = [
        models_pb2.ModelsUploadModelRequest(data=data[i : i + CHUNK])
        for i in range(0, len(data), CHUNK)
    ]
    return await stub.UploadModel(sent([first, *rest]))


async def uploaded_id(stub: ModelsAsyncStub, data: bytes, name: str = "") -> str:
    response = await upload(stub, data, name)
    assert response.header.code == 0, list(response.header.messages)
    return response.details.model_id.value


async def listed(stub: ModelsAsyncStub) -> list[models_pb2.ModelsListModelsResponse]:
    return [m async for m in stub.ListModels(models_pb2.ModelsListModelsRequest())]


async def download(
    stub: ModelsAsyncStub, model_id: str
) -> list[models_pb2.ModelsDownloadModelResponse]:
    request = models_pb2.ModelsDownloadModelRequest(model_id=ident(model_id))
    return [m async for m in stub.DownloadModel(request)]


def failed(header: common_pb2.ResponseHeader, code: int) -> str:
    assert header.code == code, list(header.messages)
    return "\n".join(header.messages)


async def blob_keys(platform: Any, prefix: str) -> list[str]:
    return [info.key async for info in platform.blobs.list(prefix)]


async def test_upload_list_and_download_byte_identical(
    stub: ModelsAsyncStub, platform: Any
) -> None:
    # Incompressible weights make the archive span several download chunks.
    data = model_zip("liver", extra={"liver/1/weights.bin": os.urandom(1536 * 1024)})
    response = await upload(
        stub,
        data,
        "liver",
        model_type=models_pb2.MODEL_TYPE_PY_TORCH,
        metadata={"organ": "liver"},
    )
    assert response.header.code == 0, list(response.header.messages)
    model_id = response.details.model_id.value
    assert len(model_id) == 32
    assert response.details.name == "liver"
    assert response.details.type == models_pb2.MODEL_TYPE_PY_TORCH
    assert dict(response.details.metadata) == {"organ": "liver"}

    [page] = await listed(stub)
    assert page.header.code == 0
    assert [(m.model_id.value, m.name, dict(m.metadata)) for m in page.models] == [
        (model_id, "liver", {"organ": "liver"})
    ]

    messages = await download(stub, model_id)
    assert all(message.header.code == 0 for message in messages)
    assert messages[0].details.model_id.value == model_id and not messages[0].data
    assert len(messages) >= 3
    assert b"".join(message.data for message in messages[1:]) == data
    # The upload's staging copy is gone; the archive is kept under the model's id.
    assert await blob_keys(platform, "staging/") == []
    [key] = await blob_keys(platform, f"models/{model_id}/")
    assert key.endswith("/model.zip")


async def test_the_archive_may_hold_the_folder_contents_and_name_the_model(
    stub: ModelsAsyncStub,
) -> None:
    response = await upload(stub, model_zip("spleen", top=False))
    assert response.header.code == 0, list(response.header.messages)
    assert response.details.name == "spleen"


async def test_uploading_the_same_name_replaces_the_model(
    stub: ModelsAsyncStub, platform: Any
) -> None:
    events: list[CloudEvent] = []
    both = asyncio.Event()

    async def collect(event: CloudEvent) -> None:
        events.append(event)
        if len(events) == 2:
            both.set()

    subscription = await platform.bus.subscribe_events("aorta.events.model.>", collect)
    first = await uploaded_id(stub, model_zip("seg"), "seg")
    newer = model_zip("seg", extra={"seg/2/model.py": b"# version 2\n"})
    second = await upload(stub, newer, "seg", metadata={"v": "2"})
    assert second.details.model_id.value == first
    assert dict(second.details.metadata) == {"v": "2"}
    [page] = await listed(stub)
    assert [m.name for m in page.models] == ["seg"]
    messages = await download(stub, first)
    assert b"".join(m.data for m in messages[1:]) == newer
    assert len(await blob_keys(platform, f"models/{first}/")) == 1
    # Generous: a loaded machine delays deliveries for seconds.
    await asyncio.wait_for(both.wait(), 30.0)
    await subscription.drain()
    assert [(e.type, e.subject, e.data["replaced"]) for e in events] == [
        ("org.aorta.model.uploaded", first, False),
        ("org.aorta.model.uploaded", first, True),
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            model_zip("seg", extra={"seg/1/../../../etc/cron.d/evil": b"x"}),
            "'seg/1/../../../etc/cron.d/evil' has an empty, '.' or '..' segment",
        ),
        (b"this is not a zip archive at all", "not a readable ZIP archive"),
        (model_zip("other"), "config.pbtxt names the model 'other', not 'seg'"),
    ],
)
async def test_a_bad_archive_is_refused_whole_and_nothing_is_stored(
    stub: ModelsAsyncStub, platform: Any, data: bytes, problem: str
) -> None:
    response = await upload(stub, data, "seg")
    assert problem in failed(response.header, ErrorCode.MODEL_ARCHIVE_INVALID)
    [page] = await listed(stub)
    assert list(page.models) == []
    assert await blob_keys(platform, "") == []


async def test_an_empty_repository_lists_one_message_without_models(stub: ModelsAsyncStub) -> None:
    [page] = await listed(stub)
    assert page.header.code == 0 and list(page.models) == []


async def test_a_large_repository_is_listed_in_several_messages(stub: ModelsAsyncStub) -> None:
    metadata = {f"key-{i:03}": "v" * 250 for i in range(400)}
    for name in ("a", "b", "c"):
        response = await upload(stub, model_zip(name), name, metadata=metadata)
        assert response.header.code == 0, list(response.header.messages)
    pages = await listed(stub)
    assert len(pages) >= 2
    assert [m.name for page in pages for m in page.models] == ["a", "b", "c"]


async def test_delete_removes_the_model_and_its_archive(
    stub: ModelsAsyncStub, platform: Any
) -> None:
    model_id = await uploaded_id(stub, model_zip("seg"), "seg")
    request = models_pb2.ModelsDeleteModelRequest(model_id=ident(model_id))
    response = await stub.DeleteModel(request)
    assert response.header.code == 0 and response.model_id.value == model_id
    assert await blob_keys(platform, "models/") == []
    again = await stub.DeleteModel(request)
    assert f"no model has id {model_id}" in failed(again.header, ErrorCode.MODEL_NOT_FOUND)
    [gone] = await download(stub, model_id)
    failed(gone.header, ErrorCode.MODEL_NOT_FOUND)
    bad = await stub.DeleteModel(models_pb2.ModelsDeleteModelRequest(model_id=ident("nope")))
    assert "model id 'nope' is not valid" in failed(bad.header, ErrorCode.MODEL_ID_INVALID)


async def test_metadata_is_added_and_removed_with_claras_rules(stub: ModelsAsyncStub) -> None:
    model_id = await uploaded_id(stub, model_zip("seg"), "seg")
    added = await stub.AddMetadata(
        models_pb2.ModelsAddMetadataRequest(
            model_id=ident(model_id), metadata={"organ": "liver", "Site": "north"}
        )
    )
    assert added.header.code == 0
    assert dict(added.metadata) == {"organ": "liver", "Site": "north"}
    duplicate = await stub.AddMetadata(
        models_pb2.ModelsAddMetadataRequest(model_id=ident(model_id), metadata={"SITE": "x"})
    )
    assert "'SITE' already exists" in failed(duplicate.header, ErrorCode.METADATA_INVALID)
    removed = await stub.RemoveMetadata(
        models_pb2.ModelsRemoveMetadataRequest(model_id=ident(model_id), keys=["ORGAN", "absent"])
    )
    assert removed.header.code == 0 and dict(removed.metadata) == {"Site": "north"}
    [page] = await listed(stub)
    assert dict(page.models[0].metadata) == {"Site": "north"}
    unknown = await stub.AddMetadata(
        models_pb2.ModelsAddMetadataRequest(model_id=ident(UNUSED_ID), metadata={"a": "b"})
    )
    failed(unknown.header, ErrorCode.MODEL_NOT_FOUND)


class Lists:
    """The RPCs and messages of catalogs or of instances, named alike."""

    def __init__(self, stub: ModelsAsyncStub, kind: str) -> None:
        self.kind = kind
        self.title = kind.capitalize()
        self.stub = stub
        self.id_field = f"{kind}_id"

    def message(self, name: str, **fields: Any) -> Any:
        return getattr(models_pb2, f"Models{name}Request")(**fields)

    async def create(self) -> str:
        response = await getattr(self.stub, f"Create{self.title}")(
            self.message(f"Create{self.title}")
        )
        assert response.header.code == 0
        value: str = getattr(response, self.id_field).value
        return value

    async def update(self, list_id: str, *batches: list[str]) -> Any:
        messages = []
        for index, batch in enumerate(batches):
            fields: dict[str, Any] = {"model_ids": [ident(m) for m in batch]}
            if index == 0:
                fields[self.id_field] = ident(list_id)
            messages.append(self.message(f"Update{self.title}", **fields))
        return await getattr(self.stub, f"Update{self.title}")(sent(messages))

    async def read(self, list_id: str) -> list[Any]:
        request = self.message(f"Read{self.title}", **{self.id_field: ident(list_id)})
        return [m async for m in getattr(self.stub, f"Read{self.title}")(request)]

    async def list_all(self) -> list[Any]:
        request = self.message(f"List{self.title}s")
        return [m async for m in getattr(self.stub, f"List{self.title}s")(request)]

    async def delete(self, list_id: str) -> Any:
        request = self.message(f"Delete{self.title}", **{self.id_field: ident(list_id)})
        return await getattr(self.stub, f"Delete{self.title}")(request)


@pytest.mark.parametrize(
    ("kind", "code"),
    [("catalog", ErrorCode.CATALOG_NOT_FOUND), ("instance", ErrorCode.INSTANCE_NOT_FOUND)],
)
async def test_catalogs_and_instances(stub: ModelsAsyncStub, kind: str, code: int) -> None:
    lists = Lists(stub, kind)
    seg = await uploaded_id(stub, model_zip("seg"), "seg")
    lung = await uploaded_id(stub, model_zip("lung"), "lung")
    list_id = await lists.create()
    [empty] = await lists.read(list_id)
    assert getattr(empty, lists.id_field).value == list_id and list(empty.models) == []

    updated = await lists.update(list_id, [lung], [seg, lung])
    assert updated.header.code == 0 and getattr(updated, lists.id_field).value == list_id
    [read] = await lists.read(list_id)
    assert [m.name for m in read.models] == ["lung", "seg"]
    [page] = await lists.list_all()
    entries = getattr(page, f"{kind}s")
    assert [(e.catalog_id.value, [m.name for m in e.models]) for e in entries] == [
        (list_id, ["lung", "seg"])
    ]

    replaced = await lists.update(list_id, [seg])
    assert replaced.header.code == 0
    [read] = await lists.read(list_id)
    assert [m.name for m in read.models] == ["seg"]

    unknown = await lists.update(list_id, [seg, UNUSED_ID])
    assert UNUSED_ID in failed(unknown.header, ErrorCode.MODEL_NOT_FOUND)
    malformed = await lists.update(list_id, ["not-an-id"])
    failed(malformed.header, ErrorCode.MODEL_ID_INVALID)
    [read] = await lists.read(list_id)
    assert [m.name for m in read.models] == ["seg"]

    await stub.DeleteModel(models_pb2.ModelsDeleteModelRequest(model_id=ident(seg)))
    [read] = await lists.read(list_id)
    assert list(read.models) == []

    deleted = await lists.delete(list_id)
    assert deleted.header.code == 0
    [gone] = await lists.read(list_id)
    assert f"no {kind} has id {list_id}" in failed(gone.header, code)
    again = await lists.delete(list_id)
    failed(again.header, code)
    nowhere = await lists.update(UNUSED_ID, [lung])
    failed(nowhere.header, code)


async def test_an_archive_over_the_gateways_limit_is_refused_as_it_streams(
    stub: ModelsAsyncStub, platform: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway_models, "MAX_ARCHIVE_BYTES", 100_000)
    response = await upload(stub, model_zip("seg", extra={"seg/1/w.bin": os.urandom(200_000)}))
    assert "larger than 100000 bytes" in failed(response.header, ErrorCode.MODEL_REQUEST_INVALID)
    assert await blob_keys(platform, "") == []


async def test_uploads_left_behind_by_a_dead_gateway_are_swept(platform: Any) -> None:
    async def chunk() -> AsyncIterator[bytes]:
        yield b"partial"

    for name in ("stale", "fresh"):
        await platform.blobs.put(f"staging/models/{name}.zip", chunk())
    stale = platform.data_dir / "blobs" / "staging" / "models" / "stale.zip"
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    assert await platform.models.archives.sweep_staging() == 1
    assert await blob_keys(platform, "staging/") == ["staging/models/fresh.zip"]
