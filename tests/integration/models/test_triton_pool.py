"""The Triton pool with real tritonserver processes (the nvidia-pytriton wheel's), driven the way
the scheduler drives it: MODELS_ACQUIRE_TRITON / RELEASE_TRITON / PLATFORM_STOP over a real
nats-server, with models uploaded through the gateway.

One platform serves the whole module so that few servers start (each start ~1 s, each model
load ~1.5 s); the tests run in file order and release what they acquire.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import shutil
import sys
import time
import types
import zipfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psutil
import pytest
import pytest_asyncio
import tritonclient.grpc.aio as triton_grpc

from aorta import subjects
from aorta.api import models_pb2, models_pb2_grpc
from aorta.cli.model_archive import zip_folder
from aorta.errors import AortaError, ErrorCode
from aorta.testing.nats import async_nats_server
from tests.integration.models.models_platform import start_platform

pytestmark = pytest.mark.asyncio(loop_scope="module")

# How long the pool's records may take to catch up on a loaded 2-core machine: a bound for
# failing, not a guess of how long it takes.
EVENTUALLY = 30.0

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "models" / "segmentation"

JOB_A, JOB_B, JOB_C, JOB_D, JOB_E, JOB_F = (f"{i:032x}" for i in range(0xA, 0x10))
BROKEN_CONFIG = 'name: "broken"\nbackend: "python"\nmax_batch_size: 0\n'
BROKEN_MODEL = (
    "class TritonPythonModel:\n"
    "    def initialize(self, args):\n"
    "        raise ValueError('weights file missing: broken.pt')\n"
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    folder = tmp_path_factory.mktemp("triton-pool")
    async with async_nats_server(folder / "nats") as nats, AsyncExitStack() as stack:
        started = await start_platform(stack, nats.url, folder, {"AORTA_TRITON_POOL_SIZE": "4"})
        async with grpc.aio.insecure_channel(started.target) as channel:
            stub = models_pb2_grpc.ModelsStub(channel)
            for data in (zip_folder(EXAMPLE), _broken_zip()):
                response = await stub.UploadModel(_upload(data))
                assert response.header.code == 0, list(response.header.messages)
            yield started


def _broken_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.pbtxt", BROKEN_CONFIG)
        archive.writestr("1/model.py", BROKEN_MODEL)
    return buffer.getvalue()


async def _upload(data: bytes) -> AsyncIterator[models_pb2.ModelsUploadModelRequest]:
    yield models_pb2.ModelsUploadModelRequest(details=models_pb2.ModelDetails())
    yield models_pb2.ModelsUploadModelRequest(data=data)


async def acquire(platform: Any, job: str, *models: str) -> dict[str, str]:
    body = json.dumps({"job_id": job, "models": list(models)}).encode()
    answer = await platform.bus.request(subjects.MODELS_ACQUIRE_TRITON, body, timeout=60)
    document: dict[str, str] = json.loads(answer)
    return document


async def release(platform: Any, job: str) -> None:
    body = json.dumps({"job_id": job}).encode()
    assert json.loads(await platform.bus.request(subjects.MODELS_RELEASE_TRITON, body)) == {}


async def server_record(platform: Any, grpc_uri: str) -> dict[str, Any]:
    """The `triton_servers` document of the server at `grpc_uri`, once it is written."""
    deadline = time.monotonic() + EVENTUALLY
    while time.monotonic() < deadline:
        found = await platform.store.collection("triton_servers").find({"grpc_uri": grpc_uri})
        if found and found[0]["state"] == "held":
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no record of a held server at {grpc_uri}")


def loads_logged(platform: Any, server_id: str, model: str) -> int:
    """How many times Triton itself logged loading `model` on server `server_id`."""
    log = platform.models.backend.folder / "logs" / f"{server_id}.log"
    return log.read_text(errors="replace").count(f"successfully loaded '{model}'")


def phantom() -> np.ndarray:
    """Soft tissue holding a liver-bright and a kidney-bright cube."""
    volume = np.full((24, 16, 12), 0.3667, dtype=np.float32)
    volume[2:10, 3:11, 2:10] = 0.52
    volume[13:21, 4:12, 2:10] = 0.70
    return volume


def reference_labels(volume: np.ndarray) -> np.ndarray:
    """The example model's own `label` function, run here (Triton's module stubbed out)."""
    sys.modules["triton_python_backend_utils"] = types.ModuleType("triton_python_backend_utils")
    try:
        spec = importlib.util.spec_from_file_location("example_model", EXAMPLE / "1" / "model.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        del sys.modules["triton_python_backend_utils"]
    levels = np.array([0.3667, 0.5167, 0.6, 0.7], dtype=np.float32)
    labels: np.ndarray = module.label(volume, levels)
    return labels


async def infer(grpc_uri: str, volume: np.ndarray) -> np.ndarray:
    batch = volume[np.newaxis]
    tensor = triton_grpc.InferInput("INPUT__0", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    async with triton_grpc.InferenceServerClient(grpc_uri) as client:
        result = await client.infer(
            "segmentation", [tensor], outputs=[triton_grpc.InferRequestedOutput("OUTPUT__0")]
        )
        mask: np.ndarray = result.as_numpy("OUTPUT__0")[0]
    return mask


async def ready_models(grpc_uri: str) -> set[str]:
    async with triton_grpc.InferenceServerClient(grpc_uri) as client:
        index = await client.get_model_repository_index()
    return {entry.name for entry in index.models if entry.state == "READY"}


def pool_processes(platform: Any) -> list[psutil.Process]:
    """tritonserver processes (and their Python backend stubs) of this platform's pool."""
    folder = str(platform.models.backend.folder)
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(folder in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


async def test_jobs_get_servers_with_their_models_and_reuse_warm_ones(platform: Any) -> None:
    volume = phantom()
    labels = reference_labels(volume)
    assert labels[5, 6, 5] == 1 and labels[16, 8, 5] == 3 and labels[0, 0, 0] == 0

    first = await acquire(platform, JOB_A, "segmentation")
    assert set(first) == {"grpc_uri", "http_uri"}
    assert first["grpc_uri"].startswith("127.0.0.1:") and "://" not in first["grpc_uri"]
    assert np.array_equal(await infer(first["grpc_uri"], volume), labels)

    # A second job running at the same time never shares the first job's server.
    second = await acquire(platform, JOB_B, "segmentation")
    assert second["grpc_uri"] != first["grpc_uri"]
    assert second["http_uri"] != first["http_uri"]

    # The model is in use: it cannot be deleted.
    [model] = [m for m in await _models(platform) if m.name == "segmentation"]
    async with grpc.aio.insecure_channel(platform.target) as channel:
        refused = await models_pb2_grpc.ModelsStub(channel).DeleteModel(
            models_pb2.ModelsDeleteModelRequest(model_id=model.model_id)
        )
    assert refused.header.code == ErrorCode.MODEL_IN_USE
    assert JOB_A in refused.header.messages[0]

    # Job A stops; job C asks for the same model and gets A's warm server, not reloaded.
    record = await server_record(platform, first["grpc_uri"])
    assert loads_logged(platform, record["id"], "segmentation") == 1
    await release(platform, JOB_A)
    third = await acquire(platform, JOB_C, "segmentation")
    assert third == first
    assert "segmentation" in await ready_models(third["grpc_uri"])
    assert loads_logged(platform, record["id"], "segmentation") == 1
    assert platform.models.pool.load_count(record["id"]) == 1
    assert np.array_equal(await infer(third["grpc_uri"], volume), labels)
    for job in (JOB_B, JOB_C):
        await release(platform, job)
    # The collection mirrors the pool through an ordered queue: it catches up soon after.
    deadline = time.monotonic() + EVENTUALLY
    while time.monotonic() < deadline:
        if {r["state"] for r in await _records(platform)} == {"idle"}:
            break
        await asyncio.sleep(0.02)
    assert [r["state"] for r in await _records(platform)] == ["idle", "idle"]


async def test_a_model_that_fails_to_load_reports_tritons_own_error(platform: Any) -> None:
    with pytest.raises(AortaError) as caught:
        await acquire(platform, JOB_D, "broken")
    assert caught.value.code == ErrorCode.MODEL_ARCHIVE_INVALID
    text = "\n".join(caught.value.messages)
    assert "model 'broken' failed to load on Triton" in text
    assert "ValueError: weights file missing: broken.pt" in text
    with pytest.raises(AortaError) as unknown:
        await acquire(platform, JOB_D, "segmentation", "no-such-model")
    assert unknown.value.code == ErrorCode.MODEL_NOT_FOUND
    assert "'no-such-model'" in unknown.value.messages[0]
    await release(platform, JOB_D)
    assert platform.models.pool.jobs_using("segmentation") == []


async def test_a_replaced_model_is_reloaded_on_a_warm_server(platform: Any, tmp_path: Path) -> None:
    folder = tmp_path / "segmentation"
    shutil.copytree(EXAMPLE, folder)
    config = folder / "config.pbtxt"
    config.write_text(config.read_text().replace("0.3667,0.5167,0.6,0.7", "0.05,0.25,0.5,0.9"))
    data = zip_folder(folder)
    async with grpc.aio.insecure_channel(platform.target) as channel:
        response = await models_pb2_grpc.ModelsStub(channel).UploadModel(_upload(data))
    assert response.header.code == 0, list(response.header.messages)
    idle = {view.id for view in platform.models.pool.views()}
    got = await acquire(platform, JOB_F, "segmentation")
    record = await server_record(platform, got["grpc_uri"])
    assert record["id"] in idle
    # Under the new levels an even 0.25 is one region as bright as label 1; before, nothing.
    volume = np.full((4, 4, 4), 0.25, dtype=np.float32)
    assert np.array_equal(await infer(got["grpc_uri"], volume), np.ones((4, 4, 4), np.uint8))
    await release(platform, JOB_F)


async def test_platform_stop_stops_every_server(platform: Any) -> None:
    await acquire(platform, JOB_E, "segmentation")
    servers = len(platform.models.pool.views())
    assert servers >= 1
    assert any("tritonserver" in " ".join(p.info["cmdline"]) for p in pool_processes(platform))
    answer = await platform.bus.request(
        subjects.MODELS_PLATFORM_STOP, json.dumps({"reason": "Clara.Stop"}).encode(), timeout=30
    )
    assert json.loads(answer) == {"stopped": {"servers": servers}}
    assert pool_processes(platform) == []
    assert platform.models.pool.views() == []
    deadline = time.monotonic() + EVENTUALLY
    while time.monotonic() < deadline:
        if not await _records(platform):
            break
        await asyncio.sleep(0.02)
    assert await _records(platform) == []


async def _models(platform: Any) -> list[models_pb2.ModelDetails]:
    async with grpc.aio.insecure_channel(platform.target) as channel:
        stub = models_pb2_grpc.ModelsStub(channel)
        pages = [p async for p in stub.ListModels(models_pb2.ModelsListModelsRequest())]
    return [model for page in pages for model in page.models]


async def _records(platform: Any) -> list[dict[str, Any]]:
    return await platform.store.collection("triton_servers").find()
