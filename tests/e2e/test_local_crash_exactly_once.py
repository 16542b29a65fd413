"""`aorta up --executor local` killed with SIGKILL at 30 random moments across three-operator
jobs, and started again on the same data dir each time: every job ends HEALTHY, no operator
that exited 0 runs again, and nothing is left in the work folders.

Each operator appends `start <job> <operator>` to a side file outside its workspace when it
starts and `exit <job> <operator>` just before it exits 0, so every run of it shows. Each round
starts the platform, submits one more job and kills the platform at a moment drawn from a
seeded RNG (printed, and taken from `AORTA_CRASH_SEED` when set): a few milliseconds after the
k-th next operator exit line (before or after the process is gone, in the window between an
operator's exit and the record of its completion), right after the k-th next operator start,
or a while after the platform serves.

Most of the time goes into starting `aorta up` again, so the 30 kills are shared by three
platforms crashed side by side (each with its own data dir, work root and side file): one
starts while another waits for its bus, its lease or its operators. Their modules are compiled
by one process before the first start, into the session's bytecode cache (`tests/conftest.py`;
only read when earlier tests filled it): three first starts compiling everything at once took
48 to 57 s to serve on a loaded machine.

An operator killed between its exit line and its actual exit did not exit 0, and runs again:
after each kill the test reads, as the platform would, how the group leader of every run left
in the work root saw it end (`leader.status`), and only such a run (`signal N`) may start again
after its exit line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from aorta.api import common_pb2, jobs_pb2, pipelines_pb2
from aorta.payload_layout import operator_output_prefix
from aorta.testing.ports import restart_safe_port
from tests.e2e.api_client import Client, client
from tests.e2e.test_jobs_processes import AORTA, Processes, serving

KILLS = 30
SEQUENCES = 3
"""Platforms crashed side by side, `KILLS // SEQUENCES` times each."""
CHAIN = ("first", "second", "third")
ENV = {
    "AORTA_EXECUTOR": "local",
    "AORTA_SCHEDULER_GPUS": "0",
    "AORTA_SCHEDULER_GRACE": "1",
    # The killed leader's lease expires while the next platform starts, so it leads at once;
    # not sooner, or a leader the loaded machine holds up a second steps down between crashes.
    "AORTA_SCHEDULER_LEASE_TTL": "3",
    "AORTA_SCHEDULER_RESYNC": "0.5",
}
OPERATOR = """\
set -e
echo "start $NVIDIA_CLARA_JOBID $NVIDIA_CLARA_STAGENAME" >> "$SIDE"
cat ../volumes/input/* > /dev/null 2>&1 || [ "$NVIDIA_CLARA_STAGENAME" = first ]
echo "$NVIDIA_CLARA_STAGENAME" > "../volumes/output/$NVIDIA_CLARA_STAGENAME.txt"
echo "exit $NVIDIA_CLARA_JOBID $NVIDIA_CLARA_STAGENAME" >> "$SIDE"
"""


def definition(script: Path, side: Path) -> str:
    lines = ["api-version: 0.4.0", "name: exactly-once", "operators:"]
    previous = None
    for name in CHAIN:
        source = f"{{from: {previous}, path: /input}}" if previous else "{path: /input}"
        lines += [
            f"- name: {name}",
            f"  container: {{image: sh, command: [sh, {script}]}}",
            f"  input: [{source}]",
            "  output: [{path: /output}]",
            "  requests: {cpu: 1, memory: 64}",
            f'  variables: {{SIDE: "{side}"}}',
        ]
        previous = name
    return "\n".join(lines) + "\n"


@pytest.fixture
def platforms(tmp_path: Path) -> Iterator[Processes]:
    """The `aorta up` processes of the test; any still running is stopped at the end."""
    made = Processes(tmp_path)
    yield made
    made.stop_all()


@pytest.fixture
def work_parent() -> Iterator[Path]:
    """Where the platforms' work dirs and the operators' side files go: a folder the operators'
    user can reach (the test's own tmp path is closed to it, or may be closed again by another
    pytest session starting meanwhile)."""
    parent = Path(tempfile.mkdtemp(prefix="aorta-crash-", dir="/var/tmp"))
    parent.chmod(0o711)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@dataclass
class Sequence:
    """One platform, crashed again and again: its folders, its port, and what its kills saw."""

    name: str
    folder: Path
    work_root: Path
    shared: Path
    """The operators' script and the side file they write."""
    rng: random.Random
    port: int = field(default_factory=restart_safe_port)
    """Below the ephemeral range: between a kill and the next start, the kernel would hand a
    port of that range to the other platforms' sockets."""
    jobs: list[str] = field(default_factory=list)
    moments: list[str] = field(default_factory=list)
    kills: list[tuple[int, set[str]]] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.folder / "platform"

    @property
    def side(self) -> Path:
        return self.shared / "side"

    def prepare(self) -> str:
        """Makes the folders and the operators' script; the pipeline definition to run."""
        shared = self.shared
        shared.mkdir(parents=True)
        shared.chmod(0o777)  # the operators' user, not the platform's, writes here
        script = shared / "operator.sh"
        script.write_text(OPERATOR)
        script.chmod(0o644)
        return definition(script, self.side)

    def command(self) -> list[str]:
        command = [str(AORTA), "up", "--data-dir", str(self.data), "--grpc-port", str(self.port)]
        return [*command, "--listen", "127.0.0.1", "--web-port", "0", "--metrics-port", "0"]

    def env(self) -> dict[str, str]:
        return {**ENV, "AORTA_SCHEDULER_WORK_DIR": str(self.work_root)}


async def create_pipeline(api: Client, text: str) -> common_pb2.Identifier:
    file = pipelines_pb2.PipelineDefinitionFile(path="p.yaml", content=text)
    created = await api.pipelines.Create(
        iter([pipelines_pb2.PipelinesCreateRequest(definition=file)])
    )
    assert created.header.code == 0, created.header
    return created.pipeline_id


async def start_job(api: Client, pipeline: common_pb2.Identifier) -> str:
    """Creates and starts a job of `pipeline` (its payload left empty); its id."""
    job = await api.jobs.Create(jobs_pb2.JobsCreateRequest(pipeline_id=pipeline, name="once"))
    assert job.header.code == 0, job.header
    started = await api.jobs.Start(jobs_pb2.JobsStartRequest(job_id=job.job_id))
    assert started.header.code == 0, started.header
    return str(job.job_id.value)


def side_lines(side: Path) -> list[str]:
    return side.read_text().splitlines() if side.exists() else []


def size_of(side: Path) -> int:
    return side.stat().st_size if side.exists() else 0


def count_lines(side: Path, kind: str) -> int:
    return sum(line.startswith(kind) for line in side_lines(side))


async def next_lines(side: Path, kind: str, seen: int, count: int, within: float = 60.0) -> None:
    """Returns as soon as the side file holds `count` lines of `kind` beyond the `seen` ones.
    The file is read again only once it grew, so the tight loop costs the machine little."""
    deadline = time.monotonic() + within
    size = -1
    while True:
        grown = size_of(side)  # a stat: quick enough to call on the loop
        if grown != size:
            size = grown
            if count_lines(side, kind) >= seen + count:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"no {count} more {kind} lines: {side_lines(side)[-10:]}")
        await asyncio.sleep(0.002)


def group_leaders(platform: int) -> list[psutil.Process]:
    """The group leaders of the operator runs of the platform process `platform`."""
    found = []
    for child in psutil.Process(platform).children():
        with contextlib.suppress(psutil.Error):
            if any("group_leader" in part for part in child.cmdline()):
                found.append(child)
    return found


def killed_runs(work_root: Path) -> set[str]:
    """`<job> <operator>` of each run left in the work root whose group leader says it was
    killed (the platform died before the operator exited)."""
    killed = set()
    for status in work_root.glob("*/*/leader.status"):
        if status.read_text().startswith("signal"):
            job, operator = status.parent.parent.name, status.parent.name.rsplit("-", 1)[0]
            killed.add(f"{job} {operator}")
    return killed


def reruns_after_exit(lines: list[str], kills: list[tuple[int, set[str]]]) -> list[str]:
    """The operators that started again after they had exited 0: after their exit line, unless
    a kill in between found them killed before they exited."""
    exited: set[str] = set()
    again = []
    pending = list(kills)
    for position, line in enumerate(lines):
        while pending and pending[0][0] <= position:
            exited -= pending.pop(0)[1]
        kind, _, who = line.partition(" ")
        if kind == "exit":
            exited.add(who)
        elif kind == "start" and who in exited:
            again.append(who)
    return again


def leftovers(root: Path) -> list[str]:
    """What the work root holds besides the outcome records and an empty plans folder."""
    if not root.exists():
        return []
    found = [name for name in os.listdir(root) if name not in {"outcomes", "plans", "services"}]
    plans = root / "plans"
    return found + ([f"plans/{name}" for name in os.listdir(plans)] if plans.exists() else [])


def compile_platform(env: dict[str, str]) -> None:
    """Imports what `aorta up` imports to serve, with the platforms' `env`, so that the session's
    bytecode cache holds the platform's modules before the first start."""
    services = "from aorta_services.launch import registry; registry.starters(registry.START_ORDER)"
    code = f"import aorta_services.launch.main, aorta_services.launch.embedded; {services}"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, check=True, timeout=300)


async def crash_repeatedly(sequence: Sequence, platforms: Processes, kills: int) -> None:
    """Starts the platform, submits a job and kills the platform at a random moment, `kills`
    times; what each kill left is in `sequence`."""
    pipeline: common_pb2.Identifier | None = None
    text = sequence.prepare()
    side, rng = sequence.side, sequence.rng
    for round_ in range(kills):
        kind = rng.choice(["exit", "exit", "start", "delay"])
        # Counted before the platform starts: the new job's operators may run before the
        # call below returns, and each k-th next line must still come.
        seen = await asyncio.to_thread(count_lines, side, kind)
        label = f"up-{sequence.name}-{round_}"
        platform = platforms.launch(label, sequence.command(), sequence.env())
        await serving(sequence.port, platform, platforms.log(label))
        async with client(sequence.port) as api:
            if pipeline is None:
                pipeline = await create_pipeline(api, text)
            sequence.jobs.append(await start_job(api, pipeline))
        if kind == "delay":
            pause = rng.uniform(0.0, 1.0)
            sequence.moments.append(f"{pause:.2f} s after serving")
            await asyncio.sleep(pause)
        else:
            count = rng.randint(1, 3)
            sequence.moments.append(f"{count} {kind}")
            await next_lines(side, kind, seen, count)
            if kind == "exit":
                await asyncio.sleep(rng.uniform(0.0, 0.02))
        leaders = group_leaders(platform.pid)
        platform.send_signal(signal.SIGKILL)
        await asyncio.to_thread(platform.wait, 10)
        # The group leaders die with the platform, having written how their operators ended:
        # what the next platform reads.
        await asyncio.to_thread(psutil.wait_procs, leaders, 10)
        sequence.kills.append((len(side_lines(side)), killed_runs(sequence.work_root)))


async def finish_and_check(sequence: Sequence, platforms: Processes, seed: int) -> None:
    """Starts the platform once more and checks every job's end, the side file and the work
    root."""
    label = f"up-{sequence.name}-final"
    platform = platforms.launch(label, sequence.command(), sequence.env())
    await serving(sequence.port, platform, platforms.log(label))
    async with client(sequence.port) as api:
        for job_id in sequence.jobs:
            status = await api.stopped(job_id, within=120)
            assert status.status == jobs_pb2.JOB_STATUS_HEALTHY, (job_id, list(status.messages))
            details = [detail.status for detail in status.operator_details]
            assert details == [jobs_pb2.JOB_OPERATOR_STATUS_COMPLETED] * 3
            for name in CHAIN:
                output = operator_output_prefix(status.payload_id.value, name, None)
                stored = sequence.data / "blobs" / output / f"{name}.txt"
                assert stored.read_text() == f"{name}\n"
    lines = side_lines(sequence.side)
    assert reruns_after_exit(lines, sequence.kills) == [], f"seed {seed}"
    exits = {line for line in lines if line.startswith("exit")}
    assert len(exits) == 3 * len(sequence.jobs), f"seed {seed}"
    await cleared(sequence.work_root, seed)


async def cleared(work_root: Path, seed: int, within: float = 60.0) -> None:
    """Waits until the work root holds nothing but outcome records. A run's plan is released
    only after its outcome is delivered, so the last operator's may outlive its job's end by a
    moment; a leftover that stays fails the test."""
    deadline = time.monotonic() + within
    while left := await asyncio.to_thread(leftovers, work_root):
        assert time.monotonic() < deadline, f"seed {seed}: left in the work root: {left}"
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_killing_aorta_up_at_random_moments_runs_no_finished_operator_twice(
    platforms: Processes, tmp_path: Path, work_parent: Path
) -> None:
    seed = int(os.environ.get("AORTA_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"crash moments seed: {seed} (set AORTA_CRASH_SEED={seed} to replay)")
    sequences = [
        Sequence(
            str(index),
            tmp_path / f"sequence-{index}",
            work_parent / f"runs-{index}",
            work_parent / f"shared-{index}",
            random.Random(seed * SEQUENCES + index),
        )
        for index in range(SEQUENCES)
    ]
    await asyncio.to_thread(compile_platform, sequences[0].env())
    async with asyncio.TaskGroup() as crashing:
        for sequence in sequences:
            crashing.create_task(crash_repeatedly(sequence, platforms, KILLS // SEQUENCES))
    for sequence in sequences:
        print(f"moments of platform {sequence.name}:", "; ".join(sequence.moments))
    assert sum(len(sequence.kills) for sequence in sequences) == KILLS

    async with asyncio.TaskGroup() as checking:
        for sequence in sequences:
            checking.create_task(finish_and_check(sequence, platforms, seed))
