"""The default layout's per-platform folders: each records its data dir and is locked while its
platform lives, and the folders of platforms gone are removed beside a starting one, never a
live one's, a link, another user's or anything not named by a platform key."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from aorta.errors import Invalid
from aorta.executors.container.executor import ContainerExecutor
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.workspace_claims import FOLDER_MODE, prepare_work_root
from aorta.executors.platform_folders import (
    LOCK_NAME,
    RECORD_NAME,
    UNTOUCHED_FOR,
    PlatformFolder,
    platform_key,
    remove_gone_platforms,
)

DAY = 24 * 3600.0


@pytest.fixture
def per_user(tmp_path: Path) -> Path:
    """The per-user folder, injected: a `/var/tmp/aorta-runs-<uid>` of the test's own."""
    folder = tmp_path / "aorta-runs"
    folder.mkdir(mode=0o711)
    return folder


def platform(per_user: Path, data_dir: Path) -> PlatformFolder:
    """The folder of a platform on `data_dir`, made as its executor makes it at startup."""
    data_dir.mkdir(exist_ok=True)
    folder = PlatformFolder(per_user / platform_key(data_dir), data_dir, 0o711)
    folder.hold()
    (folder.root / "outcomes").mkdir()
    return folder


def gone(per_user: Path, data_dir: Path) -> Path:
    """The folder of a platform on `data_dir` that stopped, its data dir then removed."""
    folder = platform(per_user, data_dir)
    folder.release()
    data_dir.rmdir()
    return folder.root


def recordless(per_user: Path, key: str, *, days_untouched: float) -> Path:
    """A folder made before folders recorded their data dir, untouched for that long."""
    folder = per_user / key
    (folder / "outcomes").mkdir(parents=True)
    (folder / "outcomes" / "record").write_bytes(b"{}")
    then = time.time() - days_untouched * DAY
    for path in (folder / "outcomes", folder):
        os.utime(path, (then, then))
    return folder


def sweep(per_user: Path, keep: str = "0" * 16, now: float | None = None) -> int:
    return remove_gone_platforms(per_user, keep, uid=os.geteuid(), now=now)


def test_a_platform_records_its_data_dir_and_holds_its_folder(
    tmp_path: Path, per_user: Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    folder = platform(per_user, tmp_path / "linked")
    record, lock = folder.root / RECORD_NAME, folder.root / LOCK_NAME
    assert record.read_bytes() == os.fsencode(tmp_path / "real")  # resolved
    assert stat.S_IMODE(record.stat().st_mode) == stat.S_IMODE(lock.stat().st_mode) == 0o600
    folder.hold()  # once held, again is nothing
    assert [p.name for p in folder.root.iterdir() if p.name.startswith(".")] == []


def test_a_gone_data_dirs_folder_is_removed_and_an_existing_ones_kept(
    tmp_path: Path, per_user: Path
) -> None:
    removed = gone(per_user, tmp_path / "gone")
    stopped = platform(per_user, tmp_path / "stopped")
    stopped.release()  # not running, but its data dir is there: it may start again

    assert sweep(per_user) == 1
    assert sorted(p.name for p in per_user.iterdir()) == [stopped.root.name]
    assert not removed.exists()


def test_a_live_platforms_folder_is_kept_even_when_its_data_dir_is_gone(
    tmp_path: Path, per_user: Path
) -> None:
    live = platform(per_user, tmp_path / "data")
    (tmp_path / "data").rmdir()
    assert sweep(per_user) == 0
    assert (live.root / "outcomes").is_dir()
    live.release()
    assert sweep(per_user) == 1
    assert not live.root.exists()


def test_the_starting_platforms_own_folder_is_never_judged(tmp_path: Path, per_user: Path) -> None:
    own = gone(per_user, tmp_path / "data")
    assert sweep(per_user, keep=own.name) == 0
    assert own.is_dir()


def test_links_other_users_folders_and_other_names_are_left_alone(
    tmp_path: Path, per_user: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o711)
    target = gone(elsewhere, tmp_path / "target")
    link = per_user / target.name  # its key: only being a link keeps it
    link.symlink_to(target, target_is_directory=True)
    named = recordless(per_user, "not-a-key", days_untouched=30)
    theirs = gone(per_user, tmp_path / "theirs")

    assert remove_gone_platforms(per_user, "0" * 16, uid=os.geteuid() + 1) == 0
    assert theirs.is_dir()  # owned by another uid than the sweeping platform's
    assert sweep(per_user) == 1
    assert not theirs.exists()
    assert link.is_symlink() and (target / RECORD_NAME).is_file()
    assert (named / "outcomes" / "record").is_file()


def test_a_folder_without_record_goes_only_after_a_week_untouched(per_user: Path) -> None:
    old = recordless(per_user, "a" * 16, days_untouched=8)
    recent = recordless(per_user, "b" * 16, days_untouched=6)
    busy = recordless(per_user, "c" * 16, days_untouched=8)
    (busy / "outcomes" / "another").write_bytes(b"{}")  # its outcomes changed just now
    now = time.time()

    assert sweep(per_user, now=now) == 1
    assert not old.exists() and recent.is_dir() and busy.is_dir()
    assert sweep(per_user, now=now + UNTOUCHED_FOR - 6 * DAY - 60) == 0
    assert sweep(per_user, now=now + UNTOUCHED_FOR + 1) == 2
    assert list(per_user.iterdir()) == []


def test_a_record_of_another_folder_counts_as_none(tmp_path: Path, per_user: Path) -> None:
    copied = per_user / ("d" * 16)
    copied.mkdir()
    (copied / RECORD_NAME).write_bytes(os.fsencode(tmp_path / "gone"))  # not this key's
    assert sweep(per_user) == 0
    assert sweep(per_user, now=time.time() + UNTOUCHED_FOR + 1) == 1


def test_what_a_removal_left_half_done_is_removed(tmp_path: Path, per_user: Path) -> None:
    left = per_user / f".gone-{'e' * 16}-0a0b0c0d"
    (left / "job" / "sealed").mkdir(parents=True)
    (left / "job" / "sealed").chmod(0o500)  # an operator's read-only folder
    assert sweep(per_user) == 0
    assert list(per_user.iterdir()) == []


def test_a_platform_takes_its_folder_again_after_a_removal(tmp_path: Path, per_user: Path) -> None:
    root = gone(per_user, tmp_path / "data")
    sweep(per_user)
    again = platform(per_user, tmp_path / "data")
    assert again.root == root and (root / RECORD_NAME).is_file()


@pytest.mark.parametrize("loose", [0o777, 0o731])
def test_a_per_user_folder_others_may_write_is_refused(per_user: Path, loose: int) -> None:
    per_user.chmod(loose)
    folder = PlatformFolder(per_user / ("f" * 16), per_user.parent / "data", FOLDER_MODE)
    with pytest.raises(Invalid, match=f"{per_user} above the work dir is writable by other"):
        folder.hold()
    assert list(per_user.iterdir()) == []


def test_the_container_per_user_folder_of_another_user_is_refused(
    per_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_user.chmod(0o700)
    folder = PlatformFolder(per_user / ("f" * 16), per_user.parent / "data", FOLDER_MODE)
    prepare_work_root(folder.root, folder)
    assert stat.S_IMODE(folder.root.stat().st_mode) == FOLDER_MODE
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)  # it made the folder first
    with pytest.raises(Invalid, match=rf"{per_user} above the work dir belongs to uid \d+, not"):
        prepare_work_root(folder.root, folder)


def test_a_chosen_container_work_dir_is_judged_as_before(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # a test suite's temporary folders, say
    prepare_work_root(shared / "work", None)
    assert (shared / "work").is_dir()


class NoContainers:
    """An engine without a container: all that a container executor's startup asks of one."""

    async def list(self, labels: Mapping[str, str]) -> list[dict[str, object]]:
        return []


async def test_the_container_executor_holds_its_folder_while_it_lives(
    tmp_path: Path, per_user: Path
) -> None:
    removed = await asyncio.to_thread(gone, per_user, tmp_path / "gone")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    folder = PlatformFolder(per_user / platform_key(data_dir), data_dir, FOLDER_MODE)
    executor = ContainerExecutor(
        NoContainers(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # no run, so no byte moves
        ContainerSettings(),
        folder.root,
        platform=folder,
    )
    await executor.running()  # its startup
    assert not removed.exists()
    assert (folder.root / RECORD_NAME).read_bytes() == os.fsencode(data_dir.resolve())
    data_dir.rmdir()
    assert await asyncio.to_thread(sweep, per_user) == 0  # alive
    await executor.close()
    assert await asyncio.to_thread(sweep, per_user) == 1
