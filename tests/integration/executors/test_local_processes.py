"""The local executor runs commands as process groups: how each kind of ending is reported, and
that nothing of a run outlives it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import stat
import time
from pathlib import Path

import psutil
import pytest

from aorta.blobs.local import LocalBlobStore
from aorta.errors import NotFound, Unavailable
from aorta.executors import KnownRuns, RunReason
from aorta.executors.local.executor import LocalExecutor
from aorta.executors.local.run import LocalRun
from tests.integration.executors.conftest import Job, Store, eventually, gone, python

pytestmark = pytest.mark.usefixtures("leader")  # every test under each group leader

# Starts a grandchild, records both pids in $PIDS, then waits (sh dies on SIGTERM).
WITH_GRANDCHILD = (
    "sh",
    "-c",
    'sleep 60 & echo $! > "$PIDS/grandchild.part"; echo $$ > "$PIDS/child.part"; '
    'mv "$PIDS/grandchild.part" "$PIDS/grandchild"; mv "$PIDS/child.part" "$PIDS/child"; wait',
)


async def started_pids(folder: Path) -> tuple[int, int]:
    await eventually(lambda: (folder / "grandchild").exists() and (folder / "child").exists())
    return int((folder / "child").read_text()), int((folder / "grandchild").read_text())


async def test_stdout_and_stderr_are_logged_while_it_runs_and_stored_after(
    executor: LocalExecutor,
    job: Job,
    store: Store,
    tmp_path: Path,
) -> None:
    flag = tmp_path / "go-on"
    run = job.run(
        python(
            "import pathlib, sys, time",
            "print('first')",
            "print('to stderr', file=sys.stderr)",
            f"while not pathlib.Path({str(flag)!r}).exists(): time.sleep(0.02)",
            "print('second')",
        )
    )
    await executor.start(run)

    async def lines() -> list[str]:
        return [line async for line in executor.log_lines(run.run_id)]

    async def stored() -> str:
        try:
            return (await store.read(run.log_key)).decode()
        except NotFound:
            return ""

    async def logged_so_far() -> bool:
        return await lines() == ["first", "to stderr"]

    async def stored_so_far() -> bool:
        return await stored() == "first\nto stderr\n"

    await eventually(logged_so_far)
    await eventually(stored_so_far)
    assert run.run_id in (await executor.running()).live
    flag.touch()
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED
    # Ended, and still listed from its outcome record: a leader that lost its lease before
    # recording the end, and took it again, waits for it instead of running it twice.
    assert await executor.running() == KnownRuns(ended=(run.run_id,))
    assert await stored() == "first\nto stderr\nsecond\n"
    # The workspace is gone: the lines now come from the blob store.
    assert await lines() == ["first", "to stderr", "second"]


async def test_a_non_zero_exit_fails_with_the_code_and_the_last_lines(
    executor: LocalExecutor, job: Job, store: Store
) -> None:
    run = job.run(python("import sys", "for i in range(1, 31): print(f'line {i}')", "sys.exit(3)"))

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert (outcome.reason, outcome.exit_code) == (RunReason.FAILED, 3)
    summary, _, tail = outcome.message.partition("\n")
    assert summary == "operator op failed: exit code 3"
    assert tail.splitlines()[1:] == [f"line {i}" for i in range(11, 31)]
    log = (await store.read(run.log_key)).decode().splitlines()
    assert log[-1] == "[aorta] operator op failed: exit code 3"


async def test_a_signal_is_reported_as_a_container_runtime_would(
    executor: LocalExecutor, job: Job
) -> None:
    run = job.run(("sh", "-c", "kill -SEGV $$"))

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert (outcome.reason, outcome.exit_code) == (RunReason.FAILED, 128 + signal.SIGSEGV)
    assert "killed by SIGSEGV (exit code 139)" in outcome.message


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("no-such-command-here", "x"), "command 'no-such-command-here' not found on PATH"),
        (("./missing/tool",), "command './missing/tool' not found"),
        ((), "operator op has no container.command; the local executor runs commands on the host"),
    ],
)
async def test_a_command_that_cannot_start_is_a_start_failure(
    executor: LocalExecutor, job: Job, store: Store, command: tuple[str, ...], expected: str
) -> None:
    run = job.run(command)

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert (outcome.reason, outcome.exit_code) == (RunReason.START_FAILED, None)
    assert outcome.message == expected
    assert f"[aorta] {expected}" in (await store.read(run.log_key)).decode()


async def test_a_file_without_execute_permission_is_a_start_failure(
    executor: LocalExecutor, job: Job, tmp_path: Path
) -> None:
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    run = job.run((str(script),))

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.START_FAILED
    assert (
        outcome.message
        == f"command {str(script)!r} cannot be run: permission denied (is it executable?)"
    )


async def test_a_run_past_its_timeout_is_terminated_then_killed(
    executor: LocalExecutor, job: Job, store: Store
) -> None:
    run = job.run(
        python(
            "import signal, time",
            "signal.signal(signal.SIGTERM, lambda *_: print('ignoring SIGTERM'))",
            "print('ready')",
            "time.sleep(60)",
        ),
        # Long enough for the interpreter to start and take SIGTERM over on a loaded machine
        # (with 0.5 s a slow start could die of SIGTERM itself, exit 143, before its handler).
        timeout=5.0,
    )
    began = time.monotonic()

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    # 5 s of run time and 1 s of grace (the fixture's stop_grace), then SIGKILL, long before
    # the operator's own 60 s.
    assert time.monotonic() - began < 40
    assert (outcome.reason, outcome.exit_code) == (RunReason.TIMEOUT, 137)
    assert outcome.message == (
        "operator op ran past its timeout of 5 s; killed by SIGKILL (exit code 137)"
    )
    log = (await store.read(run.log_key)).decode()
    assert "ready\n[aorta] operator op ran past its timeout of 5 s: stopping it" in log
    assert "ignoring SIGTERM" in log


async def test_cancel_stops_the_whole_process_group(
    executor: LocalExecutor, job: Job, store: Store, tmp_path: Path
) -> None:
    run = job.run(WITH_GRANDCHILD, environment={"PIDS": str(tmp_path)})
    await store.put(job.output_prefix() + "earlier.txt", b"earlier")
    await executor.start(run)
    child, grandchild = await started_pids(tmp_path)

    await executor.cancel(run.run_id, grace=5)
    outcome = await executor.wait(run.run_id)

    assert (outcome.reason, outcome.exit_code) == (RunReason.CANCELLED, 128 + signal.SIGTERM)
    assert outcome.message == "operator op was cancelled"
    await eventually(lambda: gone(child) and gone(grandchild))
    assert await executor.running() == KnownRuns()
    assert await store.keys(job.output_prefix()) == ["earlier.txt"]
    await executor.cancel(run.run_id, grace=5)  # an ended run: nothing happens
    assert (await executor.wait(run.run_id)).reason is RunReason.CANCELLED


async def test_what_the_operator_leaves_running_ends_with_it(
    executor: LocalExecutor, job: Job, tmp_path: Path
) -> None:
    # The main process exits 0 at once; its background child must not outlive the run.
    run = job.run(
        ("sh", "-c", 'sleep 60 & echo $! > "$PIDS/left"; exit 0'),
        environment={"PIDS": str(tmp_path)},
    )

    await executor.start(run)

    assert (await executor.wait(run.run_id)).succeeded
    await eventually(lambda: gone(int((tmp_path / "left").read_text())))


async def test_a_second_start_of_a_known_run_is_a_no_op(
    executor: LocalExecutor, job: Job, tmp_path: Path
) -> None:
    counter = tmp_path / "starts"
    run = job.run(("sh", "-c", f"echo started >> {counter}; sleep 0.3"))

    await asyncio.gather(executor.start(run), executor.start(run))
    await executor.start(run)
    assert (await executor.wait(run.run_id)).succeeded
    await executor.start(run)  # ended runs are known too

    assert (await executor.wait(run.run_id)).succeeded
    assert counter.read_text() == "started\n"


async def test_another_run_id_for_a_busy_workspace_fails_to_start(
    executor: LocalExecutor, job: Job
) -> None:
    busy = job.run(("sleep", "30"))
    twin = dataclasses.replace(job.run(("true",)), run_id="another-id")
    await executor.start(busy)

    await executor.start(twin)
    outcome = await executor.wait("another-id")

    assert outcome.reason is RunReason.START_FAILED
    assert f"is in use by run {busy.run_id}" in outcome.message
    await executor.cancel(busy.run_id, grace=1)


async def test_a_start_looks_at_the_last_run_of_its_workspace_only(
    executor: LocalExecutor, job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended = [job.run(("true",), operator=f"op{n}") for n in range(3)]
    for run in ended:
        await executor.start(run)
        assert (await executor.wait(run.run_id)).succeeded
    looked: list[str] = []
    alive = LocalRun.alive.fget
    assert alive is not None

    def looking(run: LocalRun) -> bool:
        looked.append(run.spec.run_id)
        return alive(run)

    monkeypatch.setattr(LocalRun, "alive", property(looking))
    busy = job.run(("sleep", "30"), operator="busy")
    await executor.start(busy)
    await executor.start(dataclasses.replace(busy, run_id="twin"))  # the same workspace

    outcome = await executor.wait("twin")
    assert f"is in use by run {busy.run_id}" in outcome.message
    # Ended runs stay known (for wait and logs); a start does not walk them all.
    assert not set(looked) & {run.run_id for run in ended}
    await executor.cancel(busy.run_id, grace=1)


async def test_unknown_runs_are_lost_and_have_no_log(executor: LocalExecutor) -> None:
    outcome = await executor.wait("no-such-run")

    assert outcome.reason is RunReason.LOST
    assert "run the operator again as a new attempt" in outcome.message
    with pytest.raises(NotFound):
        async for _ in executor.log_lines("no-such-run"):
            pass
    await executor.cancel("no-such-run", grace=1)


async def test_close_stops_the_runs_as_lost_and_refuses_new_ones(
    executor: LocalExecutor, job: Job, tmp_path: Path
) -> None:
    run = job.run(WITH_GRANDCHILD, environment={"PIDS": str(tmp_path)})
    await executor.start(run)
    child, grandchild = await started_pids(tmp_path)

    await executor.close()

    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.LOST
    assert "run it again as a new attempt" in outcome.message
    await eventually(lambda: gone(child) and gone(grandchild))
    with pytest.raises(Unavailable):
        await executor.start(job.run(("true",), attempt=2))


async def test_old_ended_runs_are_forgotten(
    blobs: LocalBlobStore, job: Job, tmp_path: Path
) -> None:
    executor = LocalExecutor(blobs, tmp_path / "work", finished_runs_kept=2)
    runs = [job.run(("true",), attempt=attempt) for attempt in range(1, 4)]
    try:
        for run in runs:
            await executor.start(run)
            assert (await executor.wait(run.run_id)).succeeded
    finally:
        await executor.close()

    # Forgotten in memory, the oldest is answered from its outcome record only.
    assert (await executor.wait(runs[0].run_id)).reason is RunReason.COMPLETED
    shutil.rmtree(tmp_path / "work" / "outcomes")
    assert (await executor.wait(runs[0].run_id)).reason is RunReason.LOST
    assert (await executor.wait(runs[2].run_id)).reason is RunReason.COMPLETED


def test_gone_tells_a_live_process_from_a_dead_one() -> None:
    """`gone` itself, so the checks above cannot pass vacuously."""
    process = psutil.Popen(["sleep", "30"])
    assert not gone(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert gone(process.pid)
