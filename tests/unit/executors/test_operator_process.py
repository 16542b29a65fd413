"""An operator's group leader is waited for by the event loop itself (a pidfd), with no thread
per run; without a pidfd a thread waits, and a start cancelled half-way leaves nothing behind."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aorta.executors.local import child_exit, process_group
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.local.process_group import OperatorProcess


@pytest.fixture(params=["native", "python"])
def leader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test under the native leader (when `make setup` built it) and the Python one."""
    if request.param == "native":
        if process_group.native_leader() is None:
            pytest.skip("the native group leader is not built")
    else:
        monkeypatch.setattr(process_group, "NATIVE_LEADER", tmp_path / "no-native-leader")


@pytest.fixture
def user() -> OperatorUser:
    """The platform's own user (the integration tests run operators as another)."""
    return OperatorUser("platform", os.geteuid(), os.getegid(), switch=False)


async def spawn(folder: Path, user: OperatorUser, *command: str) -> OperatorProcess:
    status = folder / "status"
    status.write_bytes(b"")
    return await OperatorProcess.spawn(
        command, cwd=folder, env={"PATH": os.defpath}, status_file=status, user=user
    )


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[asyncio.Future[int]]]:
    """The exits `child_exit.watch_exit` hands out, in order."""
    futures: list[asyncio.Future[int]] = []
    original = child_exit.watch_exit

    def recording(pid: int) -> asyncio.Future[int]:
        futures.append(original(pid))
        return futures[-1]

    monkeypatch.setattr(child_exit, "watch_exit", recording)
    yield futures


@pytest.mark.usefixtures("leader")
async def test_the_leader_runs_and_is_waited_for_with_no_thread(
    tmp_path: Path, user: OperatorUser
) -> None:
    threads = threading.active_count()
    process = await spawn(tmp_path, user, "sh", "-c", "echo started; exec sleep 60")
    assert await process.output.readline() == b"started\n"
    assert threading.active_count() == threads
    process.signal_group(signal.SIGTERM)
    assert await process.wait() == 128 + signal.SIGTERM
    assert await process.output.read() == b""
    status = await process.exit_status()
    assert (status.code, status.signal) == (128 + signal.SIGTERM, signal.SIGTERM)
    process.close()


@pytest.mark.usefixtures("leader")
async def test_without_a_pidfd_a_thread_waits_for_the_leader(
    tmp_path: Path, user: OperatorUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", refused)
    process = await spawn(tmp_path, user, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert await process.wait() == 3
    assert await process.output.read() == b"out\nerr\n"
    assert (await process.exit_status()).code == 3
    process.close()


@pytest.mark.usefixtures("leader")
async def test_a_wait_cancelled_leaves_the_exit_to_a_later_wait(
    tmp_path: Path, user: OperatorUser
) -> None:
    process = await spawn(tmp_path, user, "sh", "-c", "exec sleep 60")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(process.wait(), timeout=0.01)
    process.signal_group(signal.SIGKILL)
    assert await process.wait() == -signal.SIGKILL  # the leader itself was killed
    assert (await process.exit_status()).signal == signal.SIGKILL
    process.close()


@pytest.mark.usefixtures("leader")
async def test_a_start_cancelled_before_its_output_is_read_kills_and_reaps_the_leader(
    tmp_path: Path, user: OperatorUser, watched: list[asyncio.Future[int]]
) -> None:
    start = asyncio.create_task(spawn(tmp_path, user, "sh", "-c", "exec sleep 60"))
    await asyncio.sleep(0)  # the leader started; its output pipe is being connected
    assert len(watched) == 1
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    assert await watched[0] == -signal.SIGKILL
