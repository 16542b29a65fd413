"""The group leader writes how its operator ended before it exits, and when the platform dies
it records an operator that exited already as exited, one still running as killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from aorta.executors.local.process_group import LEADER_SCRIPT, ExitStatus, recorded_exit


def lead(status: Path, *command: str) -> int:
    """Runs `command` under a group leader whose platform is this process; its exit status."""
    leader = [sys.executable, "-I", "-S", str(LEADER_SCRIPT), str(os.getpid()), str(status)]
    return subprocess.run([*leader, "--", *command], check=False).returncode


def test_an_exit_is_written_before_the_leader_exits(tmp_path: Path) -> None:
    status = tmp_path / "leader.status"

    assert lead(status, "sh", "-c", "exit 0") == 0
    assert status.read_text() == "exit 0\n"
    assert recorded_exit(status) == ExitStatus(code=0)

    assert lead(status, "sh", "-c", "exit 3") == 3
    assert recorded_exit(status) == ExitStatus(code=3)


def test_an_operator_killed_by_a_signal_is_recorded_so(tmp_path: Path) -> None:
    status = tmp_path / "leader.status"

    assert lead(status, "sh", "-c", "kill -9 $$") == 137
    assert recorded_exit(status) == ExitStatus(code=137, signal=9)


def test_nothing_recorded_reads_as_no_exit(tmp_path: Path) -> None:
    status = tmp_path / "leader.status"
    assert recorded_exit(status) is None
    status.write_text("error command 'x' not found on PATH\n")
    assert recorded_exit(status) is None


def platform_with_leader(status: Path, script: str) -> subprocess.Popen[bytes]:
    """A stand-in platform: starts a group leader of `sh -c script`, then waits to be killed."""
    code = (
        "import os, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-I', '-S', {str(LEADER_SCRIPT)!r}, str(os.getpid()),"
        f" {str(status)!r}, '--', 'sh', '-c', {script!r}], start_new_session=True)\n"
        "time.sleep(120)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def until(condition: Callable[[], bool], platform: subprocess.Popen[bytes]) -> None:
    while not condition():
        assert platform.poll() is None, "the stand-in platform ended"
        time.sleep(0.01)


def test_an_operator_running_when_the_platform_dies_is_recorded_killed(tmp_path: Path) -> None:
    status, started = tmp_path / "leader.status", tmp_path / "started"
    platform = platform_with_leader(status, f"touch {started}; exec sleep 60")
    try:
        until(started.exists, platform)
        leaders = psutil.Process(platform.pid).children()
        platform.send_signal(signal.SIGKILL)
        platform.wait()
        psutil.wait_procs(leaders, timeout=10)
    finally:
        if platform.poll() is None:
            platform.kill()
            platform.wait()

    assert recorded_exit(status) == ExitStatus(code=137, signal=9)


def test_an_operator_that_exited_0_as_the_platform_died_is_recorded_exited(
    tmp_path: Path,
) -> None:
    status, started, go = tmp_path / "leader.status", tmp_path / "started", tmp_path / "go"
    platform = platform_with_leader(
        status, f"touch {started}; while [ ! -e {go} ]; do sleep 0.01; done; exit 0"
    )
    try:
        until(started.exists, platform)
        (leader,) = psutil.Process(platform.pid).children()
        (operator,) = leader.children()
        # The leader is held still while its operator exits 0 and the platform dies: it wakes
        # with both the exit and the parent-death signal pending.
        leader.suspend()
        go.touch()
        until(lambda: operator.status() == psutil.STATUS_ZOMBIE, platform)
        platform.send_signal(signal.SIGKILL)
        platform.wait()
        leader.resume()
        psutil.wait_procs([leader], timeout=10)
    finally:
        if platform.poll() is None:
            platform.kill()
            platform.wait()

    assert recorded_exit(status) == ExitStatus(code=0)
