"""A platform killed with SIGKILL leaves no operator running: crash recovery may then run the
operator again without two copies ever running at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.integration.executors.conftest import OPERATORS, gone


def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {within} s")
        time.sleep(0.02)


def test_a_killed_platform_takes_its_operators_down(tmp_path: Path, leader: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir(mode=0o777)
    pids.chmod(0o777)  # the operator, perhaps another user, writes its pids here
    output = (tmp_path / "platform.log").open("wb")
    platform = subprocess.Popen(
        [sys.executable, str(OPERATORS / "platform_stand_in.py"), str(tmp_path), str(pids), leader],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: (pids / "child").exists() and (pids / "grandchild").exists(),
            30,
            f"the operator did not start: {(tmp_path / 'platform.log').read_text()}",
        )
        child = int((pids / "child").read_text())
        grandchild = int((pids / "grandchild").read_text())
        leader = os.getpgid(child)
        assert leader not in {child, platform.pid}
        assert psutil.Process(leader).ppid() == platform.pid

        os.kill(platform.pid, signal.SIGKILL)
        platform.wait()

        wait_for(
            lambda: gone(leader) and gone(child) and gone(grandchild),
            30,
            "operator processes outlived the platform",
        )
    finally:
        if platform.poll() is None:
            platform.kill()
            platform.wait()
        output.close()
