"""Model events are at least once: an upload and a replacement made while the event stream is
away, or killed before their publish, keep their events staged in the model's document (the
replacement keeping the first's), and a replay publishes both, each id once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aorta.bus.memory import MemoryNetwork
from aorta.ids import ModelId, new_id
from aorta.outbox import OUTBOX_FIELD, Outbox
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta_services.models import events
from aorta_services.models.domain.model_record import ModelRecord
from aorta_services.models.repository import ModelRepository
from tests.unit.event_outage import Collected, Killed, Mode, OutageBus


def record(revision: str) -> ModelRecord:
    return ModelRecord(
        id=ModelId("m" * 32),
        name="seg",
        type=1,
        revision=revision,
        archive_key=f"models/{revision}",
        archive_size=1,
        archive_sha256="0" * 64,
    )


@pytest.mark.parametrize("mode", ["down", "kill"])
async def test_uploads_staged_while_the_bus_fails_are_published_by_the_replay(
    tmp_path: Path, mode: Mode
) -> None:
    store = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    bus = OutageBus(MemoryNetwork(), default_timeout=5.0)
    collected = Collected()
    await bus.subscribe_events("aorta.events.model.>", collected)
    repository = ModelRepository(store)
    outbox = Outbox(bus, store, service="models")
    await outbox.watch(repository.collection)
    bus.mode = mode

    new = record(new_id())
    first = await repository.insert(new, events.uploaded(new, replaced=False))
    second = dataclasses.replace(first, revision=new_id())
    await repository.replace(second, events.uploaded(second, replaced=True))
    document = await repository.get_document(first.id)
    assert document is not None
    if mode == "kill":
        with pytest.raises(Killed):
            await outbox.flush(repository.collection, document)
    else:
        assert not await outbox.flush(repository.collection, document)
    assert len(document[OUTBOX_FIELD]) == 2

    bus.mode = "up"
    await outbox.replay()

    assert await collected.types(["uploaded", "uploaded"]) == ["uploaded", "uploaded"]
    assert [e.data["replaced"] for e in collected.unique.values()] == [False, True]
    assert (await repository.get_document(first.id) or {})[OUTBOX_FIELD] == []
    await bus.close()
    await store.close()
