"""Pipelines.List over more pipelines than a page: each once, oldest first, with its
metadata, and no definition read for it; small items travel in batches, not one bus message
each."""

from __future__ import annotations

from typing import Any, cast

import pytest

from aorta import subjects
from aorta.api import pipelines_pb2
from aorta.bus import Batch, Request
from aorta.bus.batches import LIST_BATCH_BYTES
from aorta.bus.memory import MemoryBus
from aorta.runtime.service import ServiceContext
from aorta.store.paging import PAGE_SIZE
from aorta.store.port import MANAGED_FIELDS
from aorta_services.pipelines.handlers import PipelineHandlers
from aorta_services.pipelines.repository import COLLECTION, PipelineRepository
from tests.unit.pipelines.test_service import create_id, listing

STORED = PAGE_SIZE + 20

pytestmark = pytest.mark.usefixtures("service")


async def _stored(client: MemoryBus, context: ServiceContext, two_operators: str) -> list[str]:
    """`STORED` pipelines, copies of one created through the service; their ids, oldest
    first."""
    first = await create_id(client, [("p.yml", two_operators)], metadata={"a": "1"})
    pipelines = context.store.collection(COLLECTION)
    template = await pipelines.get(first)
    for n in range(1, STORED):
        copy = {k: v for k, v in template.items() if k not in MANAGED_FIELDS[1:]}
        copy.update(id=f"{n:032x}", name=f"copy-{n}")
        await pipelines.insert(copy)
    return [d["id"] for d in await pipelines.find(sort=[("created_at", 1)])]


async def test_more_pipelines_than_a_page_are_listed_oldest_first(
    client: MemoryBus, context: ServiceContext, two_operators: str
) -> None:
    stored = await _stored(client, context, two_operators)

    items = await listing(client)

    assert [item.details.pipeline_id.value for item in items] == stored
    assert all(dict(item.details.metadata) == {"a": "1"} for item in items)
    assert {item.details.name for item in items} >= {"two-operators", f"copy-{STORED - 1}"}


async def test_a_page_of_small_pipelines_is_a_few_bus_messages(
    client: MemoryBus, context: ServiceContext, two_operators: str
) -> None:
    stored = await _stored(client, context, two_operators)
    # List reads the repository only; the outbox is never asked.
    handlers = PipelineHandlers(PipelineRepository(context.store), cast(Any, None))
    request = Request(subjects.PIPELINES_LIST, b"")

    sent = [message async for message in handlers.list_pipelines(request)]

    items = [item for m in sent for item in (m.items if isinstance(m, Batch) else (m,))]
    listed = [pipelines_pb2.PipelinesListResponse.FromString(item) for item in items]
    assert [item.details.pipeline_id.value for item in listed] == stored
    assert all(m.size <= LIST_BATCH_BYTES for m in sent if isinstance(m, Batch))
    assert len(sent) < STORED // 10
