"""Outcomes kept on disk, or in the blob store, after their runs are cleared away."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from aorta.blobs.local import LocalBlobStore
from aorta.executors import RunOutcome, RunReason, RunTimes
from aorta.executors.outcome_records import BlobOutcomeRecords, OutcomeRecords


async def test_an_outcome_reads_back_as_written(tmp_path: Path) -> None:
    records = OutcomeRecords(tmp_path / "outcomes")
    outcome = RunOutcome("job-op-1", RunReason.FAILED, 3, "operator op failed: exit code 3")
    await records.write(outcome)
    assert await records.read("job-op-1") == outcome
    assert await records.run_ids() == ["job-op-1"]
    mode = os.stat(tmp_path / "outcomes" / "job-op-1.json").st_mode
    assert stat.S_IMODE(mode) == 0o600


async def test_a_runs_stage_times_are_kept_and_old_records_have_none(tmp_path: Path) -> None:
    records = OutcomeRecords(tmp_path / "outcomes")
    times = RunTimes(staging=10.0, running=11.5, exited=20.0, stored=20.25)
    await records.write(RunOutcome("job-op-2", RunReason.COMPLETED, 0, "stored", times))
    assert (await records.read("job-op-2")) == RunOutcome(
        "job-op-2", RunReason.COMPLETED, 0, "stored", times
    )
    old = {"run_id": "job-op-3", "reason": "failed", "exit_code": 1, "message": "failed"}
    (tmp_path / "outcomes" / "job-op-3.json").write_text(json.dumps(old))
    assert await records.read("job-op-3") == RunOutcome("job-op-3", RunReason.FAILED, 1, "failed")


async def test_unknown_and_unsafe_run_ids_have_no_record(tmp_path: Path) -> None:
    records = OutcomeRecords(tmp_path / "outcomes")
    assert await records.read("job-op-1") is None
    assert await records.run_ids() == []
    await records.write(RunOutcome("../escape", RunReason.COMPLETED, 0))
    assert await records.read("../escape") is None
    assert not (tmp_path / "escape.json").exists()


async def test_old_records_are_swept(tmp_path: Path) -> None:
    records = OutcomeRecords(tmp_path / "outcomes", keep_for=60)
    await records.write(RunOutcome("old-op-1", RunReason.COMPLETED, 0))
    await records.write(RunOutcome("new-op-1", RunReason.COMPLETED, 0))
    hour_ago = time.time() - 3600
    os.utime(tmp_path / "outcomes" / "old-op-1.json", (hour_ago, hour_ago))
    assert await records.run_ids() == ["new-op-1"]
    assert await records.read("old-op-1") is None


async def test_records_in_the_blob_store_read_back_list_and_expire(tmp_path: Path) -> None:
    blobs = await LocalBlobStore.open(tmp_path / "blobs")
    try:
        records = BlobOutcomeRecords(blobs, "outcomes/test/", keep_for=60)
        times = RunTimes(staging=10.0, running=11.5, exited=20.0, stored=20.25)
        done = RunOutcome("job-op-1", RunReason.COMPLETED, 0, "stored", times)
        await records.write(done)
        await records.write(RunOutcome("old-op-1", RunReason.FAILED, 2, "failed"))
        await records.write(RunOutcome("../escape", RunReason.COMPLETED, 0))
        hour_ago = time.time() - 3600
        os.utime(tmp_path / "blobs" / "outcomes" / "test" / "old-op-1.json", (hour_ago, hour_ago))

        assert await records.read("job-op-1") == done
        assert await records.read("nobody-op-1") is None
        assert await records.read("../escape") is None
        assert await records.run_ids() == ["job-op-1"]
        assert await records.read("old-op-1") is None  # swept by the listing
    finally:
        await blobs.close()


async def test_a_records_folder_removed_under_the_executor_is_made_again(tmp_path: Path) -> None:
    records = OutcomeRecords(tmp_path / "outcomes")
    await records.write(RunOutcome("job-op-3", RunReason.COMPLETED, 0, "stored"))
    for name in os.listdir(tmp_path / "outcomes"):
        os.unlink(tmp_path / "outcomes" / name)
    os.rmdir(tmp_path / "outcomes")

    await records.write(RunOutcome("job-op-4", RunReason.COMPLETED, 0, "stored"))

    assert await records.run_ids() == ["job-op-4"]
    assert stat.S_IMODE(os.stat(tmp_path / "outcomes").st_mode) == 0o700
