"""What happens before the command runs: the workspace, the input fetch, the environment; and
how a failure or a stop request there is reported."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aorta import payload_layout
from aorta.blobs.local import LocalBlobStore
from aorta.errors import NotFound, Unavailable
from aorta.executors import KnownRuns, RunReason, VolumeBinding
from aorta.executors.local.executor import LocalExecutor
from aorta.executors.local.standby_leader import StandbyLeaders
from tests.integration.executors.conftest import Job, Store


class GatedBlobs:
    """A real store whose `get` announces itself, then fails with `error` or waits for `gate`."""

    def __init__(self, inner: LocalBlobStore, error: Exception | None = None) -> None:
        self.inner = inner
        self.error = error
        self.gate = asyncio.Event()
        self.fetching = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def get(self, key: str) -> AsyncIterator[bytes]:
        self.fetching.set()
        if self.error is not None:
            raise self.error
        await self.gate.wait()
        async for chunk in self.inner.get(key):
            yield chunk


@pytest.fixture
async def gated(blobs: LocalBlobStore, store: Store, job: Job) -> GatedBlobs:
    await store.put(payload_layout.input_prefix(job.payload_id) + "scan.nii", b"scan")
    return GatedBlobs(blobs)


async def test_a_cancel_during_the_input_fetch_ends_the_run_before_it_starts(
    gated: GatedBlobs, job: Job, tmp_path: Path
) -> None:
    executor = LocalExecutor(gated, tmp_path / "work")  # type: ignore[arg-type]
    marker = tmp_path / "ran"
    run = job.run(("touch", str(marker)))
    await executor.start(run)
    await gated.fetching.wait()
    assert await executor.running() == KnownRuns(live=(run.run_id,))

    await executor.cancel(run.run_id, grace=1)

    outcome = await executor.wait(run.run_id)
    assert (outcome.reason, outcome.exit_code) == (RunReason.CANCELLED, None)
    assert outcome.message == "operator op was cancelled before it started"
    assert not marker.exists()
    await executor.close()
    assert not (tmp_path / "work" / job.job_id).exists()


async def test_closing_during_the_input_fetch_loses_the_run(
    gated: GatedBlobs, job: Job, tmp_path: Path
) -> None:
    executor = LocalExecutor(gated, tmp_path / "work")  # type: ignore[arg-type]
    run = job.run(("true",))
    await executor.start(run)
    await gated.fetching.wait()

    await executor.close()

    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.LOST
    assert outcome.message == (
        "the local executor closed before operator op started: run it again as a new attempt"
    )


async def test_an_input_that_cannot_be_fetched_is_a_start_failure(
    blobs: LocalBlobStore, store: Store, job: Job, tmp_path: Path
) -> None:
    await store.put(payload_layout.input_prefix(job.payload_id) + "scan.nii", b"scan")
    failing = GatedBlobs(blobs, error=Unavailable("the blob store is down"))
    executor = LocalExecutor(failing, tmp_path / "work")  # type: ignore[arg-type]
    run = job.run(("true",))

    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    await executor.close()

    assert outcome.reason is RunReason.START_FAILED
    assert outcome.message == "inputs could not be fetched: the blob store is down"


async def test_overlapping_declared_paths_are_a_start_failure(
    executor: LocalExecutor, job: Job
) -> None:
    run = job.run(
        ("true",),
        inputs=(VolumeBinding("payload", "/data", payload_layout.input_prefix(job.payload_id)),),
        outputs=(VolumeBinding("op", "/data/out", job.output_prefix()),),
    )

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.START_FAILED
    assert "paths '/data' and '/data/out' overlap" in outcome.message


async def test_a_variable_the_contract_reserves_is_a_start_failure(
    executor: LocalExecutor, job: Job
) -> None:
    run = job.run(("true",), environment={"NVIDIA_CLARA_JOBID": "mine"})

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.START_FAILED
    assert outcome.message == "operator variables may not set NVIDIA_CLARA_JOBID"


async def test_ids_that_could_escape_the_work_folder_are_a_start_failure(
    executor: LocalExecutor, job: Job, tmp_path: Path
) -> None:
    run = job.run(("true",), operator="../../escape")

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.START_FAILED
    assert "is not a valid name" in outcome.message
    assert not (tmp_path / "escape").exists()
    with pytest.raises(NotFound):
        async for _ in executor.log_lines(run.run_id):
            pass


async def test_log_lines_before_the_run_wrote_anything_are_empty(
    gated: GatedBlobs, job: Job, tmp_path: Path
) -> None:
    executor = LocalExecutor(gated, tmp_path / "work")  # type: ignore[arg-type]
    run = job.run(("echo", "hello"))
    await executor.start(run)
    await gated.fetching.wait()

    assert [line async for line in executor.log_lines(run.run_id)] == []

    gated.gate.set()
    assert (await executor.wait(run.run_id)).succeeded
    assert [line async for line in executor.log_lines(run.run_id)] == ["hello"]
    await executor.close()


async def test_a_run_without_input_files_is_prepared_in_one_thread_call(
    executor: LocalExecutor, job: Job, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome record's check, the plan, the workspace, the log file and the hand-over
    are one call to a worker thread (each call waits for a core on a busy machine); with an
    input file, the hand-over follows the fetch in a call of its own."""
    await executor.running()  # the startup sweep, which has thread calls of its own
    calls: list[str] = []
    before_start: list[list[str]] = []
    real_to_thread, real_hand = asyncio.to_thread, StandbyLeaders.hand

    async def to_thread(function: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls.append(function.__name__)
        return await real_to_thread(function, *args, **kwargs)

    def hand(*args: Any, **kwargs: Any) -> Any:  # asked first, whether a leader waits or not
        before_start.append(list(calls))
        calls.clear()
        return real_hand(*args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    monkeypatch.setattr(StandbyLeaders, "hand", hand)
    empty = job.run(("true",), operator="empty")
    fed = job.run(
        ("true",),
        operator="fed",
        inputs=(VolumeBinding("in", "/input", job.output_prefix("up")),),
    )
    await store.put(job.output_prefix("up") + "scan.nii", b"scan")

    for run in (empty, fed):
        calls.clear()
        await executor.start(run)
        assert (await executor.wait(run.run_id)).succeeded

    assert before_start[0] == ["make_room"]
    assert before_start[1][0] == "make_room"
    assert before_start[1][-1] == "hand_over_run"
