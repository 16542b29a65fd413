"""The definitions the repository keeps by job id, within a byte budget."""

from __future__ import annotations

from aorta_services.scheduler.domain.definition import Definition
from aorta_services.scheduler.domain.definition_cache import DefinitionCache


def definition(size: int) -> Definition:
    return Definition(root="p.yaml", files=(("p.yaml", "x" * (size - len("p.yaml"))),))


def test_the_least_recently_used_go_first_beyond_the_budget() -> None:
    cache = DefinitionCache(max_bytes=300)
    one, two, three = definition(100), definition(100), definition(100)
    cache.put("a", one)
    cache.put("b", two)
    cache.put("c", three)
    assert cache.get("a") is one  # now the most recently used
    cache.put("d", definition(100))
    assert cache.get("b") is None
    assert cache.get("a") is one
    assert cache.get("c") is three


def test_a_definition_larger_than_the_budget_is_not_kept() -> None:
    cache = DefinitionCache(max_bytes=300)
    cache.put("a", definition(100))
    cache.put("big", definition(301))
    assert cache.get("big") is None
    assert cache.get("a") is not None


def test_forgetting_gives_the_room_back() -> None:
    cache = DefinitionCache(max_bytes=200)
    cache.put("a", definition(100))
    cache.put("a", definition(100))  # kept again: counted once
    cache.forget("a")
    cache.forget("never kept")
    cache.put("b", definition(100))
    cache.put("c", definition(100))
    assert cache.get("a") is None
    assert cache.get("b") is not None and cache.get("c") is not None
