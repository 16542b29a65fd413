"""Contract: indexes, unique constraints and the conflicts they raise, on every adapter."""

from __future__ import annotations

import pytest

from aorta.errors import Conflict, Invalid
from aorta.store import StateStore


async def test_unique_index_rejects_a_second_value_on_insert_and_update(
    store: StateStore,
) -> None:
    leases = store.collection("leases")
    await leases.ensure_index(["name"], unique=True)
    await leases.ensure_index(["name"], unique=True)
    await leases.insert({"id": "l1", "name": "scheduler"})
    await leases.insert({"id": "l2", "name": "payloads"})
    with pytest.raises(Conflict, match=r"leases.*'name'") as caught:
        await leases.insert({"id": "l3", "name": "scheduler"})
    assert "'id'" not in str(caught.value)
    assert await leases.count() == 2
    with pytest.raises(Conflict, match=r"leases.*'name'"):
        await leases.update("l2", {"name": "scheduler"})
    assert (await leases.get("l2"))["name"] == "payloads"
    assert (await leases.get("l2"))["version"] == 1
    await leases.update("l1", {"name": "renamed"})
    await leases.update("l2", {"name": "scheduler"})


async def test_unique_index_leaves_missing_fields_alone_but_counts_null(
    store: StateStore,
) -> None:
    jobs = store.collection("jobs")
    await jobs.ensure_index(["name"], unique=True)
    await jobs.insert({"id": "j1"})
    await jobs.insert({"id": "j2"})
    await jobs.insert({"id": "j3", "name": None})
    with pytest.raises(Conflict, match="'name'"):
        await jobs.insert({"id": "j4", "name": None})
    await jobs.update("j1", {"name": 1})
    with pytest.raises(Conflict, match="'name'"):
        await jobs.insert({"id": "j5", "name": 1.0})
    await jobs.insert({"id": "j6", "name": "1"})
    await jobs.update("j1", {}, unset=["name"])
    await jobs.insert({"id": "j7", "name": 1})


async def test_compound_and_nested_unique_indexes(store: StateStore) -> None:
    models = store.collection("models")
    await models.ensure_index(["spec.name", "spec.version"], unique=True)
    await models.insert({"id": "m1", "spec": {"name": "seg", "version": 1}})
    await models.insert({"id": "m2", "spec": {"name": "seg", "version": 2}})
    await models.insert({"id": "m3", "spec": {"name": "cls", "version": 1}})
    await models.insert({"id": "m4", "spec": {"name": "seg"}})
    with pytest.raises(Conflict, match=r"models.*'spec.name', 'spec.version'"):
        await models.insert({"id": "m5", "spec": {"name": "seg", "version": 1}})
    with pytest.raises(Conflict, match=r"models.*'spec.name', 'spec.version'"):
        await models.update("m3", {"spec.name": "seg"})
    with pytest.raises(Conflict, match=r"models.*'m1'"):
        await models.insert({"id": "m1", "spec": {"name": "new", "version": 9}})


async def test_a_unique_index_cannot_be_added_over_clashing_documents(
    store: StateStore,
) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j1", "name": "same"})
    await jobs.insert({"id": "j2", "name": "same"})
    with pytest.raises(Conflict, match=r"jobs.*unique index.*'name'"):
        await jobs.ensure_index(["name"], unique=True)
    await jobs.insert({"id": "j3", "name": "same"})


async def test_index_kinds_do_not_mix_and_fields_are_checked(store: StateStore) -> None:
    jobs = store.collection("jobs")
    await jobs.ensure_index(["state", "priority"])
    await jobs.ensure_index(["state", "priority"])
    with pytest.raises(Conflict, match=r"jobs.*non-unique"):
        await jobs.ensure_index(["state", "priority"], unique=True)
    await jobs.ensure_index(["name"], unique=True)
    with pytest.raises(Conflict, match=r"jobs.*unique"):
        await jobs.ensure_index(["name"])
    await jobs.insert({"id": "j1", "state": "RUNNING", "priority": 1})
    await jobs.insert({"id": "j2", "state": "RUNNING", "priority": 1})
    for fields in ([], ["a", "a"], ["bad-field"], "state", ["_id"]):
        with pytest.raises(Invalid, match="jobs"):
            await jobs.ensure_index(fields)
