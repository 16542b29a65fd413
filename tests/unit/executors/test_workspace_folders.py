"""A run's folders are made parents first and removed by name, walking only what an operator
left behind, and never through a link."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from aorta.executors import VolumeBinding, workspace_folders
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.local.work_folders import hand_over
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import create_workspace_blocking, remove_workspace_blocking

JOB = "0123456789abcdef0123456789abcdef"
DECLARED = ["/input", "/data/output", "/data/more"]


def made(root: Path, operator: str = "op") -> Workspace:
    """A workspace as a run makes it: folders, log and the group leader's status file."""
    workspace = Workspace.for_run(root, JOB, operator, 1)
    bindings = [VolumeBinding("x", path, "payloads/x/") for path in DECLARED]
    create_workspace_blocking(workspace, bindings)
    workspace.log_file.write_bytes(b"")
    me = OperatorUser("self", os.geteuid(), os.getegid(), switch=False)
    hand_over(workspace, me, DECLARED, fresh=True)
    return workspace


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders `shutil.rmtree` was asked to walk."""
    walked: list[Path] = []
    rmtree: Callable[[Path], None] = shutil.rmtree

    def recording(folder: Path) -> None:
        walked.append(Path(folder))
        rmtree(folder)

    monkeypatch.setattr(workspace_folders.shutil, "rmtree", recording)
    return walked


def test_a_workspace_as_made_is_removed_by_name_without_a_walk(
    tmp_path: Path, walks: list[Path]
) -> None:
    workspace = made(tmp_path)
    walks.clear()  # the leftovers' removal before the folders were made

    remove_workspace_blocking(workspace, DECLARED)

    assert walks == []
    assert not (tmp_path / JOB).exists()


def test_only_folders_an_operator_filled_are_walked(tmp_path: Path, walks: list[Path]) -> None:
    workspace = made(tmp_path)
    walks.clear()
    (workspace.volume("/data/output") / "series").mkdir()
    (workspace.volume("/data/output") / "series" / "1.dcm").write_bytes(b"one")
    (workspace.home / ".cache").write_bytes(b"")

    remove_workspace_blocking(workspace, DECLARED)

    assert walks == [workspace.volume("/data/output"), workspace.home]
    assert not (tmp_path / JOB).exists()


def test_links_are_removed_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "platform"
    outside.mkdir()
    (outside / "secret").write_bytes(b"kept")
    workspace = made(tmp_path / "work")
    (workspace.home / "link").symlink_to(outside, target_is_directory=True)
    os.rmdir(workspace.tmp)
    workspace.tmp.symlink_to(outside, target_is_directory=True)  # a link in a folder's place
    (workspace.folder / "extra").symlink_to(outside / "secret")  # something not made by name

    remove_workspace_blocking(workspace, DECLARED)

    assert (outside / "secret").read_bytes() == b"kept"
    assert not (tmp_path / "work" / JOB).exists()


def test_without_the_declared_paths_the_folder_is_walked(tmp_path: Path, walks: list[Path]) -> None:
    workspace = made(tmp_path)
    walks.clear()

    remove_workspace_blocking(workspace)

    assert walks == [workspace.folder]
    assert not (tmp_path / JOB).exists()


def test_the_job_folder_stays_while_another_run_of_the_job_has_its_own(tmp_path: Path) -> None:
    first, second = made(tmp_path, "a"), made(tmp_path, "b")

    remove_workspace_blocking(first, DECLARED)
    assert second.home.is_dir() and not first.folder.exists()
    remove_workspace_blocking(second, DECLARED)
    assert not (tmp_path / JOB).exists()


def test_a_missing_work_root_is_made_with_the_first_workspace(tmp_path: Path) -> None:
    workspace = made(tmp_path / "not" / "yet")
    assert workspace.volume("/data/more").is_dir() and workspace.tmp.is_dir()
