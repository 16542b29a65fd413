"""The group leader writes how its operator ended before it exits, and when the platform dies
it records an operator that exited already as exited, one still running as killed; the native
leader and the Python one alike."""

from __future__ import annotations

import errno
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from aorta.executors.local.group_leader import describe_start_error
from aorta.executors.local.operator_user import DEFAULT_RUN_AS
from aorta.executors.local.process_group import LEADER_SCRIPT, ExitStatus, recorded_exit


@pytest.fixture(params=["native", "python"])
def leader(request: pytest.FixtureRequest) -> list[str]:
    """The group leader's program, before its PARENT_PID argument."""
    if request.param == "native":
        return [str(request.getfixturevalue("native_leader_build"))]
    return [sys.executable, "-I", "-S", str(LEADER_SCRIPT)]


def lead(leader: list[str], status: Path, *command: str, parent: int | None = None) -> int:
    """Runs `command` under a group leader whose platform is this process (or `parent`); its
    exit status."""
    where = [str(os.getpid() if parent is None else parent), str(status)]
    return subprocess.run([*leader, *where, "--", *command], check=False).returncode


def test_an_exit_is_written_before_the_leader_exits(tmp_path: Path, leader: list[str]) -> None:
    status = tmp_path / "leader.status"

    assert lead(leader, status, "sh", "-c", "exit 0") == 0
    assert status.read_text() == "exit 0\n"
    assert recorded_exit(status) == ExitStatus(code=0)

    assert lead(leader, status, "sh", "-c", "exit 3") == 3
    assert recorded_exit(status) == ExitStatus(code=3)


def test_an_operator_killed_by_a_signal_is_recorded_so(tmp_path: Path, leader: list[str]) -> None:
    status = tmp_path / "leader.status"

    assert lead(leader, status, "sh", "-c", "kill -9 $$") == 137
    assert recorded_exit(status) == ExitStatus(code=137, signal=9)


def test_the_operator_starts_with_no_signal_blocked(tmp_path: Path, leader: list[str]) -> None:
    # The leader holds the platform's death signal back while it starts the operator; the
    # operator must not inherit that, or the executor's SIGTERM would never reach it.
    # grep itself reads its mask: a shell would unblock every signal as it starts.
    unblocked = ("grep", "-q", "^SigBlk:[[:space:]]*0*$", "/proc/self/status")
    assert lead(leader, tmp_path / "leader.status", *unblocked) == 0


def test_nothing_recorded_reads_as_no_exit(tmp_path: Path) -> None:
    status = tmp_path / "leader.status"
    assert recorded_exit(status) is None
    status.write_text("error command 'x' not found on PATH\n")
    assert recorded_exit(status) is None


def platform_with_leader(leader: list[str], status: Path, script: str) -> subprocess.Popen[bytes]:
    """A stand-in platform: starts a group leader of `sh -c script`, then waits to be killed."""
    code = (
        "import os, subprocess, sys, time\n"
        f"subprocess.Popen([*{leader!r}, str(os.getpid()),"
        f" {str(status)!r}, '--', 'sh', '-c', {script!r}], start_new_session=True)\n"
        "time.sleep(120)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def until(condition: Callable[[], bool], platform: subprocess.Popen[bytes]) -> None:
    while not condition():
        assert platform.poll() is None, "the stand-in platform ended"
        time.sleep(0.01)


def test_an_operator_running_when_the_platform_dies_is_recorded_killed(
    tmp_path: Path, leader: list[str]
) -> None:
    status, started = tmp_path / "leader.status", tmp_path / "started"
    platform = platform_with_leader(leader, status, f"touch {started}; exec sleep 60")
    try:
        until(started.exists, platform)
        leaders = psutil.Process(platform.pid).children()
        platform.send_signal(signal.SIGKILL)
        platform.wait()
        psutil.wait_procs(leaders, timeout=30)
    finally:
        if platform.poll() is None:
            platform.kill()
            platform.wait()

    assert recorded_exit(status) == ExitStatus(code=137, signal=9)


def test_an_operator_that_exited_0_as_the_platform_died_is_recorded_exited(
    tmp_path: Path, leader: list[str]
) -> None:
    status, started, go = tmp_path / "leader.status", tmp_path / "started", tmp_path / "go"
    platform = platform_with_leader(
        leader, status, f"touch {started}; while [ ! -e {go} ]; do sleep 0.01; done; exit 0"
    )
    try:
        until(started.exists, platform)
        (group_leader,) = psutil.Process(platform.pid).children()
        (operator,) = group_leader.children()
        # The leader is held still while its operator exits 0 and the platform dies: it wakes
        # with both the exit and the parent-death signal pending.
        group_leader.suspend()
        go.touch()
        until(lambda: operator.status() == psutil.STATUS_ZOMBIE, platform)
        platform.send_signal(signal.SIGKILL)
        platform.wait()
        group_leader.resume()
        psutil.wait_procs([group_leader], timeout=30)
    finally:
        if platform.poll() is None:
            platform.kill()
            platform.wait()

    assert recorded_exit(status) == ExitStatus(code=0)


def test_a_leader_whose_platform_died_before_it_armed_the_signal_starts_nothing(
    tmp_path: Path, leader: list[str]
) -> None:
    status, ran = tmp_path / "leader.status", tmp_path / "ran"

    # Its parent is this process, not pid 1: as when the platform died and it was adopted.
    assert lead(leader, status, "touch", str(ran), parent=1) == 1
    assert not ran.exists()
    assert recorded_exit(status) is None


def start_errors(folder: Path) -> dict[str, int]:
    """Commands that cannot start, with the error each gives."""
    not_executable, no_shebang = folder / "not-executable", folder / "no-shebang"
    not_executable.write_text("#!/bin/sh\n")
    no_shebang.write_text("true\n")
    no_shebang.chmod(0o755)
    return {
        "no-such-command": errno.ENOENT,
        str(folder / "missing"): errno.ENOENT,
        str(not_executable): errno.EACCES,
        str(no_shebang): errno.ENOEXEC,
        "it's\tmissing\\": errno.ENOENT,
    }


def test_a_command_that_cannot_start_is_described_in_the_status_file(
    tmp_path: Path, leader: list[str]
) -> None:
    status = tmp_path / "leader.status"
    for command, error in start_errors(tmp_path).items():
        assert lead(leader, status, command) == 127
        expected = describe_start_error(command, OSError(error, os.strerror(error)))
        assert status.read_text() == f"error {expected}\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing ids needs root")
def test_the_native_leader_becomes_the_operators_user_with_no_other_group(
    tmp_path: Path, native_leader_build: Path
) -> None:
    account = pwd.getpwnam(DEFAULT_RUN_AS)
    status, ids = tmp_path / "leader.status", tmp_path / "ids"
    leader = [str(native_leader_build), str(os.getpid()), str(status)]
    as_user = ["--as", f"{account.pw_uid}:{account.pw_gid}"]
    script = f"id -u > {ids}; id -g >> {ids}; id -G >> {ids}"

    assert (
        subprocess.run([*leader, *as_user, "--", "sh", "-c", script], check=False).returncode == 0
    )
    uid, gid = str(account.pw_uid), str(account.pw_gid)
    assert ids.read_text().split() == [uid, gid, gid]
    assert os.stat(status).st_uid == account.pw_uid  # written as that user, never as root


@pytest.mark.parametrize(
    "arguments",
    [["1", "status"], ["x", "s", "--", "true"], ["1", "s", "--as", "7", "--", "true"]],
)
def test_the_native_leader_refuses_a_malformed_command_line(
    native_leader_build: Path, arguments: list[str]
) -> None:
    ran = subprocess.run(
        [str(native_leader_build), *arguments], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 2
    assert ran.stderr.startswith("usage: group_leader PARENT_PID STATUS_FILE")


@pytest.mark.skipif(os.geteuid() != 0, reason="starting it as another user needs root")
def test_the_native_leader_starts_nothing_when_it_cannot_change_ids(
    tmp_path: Path, native_leader_build: Path
) -> None:
    account = pwd.getpwnam(DEFAULT_RUN_AS)
    status, ran = tmp_path / "leader.status", tmp_path / "ran"
    leader = [str(native_leader_build), str(os.getpid()), str(status), "--as", "0:0"]

    # Started unprivileged, it cannot become root: it says so and runs nothing.
    ended = subprocess.run(
        [*leader, "--", "touch", str(ran)],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ended.returncode == 127
    assert "could not become uid 0 gid 0" in ended.stderr
    assert not ran.exists()
    assert recorded_exit(status) is None
