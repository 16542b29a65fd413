"""A serving process's garbage collector: what the start-up made leaves its passes, its garbage
does not stay, and young passes are fewer."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from aorta.runtime.process import GEN0_THRESHOLD, settle_collector


class _Node:
    other: object = None


@pytest.fixture
def restored() -> Iterator[None]:
    """The collector as it was: the settling is for a whole process, not a test run."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored")
def test_settling_freezes_what_lives_collects_what_does_not_and_spaces_young_passes() -> None:
    garbage = _Node()
    garbage.other = garbage  # a cycle: only the collector frees it
    gone = weakref.ref(garbage)
    del garbage
    kept = _Node()
    settle_collector()
    assert gone() is None
    assert gc.get_freeze_count() > 0
    assert all(found is not kept for found in gc.get_objects())  # in no generation it walks
    assert gc.get_threshold()[0] == GEN0_THRESHOLD
    fresh = _Node()
    assert any(found is fresh for found in gc.get_objects(generation=0))
