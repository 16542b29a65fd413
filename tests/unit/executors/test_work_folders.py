"""The work root is the platform's and safe; a run's folders go to the operator's user once the
inputs are in; outputs are read without following links."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from aorta.errors import Invalid
from aorta.executors.local import work_folders
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.local.work_folders import default_work_root, hand_over, prepare_work_root
from aorta.executors.transfers import open_beneath
from aorta.executors.workspace import Workspace

JOB = "0123456789abcdef0123456789abcdef"
STRANGER = OperatorUser("stranger", 4321, 4321, switch=True)


def itself(*, switch: bool) -> OperatorUser:
    """The test's own user, as a user switched to (chown to oneself works unprivileged)."""
    return OperatorUser("self", os.geteuid(), os.getegid(), switch=switch)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_default_work_root_is_outside_the_data_dir_per_user_and_per_data_dir(
    tmp_path: Path,
) -> None:
    root = default_work_root(tmp_path / "data")
    assert root.parent.name == f"aorta-runs-{os.geteuid()}"
    assert root.parent.parent in {Path("/var/tmp"), Path(os.environ.get("TMPDIR", "/tmp"))}
    assert re.fullmatch(r"[0-9a-f]{16}", root.name)
    assert not root.is_relative_to(tmp_path)


def test_two_data_dirs_get_two_work_roots_and_one_data_dir_always_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, other = default_work_root(tmp_path / "one"), default_work_root(tmp_path / "other")
    assert one != other and one.parent == other.parent
    monkeypatch.chdir(tmp_path)
    assert default_work_root(Path("one")) == one
    assert default_work_root(tmp_path / "other" / ".." / "one") == one
    containers = default_work_root(tmp_path / "one", prefix="aorta-containers")
    assert containers.parent.name == f"aorta-containers-{os.geteuid()}"
    assert containers.name == one.name


def test_a_default_work_root_inside_the_data_dir_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work_folders, "_SHARED_TEMP", tmp_path / "temp")
    (tmp_path / "temp").mkdir()
    with pytest.raises(Invalid, match=r"inside the data dir.*AORTA_SCHEDULER_WORK_DIR"):
        default_work_root(tmp_path)


def test_a_missing_work_root_is_created_passable_but_not_listable(tmp_path: Path) -> None:
    root = tmp_path / "a" / "work"
    prepare_work_root(root, STRANGER)
    assert mode(root) == 0o711
    assert mode(root.parent) == 0o711  # whatever the umask: the per-user folder of the default


def test_the_default_per_user_folder_is_made_like_the_work_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work_folders, "_SHARED_TEMP", tmp_path / "temp")
    (tmp_path / "temp").mkdir()
    one, other = default_work_root(tmp_path / "one"), default_work_root(tmp_path / "other")
    prepare_work_root(one, STRANGER)
    prepare_work_root(other, STRANGER)
    assert one.parent == tmp_path / "temp" / f"aorta-runs-{os.geteuid()}"
    assert (mode(one.parent), mode(one), mode(other)) == (0o711, 0o711, 0o711)


@pytest.mark.parametrize("loose", [0o777, 0o731])
def test_a_default_per_user_folder_others_may_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose: int
) -> None:
    monkeypatch.setattr(work_folders, "_SHARED_TEMP", tmp_path / "temp")
    (tmp_path / "temp").mkdir()
    root = default_work_root(tmp_path / "data")
    root.parent.mkdir()
    root.parent.chmod(loose)  # whoever may write it could swap the work root for a link
    with pytest.raises(Invalid, match=f"{root.parent} above the work dir is writable by other"):
        prepare_work_root(root, STRANGER)


@pytest.mark.parametrize("loose", [0o775, 0o737])
def test_a_work_root_others_may_write_is_refused(tmp_path: Path, loose: int) -> None:
    root = tmp_path / "work"
    root.mkdir()
    root.chmod(loose)
    with pytest.raises(Invalid, match="writable by other users"):
        prepare_work_root(root, STRANGER)


def test_a_link_as_work_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "work").symlink_to(tmp_path / "real")
    with pytest.raises(Invalid, match="not a folder"):
        prepare_work_root(tmp_path / "work", STRANGER)


def test_a_work_root_the_operator_cannot_reach_is_refused(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    with pytest.raises(Invalid, match=f"cannot enter {private} .*AORTA_SCHEDULER_WORK_DIR"):
        prepare_work_root(private / "work", STRANGER)


def test_hand_over_gives_the_declared_folders_home_and_tmp_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    workspace = Workspace.for_run(tmp_path / "work", JOB, "seg", 1)
    inputs = workspace.volume("/input")
    (inputs / "series").mkdir(parents=True)
    (inputs / "series" / "1.dcm").write_bytes(b"one")
    workspace.volume("/output").mkdir(parents=True)
    workspace.home.mkdir()
    workspace.tmp.mkdir()
    workspace.log_file.write_bytes(b"")

    hand_over(workspace, itself(switch=True), ["/input", "/output"])

    assert mode(workspace.folder.parent) == mode(workspace.folder) == 0o711
    # The operator may not rename its output folder away (and put a link in its place).
    assert mode(workspace.folder / "volumes") == 0o711
    assert mode(workspace.status_file) == 0o600 and workspace.status_file.read_bytes() == b""
    for folder in (inputs, inputs / "series", workspace.volume("/output"), workspace.home):
        assert mode(folder) == 0o700
    assert mode(inputs / "series" / "1.dcm") == 0o600
    owned = [os.lstat(p).st_uid for p in workspace.folder.rglob("*") if p != workspace.log_file]
    assert set(owned) == {os.geteuid()}


def test_folders_on_the_way_to_a_nested_declared_path_stay_the_platforms(tmp_path: Path) -> None:
    workspace = Workspace.for_run(tmp_path / "work", JOB, "seg", 1)
    workspace.volume("/app/out").mkdir(parents=True)
    hand_over(workspace, itself(switch=False), ["/app/out"])
    assert mode(workspace.folder / "volumes") == mode(workspace.folder / "volumes" / "app") == 0o711
    assert mode(workspace.volume("/app/out")) == 0o700


def test_a_fresh_workspace_is_handed_over_without_walking_its_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = Workspace.for_run(tmp_path / "work", JOB, "seg", 1)
    for folder in (workspace.volume("/app/out"), workspace.home, workspace.tmp):
        folder.mkdir(parents=True)

    def no_walk(top: Path, topdown: bool = True) -> None:
        raise AssertionError(f"{top} walked")

    monkeypatch.setattr(work_folders.os, "walk", no_walk)
    hand_over(workspace, itself(switch=True), ["/app/out"], fresh=True)

    assert mode(workspace.folder / "volumes" / "app") == 0o711
    assert mode(workspace.volume("/app/out")) == mode(workspace.home) == 0o700
    assert mode(workspace.status_file) == 0o600


def test_hand_over_without_volumes_gives_home_and_tmp(tmp_path: Path) -> None:
    workspace = Workspace.for_run(tmp_path / "work", JOB, "sleeper", 1)
    workspace.home.mkdir(parents=True)
    workspace.tmp.mkdir()
    hand_over(workspace, itself(switch=False))
    assert mode(workspace.home) == mode(workspace.tmp) == 0o700


def test_open_beneath_reads_regular_files_only_and_follows_no_link(tmp_path: Path) -> None:
    outputs = tmp_path / "volumes" / "output"
    (outputs / "deep").mkdir(parents=True)
    (outputs / "deep" / "mask.bin").write_bytes(b"mask")
    secret = tmp_path / "secret"
    secret.write_bytes(b"platform's")
    (outputs / "swapped").symlink_to(secret)
    (outputs / "moved").symlink_to(outputs / "deep", target_is_directory=True)
    os.mkfifo(outputs / "pipe")

    with open_beneath(tmp_path, ("volumes", "output", "deep", "mask.bin")) as file:
        assert file.read() == b"mask"
    for parts in (("swapped",), ("moved", "mask.bin"), ("pipe",)):
        with pytest.raises(OSError):
            open_beneath(tmp_path, ("volumes", "output", *parts))
