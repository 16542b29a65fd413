"""ListModels over more models than a store page, through the gateway: every model once, by
name, with its metadata, and the archive's bookkeeping never read for it."""

from __future__ import annotations

from typing import Any

from aorta.api import models_pb2, models_pb2_grpc
from aorta.store.paging import PAGE_SIZE
from aorta_services.models.repository import MODELS

STORED = PAGE_SIZE * 2 + 5


async def test_more_models_than_a_page_are_listed_by_name(
    platform: Any, stub: models_pb2_grpc.ModelsAsyncStub
) -> None:
    models = platform.store.collection(MODELS)
    names = [f"model-{n:04d}" for n in range(STORED)]
    for n, name in enumerate(reversed(names)):
        await models.insert(
            {
                "id": f"{n:032x}",
                "name": name,
                "type": models_pb2.MODEL_TYPE_TENSOR_FLOW,
                "revision": "1",
                "archive_key": f"models/{n:032x}/1/model.zip",
                "archive_size": 1,
                "archive_sha256": "0" * 64,
                "metadata": {"site": name},
                "backend": "",
            }
        )

    pages = [m async for m in stub.ListModels(models_pb2.ModelsListModelsRequest())]

    listed = [model for page in pages for model in page.models]
    assert [model.name for model in listed] == names
    assert all(dict(model.metadata) == {"site": model.name} for model in listed)
    assert all(page.header.code == 0 for page in pages)
