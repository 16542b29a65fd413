"""Pipelines.List over more pipelines than a page: each once, oldest first, with its
metadata, and no definition read for it."""

from __future__ import annotations

import pytest

from aorta.bus.memory import MemoryBus
from aorta.runtime.service import ServiceContext
from aorta.store.paging import PAGE_SIZE
from aorta.store.port import MANAGED_FIELDS
from aorta_services.pipelines.repository import COLLECTION
from tests.unit.pipelines.test_service import create_id, listing

STORED = PAGE_SIZE + 20

pytestmark = pytest.mark.usefixtures("service")


async def test_more_pipelines_than_a_page_are_listed_oldest_first(
    client: MemoryBus, context: ServiceContext, two_operators: str
) -> None:
    first = await create_id(client, [("p.yml", two_operators)], metadata={"a": "1"})
    pipelines = context.store.collection(COLLECTION)
    template = await pipelines.get(first)
    for n in range(1, STORED):
        copy = {k: v for k, v in template.items() if k not in MANAGED_FIELDS[1:]}
        copy.update(id=f"{n:032x}", name=f"copy-{n}")
        await pipelines.insert(copy)
    stored = await pipelines.find(sort=[("created_at", 1)])

    items = await listing(client)

    assert [item.details.pipeline_id.value for item in items] == [d["id"] for d in stored]
    assert all(dict(item.details.metadata) == {"a": "1"} for item in items)
    assert {item.details.name for item in items} >= {"two-operators", f"copy-{STORED - 1}"}
