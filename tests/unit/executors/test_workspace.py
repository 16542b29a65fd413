"""Workspace layout rules and the bounded transfer loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.errors import Invalid
from aorta.executors import VolumeBinding
from aorta.executors.transfers import _bounded, _regular_files
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import create_workspace, remove_workspace

JOB = "0123456789abcdef0123456789abcdef"


def binding(path: str) -> VolumeBinding:
    return VolumeBinding("payload", path, "payloads/x/input/")


def test_the_workspace_of_an_attempt_lies_under_its_job(tmp_path: Path) -> None:
    workspace = Workspace.for_run(tmp_path, JOB.upper(), "reader", 2)

    assert workspace.folder == tmp_path / JOB / "reader-2"
    assert workspace.volume("/input") == workspace.folder / "volumes" / "input"
    assert workspace.volume("/data/in/") == workspace.folder / "volumes" / "data" / "in"
    assert {workspace.home.name, workspace.tmp.name} == {"home", "tmp"}


@pytest.mark.parametrize(
    ("job", "operator", "attempt"),
    [("../../etc", "reader", 1), (JOB, "../x", 1), (JOB, "a/b", 1), (JOB, "reader", -1)],
)
def test_ids_that_could_leave_the_work_root_are_refused(
    tmp_path: Path, job: str, operator: str, attempt: int
) -> None:
    with pytest.raises(Invalid):
        Workspace.for_run(tmp_path, job, operator, attempt)


@pytest.mark.parametrize("declared", ["input", "/", "/a/../b", "/./a", ""])
def test_declared_paths_must_be_rooted_and_plain(tmp_path: Path, declared: str) -> None:
    with pytest.raises(Invalid, match="is not a rooted folder"):
        Workspace(tmp_path).volume(declared)


@pytest.mark.parametrize(
    "paths", [("/data", "/data/out"), ("/a/b", "/a"), ("/input", "/input"), ("/x", "/x/")]
)
async def test_overlapping_paths_are_refused(tmp_path: Path, paths: tuple[str, str]) -> None:
    with pytest.raises(Invalid, match="overlap"):
        await create_workspace(Workspace(tmp_path / "w"), [binding(p) for p in paths])


@pytest.mark.parametrize("prefix", ["payloads/x/input", "/payloads/x/", "payloads//x/"])
async def test_blob_prefixes_must_be_folders(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(Invalid, match="blob prefix"):
        await create_workspace(
            Workspace(tmp_path / "w"), [VolumeBinding("payload", "/input", prefix)]
        )


async def test_create_makes_every_folder_and_clears_leftovers(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "w")
    (workspace.folder / "volumes" / "old").mkdir(parents=True)

    await create_workspace(
        workspace, [binding("/input"), binding("/data/output"), binding("/database")]
    )

    volumes = workspace.folder / "volumes"
    assert sorted(p.relative_to(volumes).as_posix() for p in volumes.rglob("*")) == [
        "data",
        "data/output",
        "database",
        "input",
    ]
    assert workspace.home.is_dir() and workspace.tmp.is_dir()


async def test_remove_takes_the_job_folder_when_it_is_left_empty(tmp_path: Path) -> None:
    first = Workspace.for_run(tmp_path, JOB, "a", 1)
    second = Workspace.for_run(tmp_path, JOB, "b", 1)
    await create_workspace(first, [])
    await create_workspace(second, [])

    await remove_workspace(first)
    assert second.folder.is_dir()
    await remove_workspace(second)
    assert not (tmp_path / JOB).exists()


def test_only_regular_files_are_listed(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.txt").write_text("c")
    (tmp_path / "top.txt").write_text("t")
    (tmp_path / "link").symlink_to(tmp_path / "top.txt")
    (tmp_path / "folder-link").symlink_to(tmp_path / "a")

    files, skipped = _regular_files(tmp_path)

    assert [name for name, _ in files] == ["a/b/c.txt", "top.txt"]
    assert skipped == ["folder-link", "link"]
    assert _regular_files(tmp_path / "missing") == ([], [])


async def numbers(count: int) -> AsyncIterator[int]:
    for number in range(count):
        yield number


async def test_bounded_runs_a_few_at_a_time_and_returns_every_result() -> None:
    running = 0
    most = 0

    async def work(number: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (number % 3))
        running -= 1
        return number

    assert sorted(await _bounded(numbers(20), work, limit=3)) == list(range(20))
    assert most == 3


async def test_bounded_stops_at_the_first_error_and_cancels_the_rest() -> None:
    cancelled: list[int] = []

    async def work(number: int) -> int:
        if number == 2:
            raise OSError("disk full")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(number)
            raise
        return number

    with pytest.raises(OSError, match="disk full"):
        await _bounded(numbers(100), work, limit=4)
    assert sorted(cancelled) == [0, 1, 3]
