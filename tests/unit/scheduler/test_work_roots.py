"""Which work root the scheduler gives its local executor: one per data dir by default, so two
platforms of one user never share plans, outcome records or workspaces; the setting wins."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from aorta.blobs import open_blob_store
from aorta.executors.local import work_folders
from aorta.executors.local.executor import LocalExecutor
from aorta.runtime.service import ServiceContext
from aorta.settings import Settings
from aorta_services.scheduler.app import make_executor
from aorta_services.scheduler.settings import NodeFacts, SchedulerSettings

NODE = NodeFacts(gpus=0, cpus=2, memory_mb=4096)


@contextlib.asynccontextmanager
async def running_platform(
    data_dir: Path, environ: Mapping[str, str] = {}
) -> AsyncIterator[LocalExecutor]:
    """The executor the scheduler of a platform on `data_dir` would run, past its startup (it
    prepares its work root as it is made, and settles it before it answers anything)."""
    settings = Settings.from_env({"AORTA_DATA_DIR": str(data_dir)})
    scheduler = SchedulerSettings.from_env(environ, data_dir=data_dir, node=NODE)
    blobs = await open_blob_store(settings)
    context = ServiceContext(settings, None, None, blobs)  # type: ignore[arg-type]
    try:
        executor = await make_executor(scheduler, context, {"AORTA_EXECUTOR": "local"})
        assert isinstance(executor, LocalExecutor)
        try:
            await executor.running()
            yield executor
        finally:
            await executor.close()
    finally:
        await blobs.close()


async def start_platform(data_dir: Path, environ: Mapping[str, str] = {}) -> None:
    """Starts (and stops) a platform on `data_dir`."""
    async with running_platform(data_dir, environ):
        pass


def folders(per_user: Path) -> list[str]:
    return sorted(path.name for path in per_user.iterdir())


@pytest.fixture
def per_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The per-user folder of the default work roots, in a `/var/tmp` of the test's own."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(work_folders, "_SHARED_TEMP", temp)
    return temp / f"aorta-runs-{os.geteuid()}"


async def test_platforms_on_two_data_dirs_work_in_two_roots(tmp_path: Path, per_user: Path) -> None:
    await start_platform(tmp_path / "one")
    await start_platform(tmp_path / "other")
    await start_platform(tmp_path / "one")  # restarted: its own root again
    roots = sorted(await asyncio.to_thread(lambda: list(per_user.iterdir())))
    assert len(roots) == 2
    assert [root.name for root in roots] == sorted(
        work_folders.platform_key(tmp_path / name) for name in ("one", "other")
    )


async def test_the_work_dir_setting_wins(tmp_path: Path, per_user: Path) -> None:
    chosen = tmp_path / "chosen"
    await start_platform(tmp_path / "data", {"AORTA_SCHEDULER_WORK_DIR": str(chosen)})
    assert await asyncio.to_thread(chosen.is_dir)
    assert not await asyncio.to_thread(per_user.exists)


async def test_a_starting_platform_removes_the_folders_of_platforms_gone(
    tmp_path: Path, per_user: Path
) -> None:
    await start_platform(tmp_path / "gone")
    await start_platform(tmp_path / "stopped")
    async with running_platform(tmp_path / "live"):
        await asyncio.to_thread(shutil.rmtree, tmp_path / "gone")
        await asyncio.to_thread(shutil.rmtree, tmp_path / "live")  # yet the platform runs
        await start_platform(tmp_path / "new")
    kept = [work_folders.platform_key(tmp_path / name) for name in ("stopped", "live", "new")]
    assert await asyncio.to_thread(folders, per_user) == sorted(kept)


async def test_a_chosen_work_dir_leaves_the_default_layout_alone(
    tmp_path: Path, per_user: Path
) -> None:
    await start_platform(tmp_path / "gone")
    await asyncio.to_thread(shutil.rmtree, tmp_path / "gone")
    chosen = {"AORTA_SCHEDULER_WORK_DIR": str(tmp_path / "chosen")}
    await start_platform(tmp_path / "data", chosen)
    gone = work_folders.platform_key(tmp_path / "gone")
    assert await asyncio.to_thread(folders, per_user) == [gone]
