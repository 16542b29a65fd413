"""NVIDIA's own Clara client (`nvidia-clara-client` 0.8.1.7) against the gateway and the models
service on a real nats-server: every Models RPC through its generated stubs
(`nvidia_clara.grpc.models_pb2_grpc.ModelsStub` with `models_pb2` messages; its `ModelsClient`
helper is broken on the client side, see docs/clara-compatibility.md, "NVIDIA's client and its
protobuf").

The client runs in its own virtualenv and process (`run_clara_python`); the snippet prints one
JSON document of what it saw, which the test asserts on.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aorta.bus.nats import NatsBus
from aorta.cli.model_archive import zip_folder
from aorta.errors import ErrorCode
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.clara_client import run_clara_python
from aorta.testing.nats import async_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.models import app as models_app

EXAMPLE_MODEL = Path(__file__).resolve().parents[2] / "examples" / "models" / "segmentation"

SNIPPET = """
import hashlib, json, sys
import grpc
from nvidia_clara.grpc import common_pb2, models_pb2, models_pb2_grpc

target, good_path, evil_path, junk_path = sys.argv[1:5]
stub = models_pb2_grpc.ModelsStub(grpc.insecure_channel(target))
header = common_pb2.RequestHeader(
    api_version=common_pb2.Version(major=0, minor=8, patch=1), user_agent="Nvidia.Clara.Platform"
)
seen = {}

def ident(value):
    return common_pb2.Identifier(value=value)

def upload(path, name, metadata):
    data = open(path, "rb").read()
    def requests():
        details = models_pb2.ModelDetails(
            name=name, type=models_pb2.MODEL_TYPE_TENSOR_RT, metadata=metadata
        )
        yield models_pb2.ModelsUploadModelRequest(header=header, details=details)
        for start in range(0, len(data), 65536):
            yield models_pb2.ModelsUploadModelRequest(data=data[start:start + 65536])
    return stub.UploadModel(requests())

def listed():
    return [
        [m.model_id.value, m.name, m.type, dict(m.metadata)]
        for response in stub.ListModels(models_pb2.ModelsListModelsRequest(header=header))
        for m in response.models
    ]

answer = upload(good_path, "segmentation", {"organ": "abdomen"})
model_id = answer.details.model_id.value
seen["upload"] = [answer.header.code, model_id, answer.details.name, dict(answer.details.metadata)]
seen["list"] = listed()

download = models_pb2.ModelsDownloadModelRequest(header=header, model_id=ident(model_id))
parts = list(stub.DownloadModel(download))
seen["download"] = {
    "codes": sorted({part.header.code for part in parts}),
    "details": [parts[0].details.model_id.value, parts[0].details.name],
    "sha256": hashlib.sha256(b"".join(part.data for part in parts)).hexdigest(),
}

added = stub.AddMetadata(models_pb2.ModelsAddMetadataRequest(
    header=header, model_id=ident(model_id), metadata={"site": "north", "study": "ct-1"}
))
seen["added"] = [added.header.code, added.model_id.value, dict(added.metadata)]
duplicate = stub.AddMetadata(models_pb2.ModelsAddMetadataRequest(
    header=header, model_id=ident(model_id), metadata={"SITE": "south"}
))
seen["duplicate"] = [duplicate.header.code, list(duplicate.header.messages)]
removed = stub.RemoveMetadata(models_pb2.ModelsRemoveMetadataRequest(
    header=header, model_id=ident(model_id), keys=["study"]
))
seen["removed"] = [removed.header.code, dict(removed.metadata)]

for kind in ("Catalog", "Instance"):
    field = kind.lower() + "_id"
    def request(name, **fields):
        return getattr(models_pb2, "Models" + name + "Request")(header=header, **fields)

    created = getattr(stub, "Create" + kind)(request("Create" + kind))
    list_id = getattr(created, field).value
    updated = getattr(stub, "Update" + kind)(iter([
        request("Update" + kind, **{field: ident(list_id)}, model_ids=[ident(model_id)])
    ]))
    read = list(getattr(stub, "Read" + kind)(request("Read" + kind, **{field: ident(list_id)})))
    listing = list(getattr(stub, "List" + kind + "s")(request("List" + kind + "s")))
    entries = [e for r in listing for e in getattr(r, kind.lower() + "s")]
    unknown = getattr(stub, "Update" + kind)(iter([
        request("Update" + kind, **{field: ident(list_id)}, model_ids=[ident("f" * 32)])
    ]))
    deleted = getattr(stub, "Delete" + kind)(request("Delete" + kind, **{field: ident(list_id)}))
    gone = list(getattr(stub, "Read" + kind)(request("Read" + kind, **{field: ident(list_id)})))
    seen[kind] = {
        "id": list_id,
        "updated": [updated.header.code, getattr(updated, field).value],
        "read": [getattr(read[0], field).value, [m.name for r in read for m in r.models]],
        "listed": [[e.catalog_id.value, [m.name for m in e.models]] for e in entries],
        "unknown": [unknown.header.code, list(unknown.header.messages)],
        "deleted": [deleted.header.code, getattr(deleted, field).value],
        "gone": gone[0].header.code,
    }

for name, path in (("evil", evil_path), ("junk", junk_path)):
    refused = upload(path, "segmentation-2", {})
    seen[name] = [refused.header.code, list(refused.header.messages)]

deleted = stub.DeleteModel(
    models_pb2.ModelsDeleteModelRequest(header=header, model_id=ident(model_id))
)
seen["deleted"] = [deleted.header.code, deleted.model_id.value]
seen["after_delete"] = listed()
print(json.dumps(seen))
"""


def evil_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.pbtxt", 'name: "segmentation-2"\nbackend: "python"\n')
        archive.writestr("1/model.py", "pass\n")
        archive.writestr("1/../../../../tmp/owned.py", "import os\n")
    return buffer.getvalue()


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    """`host:port` of a gateway in front of the models service, on a real nats-server."""
    async with async_nats_server(tmp_path / "nats") as server:
        settings = Settings.from_env(
            {
                "AORTA_DATA_DIR": str(tmp_path),
                "AORTA_NATS_URL": server.url,
                "AORTA_RPC_TIMEOUT": "10",
            }
        )
        bus = await NatsBus.connect(server.url, name="aorta-e2e", default_timeout=10.0)
        async with service_context(settings, bus) as context:
            models = await models_app.start(context, environ=dict(os.environ))
            gateway = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                yield f"127.0.0.1:{gateway.port}"
            finally:
                await gateway.stop(1.0)
                await models.stop(1.0)
                await bus.close()


async def clara(target: str, folder: Path, good: bytes) -> dict[str, Any]:
    paths = {"good": good, "evil": evil_zip(), "junk": b"PK\x03\x04 but not really a zip"}
    for name, data in paths.items():
        (folder / f"{name}.zip").write_bytes(data)
    arguments = [target, *(str(folder / f"{name}.zip") for name in paths)]
    # The client blocks; it runs in a thread so this loop keeps serving it.
    result = await asyncio.to_thread(run_clara_python, SNIPPET, args=arguments, timeout=90)
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


async def test_nvidias_generated_models_stubs_end_to_end(target: str, tmp_path: Path) -> None:
    good = zip_folder(EXAMPLE_MODEL)
    seen = await clara(target, tmp_path, good)
    code, model_id, name, metadata = seen["upload"]
    assert code == 0 and len(model_id) == 32
    assert (name, metadata) == ("segmentation", {"organ": "abdomen"})
    assert seen["list"] == [[model_id, "segmentation", 2, {"organ": "abdomen"}]]
    assert seen["download"] == {
        "codes": [0],
        "details": [model_id, "segmentation"],
        "sha256": hashlib.sha256(good).hexdigest(),
    }

    assert seen["added"] == [
        0,
        model_id,
        {"organ": "abdomen", "site": "north", "study": "ct-1"},
    ]
    assert seen["duplicate"][0] == ErrorCode.METADATA_INVALID
    assert "'SITE' already exists" in seen["duplicate"][1][0]
    assert seen["removed"] == [0, {"organ": "abdomen", "site": "north"}]

    for kind, missing in (
        ("Catalog", ErrorCode.CATALOG_NOT_FOUND),
        ("Instance", ErrorCode.INSTANCE_NOT_FOUND),
    ):
        found = seen[kind]
        list_id = found["id"]
        assert len(list_id) == 32
        assert found["updated"] == [0, list_id]
        assert found["read"] == [list_id, ["segmentation"]]
        assert found["listed"] == [[list_id, ["segmentation"]]]
        assert found["unknown"][0] == ErrorCode.MODEL_NOT_FOUND
        assert "f" * 32 in found["unknown"][1][0]
        assert found["deleted"] == [0, list_id]
        assert found["gone"] == missing

    evil_code, evil_messages = seen["evil"]
    assert evil_code == ErrorCode.MODEL_ARCHIVE_INVALID
    assert "'1/../../../../tmp/owned.py' has an empty, '.' or '..' segment" in evil_messages[0]
    junk_code, junk_messages = seen["junk"]
    assert junk_code == ErrorCode.MODEL_ARCHIVE_INVALID
    assert "not a readable ZIP archive" in junk_messages[0]

    assert seen["deleted"] == [0, model_id]
    assert seen["after_delete"] == []
