"""Leftovers: the container executor's sweep removes the workspaces of runs a killed platform
left before their container existed, and nothing a live run owns."""

from __future__ import annotations

import uuid
from pathlib import Path

from aorta.executors import RunReason
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.spec import RUN_LABEL
from aorta.executors.container.workspace_claims import CLAIMS_FOLDER, try_claim
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import create_workspace
from tests.integration.executors.conftest import Job, eventually
from tests.integration.executors.container.conftest import MakeExecutor, in_image


async def _left_workspace(work: Path, operator: str) -> Workspace:
    """A workspace with a fetched input in it, as a run's staging leaves it."""
    workspace = Workspace.for_run(work, uuid.uuid4().hex, operator, 0)
    await create_workspace(workspace, [])
    (workspace.folder / "volumes" / "input").mkdir(parents=True)
    (workspace.folder / "volumes" / "input" / "scan.nii").write_bytes(b"bytes")
    return workspace


async def test_only_workspaces_no_live_run_owns_are_swept(
    make_executor: MakeExecutor,
    engine: ContainerEngine,
    job: Job,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    # A platform killed while it fetched a run's inputs: no container, no claim held.
    killed = await _left_workspace(work, "killed")
    # Another platform on the same work root fetching a run's inputs right now.
    staging = await _left_workspace(work, "staging")
    held = try_claim(work, staging.folder)
    assert held is not None
    # A run whose container goes on after its platform was killed.
    script = "echo started; sleep 3; echo finished > /output/result"
    run = in_image(job.run(()), busybox_image, "sh", "-c", script)
    crashed = await make_executor()
    await crashed.start(run)

    async def container_runs() -> bool:
        found = await engine.list({RUN_LABEL: run.run_id})
        return bool(found) and found[0]["State"] == "running"

    await eventually(container_runs, within=30)
    await crashed.close()
    running = Workspace.for_run(work, run.job_id, run.operator, run.attempt)

    restarted = await make_executor()
    assert run.run_id in await restarted.running()  # answered after the startup sweep

    assert not killed.folder.exists() and not killed.folder.parent.exists()
    assert (staging.folder / "volumes" / "input" / "scan.nii").exists()
    assert running.folder.exists()

    held.release()  # that platform died too
    await restarted.sweep()
    assert not staging.folder.exists()
    assert (await restarted.wait(run.run_id)).reason is RunReason.COMPLETED
    await restarted.sweep()
    assert sorted(path.name for path in work.iterdir()) == [
        CLAIMS_FOLDER,
        "outcomes-aorta-test",
    ]
    assert list((work / CLAIMS_FOLDER).iterdir()) == []
