"""What a local platform that died left in its work root, and how the next one clears it up.

A run whose platform died (its plan unlocked, `aorta.executors.local.run_plans`) got as far as
its workspace says. When its group leader recorded `exit 0`, the operator finished: its outputs
are stored now from the workspace, and its outcome recorded (`aorta.executors.outcome_records`),
so the scheduler reads COMPLETED and never runs it again. Any other run was killed, or never
started, or failed just before the crash: it leaves no record, the scheduler finds it LOST and
runs it again as a new attempt. Either way its workspace and plan are then removed, as is every
workspace no live run's plan names.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Invalid
from aorta.executors.local.process_group import recorded_exit
from aorta.executors.local.run_plans import HeldPlan
from aorta.executors.outcome_records import OutcomeRecords
from aorta.executors.port import RunOutcome, RunReason, RunTimes
from aorta.executors.run_log import RunLog
from aorta.executors.transfers import push_outputs
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import remove_workspace
from aorta.logger import get_logger

_JOB_FOLDER = re.compile(r"^[0-9a-f]{32}$")

_log = get_logger(__name__)


def workspace_folders(root: Path) -> tuple[list[Path], list[Path]]:
    """Every run folder under `root` (`<job id>/<operator>-<attempt>`), and the job folders
    that hold none. Blocks."""
    try:
        jobs = [entry for entry in os.scandir(root) if _JOB_FOLDER.match(entry.name)]
    except FileNotFoundError:
        return [], []
    folders: list[Path] = []
    empty: list[Path] = []
    for job in jobs:
        if job.is_dir(follow_symlinks=False):
            runs = [Path(run.path) for run in os.scandir(job.path)]
            folders += runs
            if not runs:
                empty.append(Path(job.path))
    return folders, empty


async def clear_orphan(
    held: HeldPlan,
    root: Path,
    blobs: BlobStore,
    records: OutcomeRecords,
    *,
    keep_workspace: bool = False,
) -> bool:
    """Finishes the run of an orphaned plan (module docstring) and removes its workspace
    (unless `keep_workspace`) and plan; False, with both kept (and the plan still held), when
    an exit 0's outputs cannot be stored now (the blob store does not answer): try again
    later."""
    plan = held.plan
    try:
        workspace = Workspace.for_run(root, plan.job_id, plan.operator, plan.attempt)
    except Invalid:
        await asyncio.to_thread(held.release, remove=True)
        return True
    if await records.read(plan.run_id) is None:
        ended = await asyncio.to_thread(recorded_exit, workspace.status_file)
        if ended is not None and ended.code == 0 and ended.signal is None:
            try:
                outcome = await _store(plan.run_id, plan.operator, held, workspace, blobs)
            except (AortaError, OSError) as error:
                _log.warning("outputs not stored yet", run_id=plan.run_id, error=str(error))
                return False
            await records.write(outcome)
            _log.info(
                "operator run finished after a restart",
                run_id=plan.run_id,
                reason=outcome.reason.value,
            )
        else:
            _log.info("interrupted operator run cleared", run_id=plan.run_id)
    if not keep_workspace:
        await remove_workspace(workspace)
    await asyncio.to_thread(held.release, remove=True)
    return True


async def _store(
    run_id: str, operator: str, held: HeldPlan, workspace: Workspace, blobs: BlobStore
) -> RunOutcome:
    """Stores the outputs and log an operator left when it exited 0 just before its platform
    died. `Invalid` file names fail the run as they would have; other errors are raised."""
    exited = await asyncio.to_thread(_mtime, workspace.status_file)
    try:
        pushed = await push_outputs(blobs, held.plan.outputs, workspace)
    except Invalid as error:
        message = f"outputs of operator {operator} could not be stored: {error}"
        return RunOutcome(run_id, RunReason.FAILED, 0, message, RunTimes(exited=exited))
    if workspace.log_file.exists():
        log = RunLog(workspace.log_file, max_bytes=1 << 62)
        await log.push(blobs, held.plan.log_key)
    plural = "" if pushed.files == 1 else "s"
    message = (
        f"{pushed.files} file{plural} ({pushed.size} bytes) stored after a restart of the "
        "platform (the operator had exited 0 before it stopped)"
    )
    times = RunTimes(exited=exited, stored=time.time())
    return RunOutcome(run_id, RunReason.COMPLETED, 0, message, times)


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path, follow_symlinks=False).st_mtime
    except OSError:
        return None
