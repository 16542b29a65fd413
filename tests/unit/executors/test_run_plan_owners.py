"""A plan still locked after its owner died (a child between `vfork` and `exec` holds a copy of
the dead platform's lock) is waited for, not taken for another platform's live run; a plan
whose owner lives, or of another host, is live at once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aorta.executors.local import run_plans
from aorta.executors.local.run_plans import RunPlan, RunPlans, this_process

JOB = "0f" * 16
PLAN = RunPlan("run-1", JOB, "op", 0, (), "logs/op")
# Holds an exclusive flock on the file named by argv[1] until its stdin says to let go.
HOLDER = """\
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


class Holder:
    """Another process holding the plan's lock, as the dead owner's child does."""

    def __init__(self, path: Path) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        assert self._process.stdout.readline() == "held\n"

    def let_go(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait()
        self._process.stdout.close()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def written(folder: Path, owner: str) -> Path:
    """PLAN's file as a platform named `owner` wrote it."""
    plans = RunPlans(folder)
    held = plans.hold(PLAN)
    document = json.loads(held.path.read_text())
    assert document["owner"] == this_process()
    held.path.write_text(json.dumps({**document, "owner": owner}))
    held.release(remove=False)
    return held.path


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The scan's waits, counted (each a real, short sleep)."""
    waits: list[float] = []
    sleep = time.sleep

    def counted(seconds: float) -> None:
        waits.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(run_plans.time, "sleep", counted)
    yield waits


def test_a_plan_held_by_a_copy_of_a_dead_owners_lock_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = written(tmp_path, f"{socket.gethostname()}/{dead_pid()}/1")
    holder = Holder(path)
    sleep = time.sleep

    def let_go_then_sleep(seconds: float) -> None:
        holder.let_go()  # the child execs, and its copy of the lock goes
        sleep(seconds)

    monkeypatch.setattr(run_plans.time, "sleep", let_go_then_sleep)
    orphans, live = RunPlans(tmp_path).scan()

    assert [held.plan for held in orphans] == [PLAN] and live == []
    orphans[0].release(remove=True)


def test_a_copy_never_let_go_leaves_the_plan_live_after_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.setattr(run_plans, "HANDOVER_WAIT", 0.05)
    path = written(tmp_path, f"{socket.gethostname()}/{dead_pid()}/1")
    holder = Holder(path)
    try:
        assert RunPlans(tmp_path).scan() == ([], [PLAN])
        assert sleeps
    finally:
        holder.let_go()


@pytest.mark.parametrize(
    "owner",
    ["live", "other host", "no owner"],
)
def test_a_plan_of_a_live_owner_or_another_host_is_live_at_once(
    tmp_path: Path, sleeps: list[float], owner: str
) -> None:
    named = {
        "live": this_process(),
        "other host": f"not-{socket.gethostname()}/{dead_pid()}/1",
        "no owner": "",
    }[owner]
    path = written(tmp_path, named)
    holder = Holder(path)
    try:
        assert RunPlans(tmp_path).scan() == ([], [PLAN])
        assert sleeps == []
    finally:
        holder.let_go()


def test_a_pid_that_runs_another_process_now_is_a_gone_owner(tmp_path: Path) -> None:
    """The pid alone is not the owner: its start time must match too."""
    pid, _, started = this_process().rsplit("/", 2)
    path = written(tmp_path, f"{socket.gethostname()}/{pid}/{int(started) + 1}")
    holder = Holder(path)
    holder.let_go()
    orphans, live = RunPlans(tmp_path).scan()
    assert [held.plan for held in orphans] == [PLAN] and live == []
    orphans[0].release(remove=True)
