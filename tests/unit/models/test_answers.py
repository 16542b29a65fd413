"""Streamed answers packed to fit the bus: batches, splits, and the empty case."""

from __future__ import annotations

import pytest

from aorta.api import models_pb2
from aorta.errors import ErrorCode, Invalid
from aorta.metadata import MAX_TOTAL_BYTES
from aorta_services.models import answers


def model(name: str, metadata_bytes: int = 0) -> models_pb2.ModelDetails:
    metadata = {f"k{i}": "v" * 200 for i in range(metadata_bytes // 200)}
    return models_pb2.ModelDetails(name=name, metadata=metadata)


def test_list_models_packs_up_to_the_batch_size_and_never_sends_nothing() -> None:
    [empty] = answers.list_models([])
    assert models_pb2.ModelsListModelsResponse.FromString(empty).models == []
    big = [model(f"m{i}", 100_000) for i in range(5)]
    pages = [models_pb2.ModelsListModelsResponse.FromString(a) for a in answers.list_models(big)]
    assert [len(page.models) for page in pages] == [2, 2, 1]
    assert all(len(a) <= answers.BATCH_BYTES + 1024 for a in answers.list_models(big))


def test_a_catalog_larger_than_a_message_continues_under_the_same_id() -> None:
    lists = [("c1", [model(f"a{i}", 100_000) for i in range(3)]), ("c2", []), ("c3", [model("b")])]
    messages = [
        models_pb2.ModelsListCatalogsResponse.FromString(a)
        for a in answers.list_lists(models_pb2.ModelsListCatalogsResponse, "catalogs", lists)
    ]
    entries = [
        (entry.catalog_id.value, [m.name for m in entry.models])
        for message in messages
        for entry in message.catalogs
    ]
    assert len(messages) == 2
    assert entries == [("c1", ["a0", "a1"]), ("c1", ["a2"]), ("c2", []), ("c3", ["b"])]


def test_a_read_carries_the_id_in_every_message() -> None:
    details = [model(f"a{i}", 100_000) for i in range(3)]
    messages = [
        models_pb2.ModelsReadInstanceResponse.FromString(a)
        for a in answers.read_list(
            models_pb2.ModelsReadInstanceResponse, "instance_id", "i1", details
        )
    ]
    assert [m.instance_id.value for m in messages] == ["i1", "i1"]
    assert [len(m.models) for m in messages] == [2, 1]


def test_details_too_large_for_one_answer_are_refused() -> None:
    answers.check_details_fit(model("clara's most", MAX_TOTAL_BYTES))
    with pytest.raises(Invalid) as caught:
        answers.check_details_fit(model("big", answers.MAX_DETAILS_BYTES))
    assert caught.value.code == ErrorCode.METADATA_INVALID
