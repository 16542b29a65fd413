"""A local run's workspace and plan cleared in one call, the plan last."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.executors.local.run_plans import RunPlan, RunPlans, clear_run
from aorta.executors.workspace import Workspace

JOB = "0f" * 16


def plan(run_id: str) -> RunPlan:
    return RunPlan(run_id, JOB, "op", 0, (), "logs/op")


def test_the_workspace_goes_then_the_plan(tmp_path: Path) -> None:
    plans = RunPlans(tmp_path / "plans")
    held = plans.hold(plan("run-1"))
    workspace = Workspace.for_run(tmp_path / "work", JOB, "op", 0)
    (workspace.folder / "home").mkdir(parents=True)

    assert clear_run(workspace, held) == []

    assert not workspace.folder.exists()
    assert not workspace.folder.parent.exists()  # the job's folder, left empty
    assert not held.path.exists()
    assert plans.scan() == ([], [])


def test_a_kept_workspace_stays_and_a_failure_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = RunPlans(tmp_path / "plans").hold(plan("run-2"))

    def refused(*, remove: bool) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(held, "release", refused)
    assert clear_run(None, held) == [("plan removal", "read-only file system")]


def test_a_plans_folder_is_made_at_the_first_hold_and_again_when_removed(tmp_path: Path) -> None:
    plans = RunPlans(tmp_path / "a" / "plans")
    plans.hold(plan("run-3")).release(remove=True)
    (tmp_path / "a" / "plans").rmdir()

    held = plans.hold(plan("run-4"))

    assert held.path.parent == tmp_path / "a" / "plans" and held.path.exists()
    assert (tmp_path / "a" / "plans").stat().st_mode & 0o777 == 0o700
