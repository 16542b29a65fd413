"""A native group leader started ahead of its run (`--standby`) runs the run it reads from its
stdin as a leader started for that run would, starts nothing from a run that is not whole or
after its platform died, and the executor hands every run after the first to one."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from aorta.executors import RunReason
from aorta.executors.local import process_group
from aorta.executors.local.executor import LocalExecutor
from aorta.executors.local.operator_user import DEFAULT_RUN_AS, resolve_operator_user
from aorta.executors.local.process_group import ExitStatus, OperatorProcess, recorded_exit
from aorta.executors.local.standby_leader import StandbyLeaders, run_message
from tests.integration.executors.conftest import Job, eventually, gone, python

SHOWS_ITS_RUN = (
    "sh",
    "-c",
    'pwd; echo "$WHO"; read line || echo "stdin empty"; ps -o pgid= -o sid= -p $$; exit 3',
)


def standby(leader: Path, *options: str, parent: int | None = None) -> subprocess.Popen[bytes]:
    where = str(os.getpid() if parent is None else parent)
    return subprocess.Popen(
        [str(leader), where, "--standby", *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def message(folder: Path, command: tuple[str, ...] = SHOWS_ITS_RUN) -> bytes:
    env = {"WHO": "the run", "PATH": os.defpath}
    written = run_message(command, cwd=folder, env=env, status_file=folder / "leader.status")
    assert written is not None
    return written


def test_a_standby_leader_runs_the_run_it_reads(tmp_path: Path, native_leader_build: Path) -> None:
    tmp_path.chmod(0o777)  # the operators' user writes the status file here when this is root
    account = pwd.getpwnam(DEFAULT_RUN_AS)
    as_user = ("--as", f"{account.pw_uid}:{account.pw_gid}") if os.geteuid() == 0 else ()
    leader = standby(native_leader_build, *as_user)

    output, _ = leader.communicate(message(tmp_path))

    folder, who, stdin, groups = output.decode().splitlines()
    assert (folder, who, stdin) == (str(tmp_path), "the run", "stdin empty")
    assert groups.split() == [str(leader.pid), str(leader.pid)]  # its own session and group
    assert leader.returncode == 3
    assert recorded_exit(tmp_path / "leader.status") == ExitStatus(code=3)
    if as_user:
        assert os.stat(tmp_path / "leader.status").st_uid == account.pw_uid


@pytest.mark.parametrize(
    "cut",
    [
        "nothing",
        "the last byte",
        "the length",
        "more than the length",
        "the separator",
        "the command",
    ],
)
def test_a_run_that_is_not_whole_starts_nothing(
    tmp_path: Path, native_leader_build: Path, cut: str
) -> None:
    ran = tmp_path / "ran"
    whole = message(tmp_path, ("touch", str(ran)))
    _, _, body = whole.partition(b"\n")
    separator = body.index(b"\0\0") + 1  # the empty field after the environment
    written = {
        "nothing": b"",
        "the last byte": whole[:-1],
        "the length": body,
        "more than the length": whole + b"x\0",
        "the separator": b"%d\n" % (len(body) - 1) + body[:separator] + body[separator + 1 :],
        "the command": b"%d\n" % (separator + 1) + body[: separator + 1],
    }[cut]
    leader = standby(native_leader_build)

    leader.communicate(written)

    assert leader.returncode == 2
    assert not ran.exists()
    assert recorded_exit(tmp_path / "leader.status") is None


def test_a_standby_leader_whose_platform_died_starts_nothing(
    tmp_path: Path, native_leader_build: Path
) -> None:
    ran = tmp_path / "ran"
    # Its parent is this process, not pid 1: as when the platform died and it was adopted.
    leader = standby(native_leader_build, parent=1)

    leader.communicate(message(tmp_path, ("touch", str(ran))))

    assert leader.returncode == 1
    assert not ran.exists()


def test_a_standby_leader_ends_with_its_platform(tmp_path: Path, native_leader_build: Path) -> None:
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([{str(native_leader_build)!r}, str(__import__('os').getpid()),"
        " '--standby'], stdin=subprocess.PIPE, start_new_session=True)\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    platform = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert platform.stdout is not None and platform.stdout.readline() == b"started\n"
        (leader,) = psutil.Process(platform.pid).children()
        platform.send_signal(signal.SIGKILL)
        platform.wait()
        _, alive = psutil.wait_procs([leader], timeout=30)
    finally:
        if platform.poll() is None:
            platform.kill()
            platform.wait()
        assert platform.stdout is not None
        platform.stdout.close()
    assert alive == []


def test_the_native_leader_refuses_a_malformed_standby_command_line(
    native_leader_build: Path,
) -> None:
    for arguments in (["1", "--standby", "--", "true"], ["1", "--standby", "--as", "7"]):
        ran = subprocess.run(
            [str(native_leader_build), *arguments], capture_output=True, text=True, check=False
        )
        assert ran.returncode == 2
        assert ran.stderr.startswith("usage: group_leader PARENT_PID STATUS_FILE")


@pytest.fixture
def spawns(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The commands started by a leader of their own (`OperatorProcess.spawn`)."""
    started: list[tuple[str, ...]] = []
    real = OperatorProcess.spawn

    async def spawn(command: tuple[str, ...], **kwargs: Any) -> OperatorProcess:
        started.append(command)
        return await real(command, **kwargs)

    monkeypatch.setattr(OperatorProcess, "spawn", spawn)
    return started


async def test_runs_after_the_first_are_handed_to_a_standby_leader(
    executor: LocalExecutor, job: Job, spawns: list[tuple[str, ...]]
) -> None:
    """The same user, session, environment and stdin as under a leader of its own."""
    if process_group.native_leader() is None:
        pytest.skip("the native group leader is not built")
    shows = python(
        "import os, sys",
        "own = os.getsid(0) == os.getpgid(0) != os.getpid()",
        "print(os.getuid(), os.getgid(), os.getgroups(), own)",
        "print(sorted(os.environ), sys.stdin.read() == '', os.getcwd() == os.environ['HOME'])",
    )
    lines = []
    for operator in ("first", "second", "third"):
        run = job.run(shows, operator=operator)
        await executor.start(run)
        assert (await executor.wait(run.run_id)).succeeded
        lines.append([line async for line in executor.log_lines(run.run_id)])

    assert spawns == [shows]
    assert lines[0] == lines[1] == lines[2]
    assert lines[0][0].endswith("True") and lines[0][1].endswith("True True")


async def test_closing_the_executor_stops_the_waiting_leader(
    executor: LocalExecutor, job: Job
) -> None:
    if process_group.native_leader() is None:
        pytest.skip("the native group leader is not built")
    run = job.run(("true",))
    await executor.start(run)
    assert (await executor.wait(run.run_id)).succeeded
    waiting = [
        child.pid
        for child in psutil.Process().children()
        if "--standby" in child.cmdline() and not gone(child.pid)
    ]
    assert len(waiting) == 1

    await executor.close()

    assert gone(waiting[0])


@pytest.fixture
def shared_folder(tmp_path: Path) -> Path:
    """A folder the operators' user may write its status file in."""
    tmp_path.chmod(0o777)
    return tmp_path


async def test_a_run_too_large_for_the_pipe_starts_its_own_leader(
    shared_folder: Path, native_leader_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path = shared_folder
    monkeypatch.setattr(process_group, "NATIVE_LEADER", native_leader_build)
    user = resolve_operator_user("", euid=os.geteuid(), egid=os.getegid())
    leaders = StandbyLeaders()
    try:
        leaders.refill(user)
        assert await leaders.settled()
        (standby_pid,) = [c.pid for c in psutil.Process().children() if "--standby" in c.cmdline()]
        # More than a pipe holds (64 KiB), less than an exec takes (128 KiB a variable).
        env = {"PATH": os.defpath, **{f"LARGE{n}": "x" * (32 << 10) for n in range(4)}}
        where = {"cwd": tmp_path, "env": env, "status_file": tmp_path / "leader.status"}

        assert leaders.hand(("true",), user=user, **where) is None
        assert not await leaders.settled()  # the standby was used up, nothing waits
        await eventually(lambda: gone(standby_pid))
        process = await OperatorProcess.spawn(("true",), user=user, **where)
        assert await process.wait() == 0
        process.close()
    finally:
        await leaders.close()


async def test_a_leader_waiting_for_another_user_is_not_handed_the_run(
    tmp_path: Path, native_leader_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_group, "NATIVE_LEADER", native_leader_build)
    user = resolve_operator_user("", euid=os.geteuid(), egid=os.getegid())
    other = type(user)("someone", user.uid + 1, user.gid, switch=True)
    leaders = StandbyLeaders()
    try:
        leaders.refill(user)
        assert await leaders.settled()
        where = {"cwd": tmp_path, "env": {}, "status_file": tmp_path / "leader.status"}

        assert leaders.hand(("true",), user=other, **where) is None
        assert not await leaders.settled()
    finally:
        await leaders.close()


async def test_a_stopped_run_handed_to_a_standby_leader_is_cancelled(
    executor: LocalExecutor, job: Job, spawns: list[tuple[str, ...]]
) -> None:
    if process_group.native_leader() is None:
        pytest.skip("the native group leader is not built")
    first = job.run(("true",), operator="first")
    await executor.start(first)
    assert (await executor.wait(first.run_id)).succeeded
    second = job.run(python("import time", "print('up')", "time.sleep(60)"), operator="second")
    await executor.start(second)

    async def started() -> bool:
        return [line async for line in executor.log_lines(second.run_id)] == ["up"]

    await eventually(started)

    await executor.cancel(second.run_id, grace=5)

    assert (await executor.wait(second.run_id)).reason is RunReason.CANCELLED
    assert len(spawns) == 1
