"""The resource ledger: exclusive GPUs by index, summed memory, over-committed CPU, restore."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aorta.errors import Conflict, ErrorCode, Invalid
from aorta_services.scheduler.domain import (
    Allocation,
    Capacity,
    FreeResources,
    Request,
    ResourceLedger,
    job_peak_request,
)


def ledger(
    gpus: tuple[int, ...] = (), cpu: int = 2, memory_mb: int = 8192, overcommit: float = 4.0
) -> ResourceLedger:
    return ResourceLedger(
        Capacity(gpus=gpus, cpu=cpu, memory_mb=memory_mb, cpu_overcommit=overcommit)
    )


def gpu(count: int) -> Request:
    return Request(cpu=0, gpu=count, memory_mb=0)


def test_gpus_are_exclusive_and_assigned_lowest_index_first() -> None:
    node = ledger(gpus=(3, 1, 0))
    assert node.allocate("a", gpu(1)).gpus == (0,)
    assert node.allocate("b", gpu(2)).gpus == (1, 3)
    assert not node.fits(gpu(1))
    with pytest.raises(Conflict):
        node.allocate("c", gpu(1))
    node.release("a")
    assert node.allocate("c", gpu(1)).gpus == (0,)
    assert node.free().gpus == ()


def test_memory_is_summed_against_the_node() -> None:
    node = ledger(memory_mb=4096)
    node.allocate("a", Request(cpu=0, gpu=0, memory_mb=2048))
    node.allocate("b", Request(cpu=0, gpu=0, memory_mb=2048))
    assert node.fits(Request(cpu=0, gpu=0, memory_mb=0))
    assert not node.fits(Request(cpu=0, gpu=0, memory_mb=1))
    node.release("b")
    assert node.free().memory_mb == 2048


def test_three_default_operators_run_on_a_two_core_laptop() -> None:
    node = ledger(cpu=2)
    for owner in ("one", "two", "three"):
        request = Request(cpu=2, gpu=0, memory_mb=1024)
        assert node.fits(request)
        node.allocate(owner, request)
    assert node.free().cpu == 2.0
    node.allocate("four", Request(cpu=2, gpu=0, memory_mb=1024))
    assert not node.fits(Request(cpu=1, gpu=0, memory_mb=0))


def test_without_overcommit_cpu_is_counted_by_core() -> None:
    node = ledger(cpu=2, overcommit=1.0)
    node.allocate("one", Request(cpu=2, gpu=0, memory_mb=0))
    assert not node.fits(Request(cpu=1, gpu=0, memory_mb=0))
    assert node.fits(Request(cpu=0, gpu=0, memory_mb=0))


def test_a_request_above_the_cpu_limit_runs_alone() -> None:
    node = ledger(cpu=2)
    huge = Request(cpu=16, gpu=0, memory_mb=0)
    assert node.never_fits(huge, "train") is None
    node.allocate("small", Request(cpu=1, gpu=0, memory_mb=0))
    assert not node.fits(huge)
    node.release("small")
    node.allocate("huge", huge)
    assert node.free().cpu == 0.0
    assert not node.fits(Request(cpu=1, gpu=0, memory_mb=0))
    assert node.fits(Request(cpu=0, gpu=0, memory_mb=0))


def test_never_fits_explains_a_gpu_request_on_a_node_without_gpus() -> None:
    assert ledger().never_fits(gpu(1), "infer") == (
        "operator 'infer' requests 1 GPU but this node has 0; "
        "set AORTA_SCHEDULER_GPUS to declare GPUs"
    )


def test_never_fits_explains_too_many_gpus() -> None:
    assert ledger(gpus=(1, 0)).never_fits(gpu(3), "infer") == (
        "operator 'infer' requests 3 GPUs but this node has 2 (devices 0, 1); "
        "lower the operator's requests.gpu or set AORTA_SCHEDULER_GPUS to declare more GPUs"
    )


def test_never_fits_explains_memory_beyond_the_node() -> None:
    assert ledger(memory_mb=4096).never_fits(Request(cpu=1, gpu=0, memory_mb=8192), "seg") == (
        "operator 'seg' requests 8192 MB of memory but this node has 4096 MB; "
        "lower the operator's requests.memory or set AORTA_SCHEDULER_MEMORY_MB"
    )


def test_never_fits_gives_every_reason() -> None:
    reason = ledger(memory_mb=1).never_fits(Request(cpu=1, gpu=1, memory_mb=2), "x")
    assert reason is not None
    assert "1 GPU" in reason
    assert "2 MB of memory" in reason


def test_never_fits_is_none_for_what_fits_an_idle_node_even_if_busy_now() -> None:
    node = ledger(gpus=(0,), memory_mb=1024)
    node.allocate("a", Request(cpu=1, gpu=1, memory_mb=1024))
    assert node.never_fits(Request(cpu=1, gpu=1, memory_mb=1024), "b") is None


def test_an_owner_holds_one_allocation_and_release_is_idempotent() -> None:
    node = ledger(gpus=(0,))
    held = node.allocate("a", Request(cpu=1, gpu=1, memory_mb=10))
    with pytest.raises(Conflict):
        node.allocate("a", Request(cpu=0, gpu=0, memory_mb=0))
    assert node.allocations() == {"a": held}
    assert node.release("a") == held
    assert node.release("a") is None
    assert node.free() == FreeResources(gpus=(0,), cpu=8.0, memory_mb=8192)


def test_restore_rebuilds_the_same_ledger() -> None:
    before = ledger(gpus=(0, 1, 2))
    before.allocate("a", Request(cpu=2, gpu=1, memory_mb=1000))
    before.allocate("b", Request(cpu=1, gpu=2, memory_mb=500))
    before.release("a")
    before.allocate("c", Request(cpu=3, gpu=1, memory_mb=700))
    stored = {owner: held.to_document() for owner, held in before.allocations().items()}

    after = ledger(gpus=(0, 1, 2))
    for owner, document in stored.items():
        after.restore(owner, Allocation.from_document(document))
    assert after.allocations() == before.allocations()
    assert after.free() == before.free()
    assert after.allocate("d", gpu(0)) == before.allocate("d", gpu(0))


def test_restore_keeps_what_runs_even_beyond_a_smaller_capacity() -> None:
    node = ledger(gpus=(0,), memory_mb=1000)
    node.restore("a", Allocation(gpus=(0, 5), cpu=20, memory_mb=1500))
    assert node.free() == FreeResources(gpus=(), cpu=0.0, memory_mb=0)
    assert not node.fits(Request(cpu=0, gpu=0, memory_mb=1))
    node.release("a")
    assert node.free() == FreeResources(gpus=(0,), cpu=8.0, memory_mb=1000)


def test_restore_refuses_a_gpu_held_by_another_owner() -> None:
    node = ledger(gpus=(0, 1))
    node.restore("a", Allocation(gpus=(1,), cpu=0, memory_mb=0))
    with pytest.raises(Conflict, match="GPU 1"):
        node.restore("b", Allocation(gpus=(1,), cpu=0, memory_mb=0))
    with pytest.raises(Conflict):
        node.restore("a", Allocation(gpus=(), cpu=0, memory_mb=0))


def test_job_peak_request_is_the_componentwise_maximum() -> None:
    requests = [
        Request(cpu=4, gpu=0, memory_mb=512),
        Request(cpu=1, gpu=2, memory_mb=256),
        Request(cpu=2, gpu=1, memory_mb=4096),
    ]
    assert job_peak_request(requests) == Request(cpu=4, gpu=2, memory_mb=4096)
    assert job_peak_request([]) == Request(cpu=0, gpu=0, memory_mb=0)


@pytest.mark.parametrize(
    "document",
    [{"gpus": [0], "cpu": 1}, {"gpus": [0, 0], "cpu": 1, "memory_mb": 1}, {"gpus": 3}],
)
def test_a_malformed_stored_allocation_is_a_store_error(document: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        Allocation.from_document(document)
    assert caught.value.code == ErrorCode.JOB_STORE_ERROR


@pytest.mark.parametrize(
    "build",
    [
        lambda: Request(cpu=-1, gpu=0, memory_mb=0),
        lambda: Request(cpu=1, gpu=True, memory_mb=0),
        lambda: Capacity(gpus=(0, 0), cpu=1, memory_mb=1),
        lambda: Capacity(gpus=(-1,), cpu=1, memory_mb=1),
        lambda: Capacity(gpus=(), cpu=0, memory_mb=1),
        lambda: Capacity(gpus=(), cpu=1, memory_mb=0),
        lambda: Capacity(gpus=(), cpu=1, memory_mb=1, cpu_overcommit=0.5),
    ],
)
def test_bad_values_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(Invalid):
        build()


_requests = st.builds(
    Request,
    cpu=st.integers(min_value=0, max_value=12),
    gpu=st.integers(min_value=0, max_value=3),
    memory_mb=st.integers(min_value=0, max_value=3000),
)


@given(steps=st.lists(st.tuples(st.integers(min_value=0, max_value=5), _requests), max_size=60))
def test_allocations_never_share_a_gpu_and_the_books_balance(
    steps: list[tuple[int, Request]],
) -> None:
    node = ledger(gpus=(0, 1, 2, 3), cpu=2, memory_mb=8000)
    for owner_number, request in steps:
        owner = f"op-{owner_number}"
        if owner in node.allocations():
            node.release(owner)
        elif node.fits(request):
            node.allocate(owner, request)
        held = node.allocations().values()
        gpus = [index for allocation in held for index in allocation.gpus]
        assert len(gpus) == len(set(gpus))
        assert sorted(gpus + list(node.free().gpus)) == [0, 1, 2, 3]
        assert sum(a.memory_mb for a in held) + node.free().memory_mb == 8000
        # CPU balances under the limit; only a lone oversized request may overdraw it.
        charged = sum(a.cpu for a in held)
        assert charged + node.free().cpu == max(8.0, charged)
