"""After a crash the local executor never runs an operator that exited 0 again, re-runs what
was killed, and sweeps what no live run owns."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aorta.blobs.local import LocalBlobStore
from aorta.errors import Invalid
from aorta.executors import RunReason
from aorta.executors.local import executor as executor_module
from aorta.executors.local.executor import LocalExecutor
from tests.integration.executors.conftest import OPERATORS, Job, Store, eventually


@pytest.fixture
def side(tmp_path: Path) -> Path:
    """A file each run of the operator appends a line to, in a folder its user may write."""
    folder = tmp_path / "side"
    folder.mkdir()
    folder.chmod(0o777)
    return folder / "runs"


@pytest.fixture
def crashed(tmp_path: Path, job: Job, side: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """A platform killed with SIGKILL at the moment the test's parameter names."""
    work = tmp_path
    with (tmp_path / "platform.log").open("wb") as output:
        platform = subprocess.Popen(
            [
                sys.executable,
                str(OPERATORS / "crash_stand_in.py"),
                str(work),
                job.job_id,
                job.payload_id,
                str(side),
                request.param,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            moment = Path(f"{side}.moment")
            asyncio.run(eventually(moment.exists, within=30))
            os.kill(platform.pid, signal.SIGKILL)
        finally:
            if platform.poll() is None:
                platform.kill()
            platform.wait()
    # As after a real restart, which takes longer than this: the platform's plans are free
    # once every process it started is gone, not when the platform itself has been waited
    # for. A leader it was starting at the kill holds a copy of its files until its exec,
    # and a plan still held then is taken for a live run of another platform.
    asyncio.run(eventually(lambda: plans_released(tmp_path / "runs" / "plans"), within=30))
    yield


def plans_released(plans: Path) -> bool:
    """Whether no process holds a lock on a plan under `plans`."""
    for entry in os.scandir(plans):
        descriptor = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(descriptor)
    return True


@pytest.fixture
async def restarted(blobs: LocalBlobStore, tmp_path: Path) -> AsyncIterator[LocalExecutor]:
    local = LocalExecutor(blobs, tmp_path / "runs", stop_grace=1.0, close_grace=1.0)
    yield local
    await local.close()


def leftovers(root: Path) -> list[str]:
    """What lies in the work root besides the outcome records and the plans folder."""
    found = []
    for folder, folders, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        if relative.parts[:1] in {("outcomes",), ("plans",)}:
            continue
        kept = {"plans", "outcomes"} if relative == Path() else set()
        found += [str(relative / name) for name in (*folders, *files) if name not in kept]
    plans = root / "plans"
    return found + ([f"plans/{name}" for name in os.listdir(plans)] if plans.exists() else [])


@pytest.mark.parametrize("crashed", ["exited"], indirect=True)
async def test_an_operator_that_exited_0_before_the_crash_is_finished_not_run_again(
    crashed: None, restarted: LocalExecutor, job: Job, store: Store, side: Path, tmp_path: Path
) -> None:
    run = job.run(("sh", "-c", f'echo ran >> "{side}"'))

    assert run.run_id in (await restarted.running()).ended
    outcome = await restarted.wait(run.run_id)
    await restarted.start(run)  # the scheduler starting it again changes nothing
    again = await restarted.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert "stored after a restart" in outcome.message
    assert again == outcome
    assert await asyncio.to_thread(side.read_text) == "ran\n"
    assert await store.read(f"{job.output_prefix()}result.txt") == b"result\n"
    assert leftovers(tmp_path / "runs") == []


@pytest.mark.parametrize("crashed", ["running"], indirect=True)
async def test_an_operator_killed_with_the_platform_is_lost_and_its_workspace_swept(
    crashed: None, restarted: LocalExecutor, job: Job, store: Store, side: Path, tmp_path: Path
) -> None:
    run_id = job.run(("true",)).run_id

    assert run_id not in await restarted.running()

    assert (await restarted.wait(run_id)).reason is RunReason.LOST
    assert await store.keys(job.output_prefix()) == []
    assert leftovers(tmp_path / "runs") == []


async def test_a_run_finished_by_an_earlier_executor_is_answered_from_its_record(
    blobs: LocalBlobStore, job: Job, side: Path, tmp_path: Path
) -> None:
    run = job.run(("sh", "-c", f'echo ran >> "{side}"'))
    first = LocalExecutor(blobs, tmp_path / "runs")
    try:
        await first.start(run)
        ended = await first.wait(run.run_id)
    finally:
        await first.close()

    second = LocalExecutor(blobs, tmp_path / "runs")
    try:
        assert run.run_id in (await second.running()).ended
        await second.start(run)
        assert await second.wait(run.run_id) == ended
    finally:
        await second.close()
    assert ended.succeeded
    assert await asyncio.to_thread(side.read_text) == "ran\n"


async def test_a_sweep_removes_what_no_live_run_owns_and_nothing_else(
    blobs: LocalBlobStore, job: Job, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    owner = LocalExecutor(blobs, root)
    sweeper = LocalExecutor(blobs, root)
    live = job.run(("sleep", "30"))
    stray = root / "0123456789abcdef0123456789abcdef" / "op-3" / "volumes" / "output"
    empty_job = root / "fedcba9876543210fedcba9876543210"
    try:
        await owner.start(live)
        await eventually(lambda: (root / job.job_id / "op-1" / "home").exists())
        stray.mkdir(parents=True)
        empty_job.mkdir()

        await sweeper.sweep()

        assert (root / job.job_id / "op-1" / "home").is_dir()
        assert not stray.parents[2].exists()
        assert not empty_job.exists()
        assert live.run_id in (await owner.running()).live
        assert live.run_id not in await sweeper.running()
    finally:
        await owner.cancel(live.run_id, grace=1)
        await owner.close()
        await sweeper.close()
    assert leftovers(root) == []


async def test_a_recorded_run_is_answered_from_its_record_even_where_runs_cannot_start(
    blobs: LocalBlobStore, job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record stands before any reason a run could not start here, and nothing is made
    for a recorded run."""
    run = job.run(("true",))
    first = LocalExecutor(blobs, tmp_path / "runs")
    try:
        await first.start(run)
        ended = await first.wait(run.run_id)
    finally:
        await first.close()

    again = LocalExecutor(blobs, tmp_path / "runs")
    try:
        await again.start(run)
        assert await again.wait(run.run_id) == ended
    finally:
        await again.close()

    def refused(*args: object) -> object:
        raise Invalid("operators cannot run here")

    monkeypatch.setattr(executor_module, "operators_ready", refused)
    refusing = LocalExecutor(blobs, tmp_path / "runs")
    try:
        await refusing.start(run)
        assert await refusing.wait(run.run_id) == ended
        other = job.run(("true",), operator="other")
        await refusing.start(other)
        assert (await refusing.wait(other.run_id)).reason is RunReason.START_FAILED
    finally:
        await refusing.close()
    assert ended.succeeded
    assert leftovers(tmp_path / "runs") == []
