"""The platform split into processes as it is deployed, and killed with SIGKILL mid-job.

1. A real nats-server and each service in its own process (`aorta serve NAME`), sharing one
   SQLite file and one blob folder: pipelines, payloads, two scheduler replicas and two
   gateways. A three-operator job whose middle operator is held until the test releases it runs
   through both gateways; the scheduler replica that leads (the lease names its process) is
   killed with SIGKILL while the middle operator runs. Its operator process dies with it; the
   other replica takes the lease, runs the middle operator again, and the job ends HEALTHY with
   every output, each operator having completed exactly once (each creates its marker file
   exclusively).
2. `aorta up` killed with SIGKILL mid-job and started again on the same data dir: the job
   completes the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aorta.api import (
    jobs_pb2,
)
from aorta.payload_layout import operator_output_prefix
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta.testing.embedded import PROBE_OPTIONS
from aorta.testing.nats import async_nats_server
from aorta.testing.ports import free_ports, restart_safe_port
from tests.e2e.api_client import client

AORTA = Path(sys.executable).parent / "aorta"
SCHEDULER_ENV = {
    # Host processes even where a container engine answers: these operators die with their
    # platform (tests/e2e/test_containers_processes.py runs the same in containers).
    "AORTA_EXECUTOR": "local",
    "AORTA_SCHEDULER_GPUS": "0",
    "AORTA_SCHEDULER_LEASE_TTL": "1.5",
    "AORTA_SCHEDULER_RESYNC": "0.5",
    "AORTA_SCHEDULER_GRACE": "1",
}
OPERATOR = """\
import os, pathlib, time

name = os.environ["NVIDIA_CLARA_STAGENAME"]
marks = pathlib.Path(os.environ["MARKS"])
# Renamed into place: the test reads the file the moment it appears.
(marks / f"{name}.pid.tmp").write_text(str(os.getpid()))
(marks / f"{name}.pid.tmp").rename(marks / f"{name}.pid")
# Held until the test makes the release file, after its kill: where the kill lands is decided.
release = os.environ["RELEASE"]
while release and not pathlib.Path(release).exists():
    time.sleep(0.05)
for entry in clara_payload.output_entries:
    folder = pathlib.Path(entry.path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(name)
# Created exclusively: an operator that completed twice fails here, and so does the job.
(marks / f"{name}.done").open("x").close()
print(f"{name}: done", flush=True)
"""
CHAIN = ("first", "slow", "last")
RUNNER = "python, -u, -m, aorta.driver.app"


def released(marks: Path) -> Path:
    """The file whose existence lets the held (`slow`) operator go on."""
    return marks / "release"


def release(marks: Path) -> None:
    """Lets the held operator of the job marking `marks` go on, and any run of it after."""
    released(marks).touch()


def definition(script: Path, marks: Path) -> str:
    lines = ["api-version: 0.4.0", "name: crash-test", "operators:"]
    previous = None
    for name in CHAIN:
        source = f"{{from: {previous}, path: /input}}" if previous else "{path: /input}"
        gate = released(marks) if name == "slow" else ""
        lines += [
            f"- name: {name}",
            f"  container: {{image: python, command: [{RUNNER}, {script}]}}",
            f"  input: [{source}]",
            "  output: [{path: /output}]",
            "  requests: {cpu: 1, memory: 256}",
            f'  variables: {{MARKS: "{marks}", RELEASE: "{gate}"}}',
        ]
        previous = name
    return "\n".join(lines) + "\n"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its parent) counts as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


async def outlives(pid: int, within: float = 30.0) -> bool:
    """Whether `pid` is still alive after `within` seconds: the kernel ends an operator soon
    after its platform dies, a loaded machine a few seconds later."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return False
        await asyncio.sleep(0.05)
    return alive(pid)


async def reaped(process: subprocess.Popen[bytes], within: float = 120.0) -> None:
    """Waits, without blocking the loop, until a process sent SIGKILL has been reaped. A
    process dies only once every thread has left the kernel, which on a machine busy with
    writes to disk can take tens of seconds; the limit is there only to name the failure."""
    deadline = time.monotonic() + within
    while process.poll() is None:
        assert time.monotonic() < deadline, f"process {process.pid} still runs {within} s on"
        await asyncio.sleep(0.05)


def described(pid: int) -> str:
    """What `/proc` says of `pid` (a failure message: which process, in which state)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError as error:
        return f"process {pid}: {error}"
    return f"process {pid}: {stat[: stat.find(')') + 3]!r}, {command.decode(errors='replace')}"


@dataclass
class Processes:
    """Platform processes started by a test; each is killed at the end if still running."""

    folder: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def launch(
        self, label: str, command: list[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        log = self.log(label).open("ab")
        process = subprocess.Popen(
            command,
            env={**os.environ, "AORTA_LOG_FORMAT": "json", **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.started.append(process)
        return process

    def log(self, label: str) -> Path:
        """Where the process launched as `label` writes its output."""
        return self.folder / f"{label}.log"

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    made = Processes(tmp_path)
    yield made
    made.stop_all()


async def serving(
    port: int,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    within: float = 120.0,
) -> None:
    """Waits until a gateway serves on `port`. Given the `process` that should serve there,
    fails as soon as it exits; the failure quotes the end of its `log`. The limit only names a
    failure: three platforms starting at once at load 24 took 30 to 60 s each to serve."""
    deadline = time.monotonic() + within
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=PROBE_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            with contextlib.suppress(grpc.RpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if process is not None and process.poll() is not None:
                pytest.fail(
                    f"exited {process.returncode} before serving on port {port}\n" + log_tail(log)
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no gateway serving on port {port} after {within} s\n" + log_tail(log))
            await asyncio.sleep(0.2)


def log_tail(log: Path | None, lines: int = 40) -> str:
    """The last `lines` lines of `log`, for a failure message."""
    if log is None:
        return ""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(its log: {error})"


async def logged(log: Path, text: str, within: float = 120.0) -> None:
    """Waits until the process writing `log` logs `text` (its services log when they serve:
    a gateway may serve before the services behind it do)."""
    deadline = time.monotonic() + within
    while text not in await asyncio.to_thread(log.read_text):
        assert time.monotonic() < deadline, f"never logged: {text}"
        await asyncio.sleep(0.1)


async def wait_for_file(path: Path, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(path.exists):
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.05)


async def leader_pid(settings: Settings) -> int:
    """The process holding the scheduler lease (its holder is `<host>-<pid>-<random>`)."""
    store = await open_state_store(settings)
    try:
        holder = str((await store.collection("leases").get("scheduler"))["holder"])
    finally:
        await store.close()
    return int(holder.rsplit("-", 2)[1])


def check_outcome(status: jobs_pb2.JobsStatusResponse, marks: Path, data: Path) -> None:
    assert status.status == jobs_pb2.JOB_STATUS_HEALTHY, list(status.messages)
    assert [d.status for d in status.operator_details] == [
        jobs_pb2.JOB_OPERATOR_STATUS_COMPLETED
    ] * 3
    assert sorted(path.name for path in marks.glob("*.done")) == sorted(
        f"{name}.done" for name in CHAIN
    )
    for name in CHAIN:
        prefix = operator_output_prefix(status.payload_id.value, name, None)
        assert (data / "blobs" / prefix / f"{name}.txt").read_text() == name


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_killing_the_leading_scheduler_process_changes_no_outcome(
    processes: Processes, tmp_path: Path
) -> None:
    data, marks = tmp_path / "data", tmp_path / "marks"
    marks.mkdir()
    marks.chmod(0o777)  # the operators' user, not the platform's, writes here
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    async with async_nats_server(tmp_path / "nats") as nats:
        common = {"AORTA_DATA_DIR": str(data), "AORTA_NATS_URL": nats.url, **SCHEDULER_ENV}
        settings = Settings.from_env(common)
        for name in ("pipelines", "payloads"):
            processes.launch(name, [str(AORTA), "serve", name], common)
        schedulers = {
            process.pid: process
            for process in (
                processes.launch(f"scheduler-{n}", [str(AORTA), "serve", "scheduler"], common)
                for n in (1, 2)
            )
        }
        ports = list(free_ports(2))
        for n, port in enumerate(ports):
            env = {**common, "AORTA_GRPC_ADDRESS": f"127.0.0.1:{port}"}
            processes.launch(f"gateway-{n}", [str(AORTA), "serve", "gateway"], env)
        for port in ports:
            await serving(port)
        for label in ("pipelines", "payloads", "scheduler-1", "scheduler-2"):
            await logged(processes.folder / f"{label}.log", f"{label.split('-')[0]}.serving")
        async with client(ports[0]) as first, client(ports[1]) as second:
            job_id, _ = await first.submit(definition(script, marks))
            await wait_for_file(marks / "slow.pid")
            operator_pid = int((marks / "slow.pid").read_text())
            leader = await leader_pid(settings)
            assert leader in schedulers
            schedulers[leader].send_signal(signal.SIGKILL)
            await reaped(schedulers[leader])
            assert not await outlives(operator_pid), (
                f"the operator outlived its scheduler: {described(operator_pid)}"
            )
            release(marks)
            status = await second.stopped(job_id)
            check_outcome(status, marks, data)
            assert await leader_pid(settings) != leader
            survivor = next(p for pid, p in schedulers.items() if pid != leader)
            assert survivor.poll() is None


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_killed_aorta_up_finishes_the_job_after_a_restart(
    processes: Processes, tmp_path: Path
) -> None:
    data, marks = tmp_path / "platform", tmp_path / "marks"
    marks.mkdir()
    marks.chmod(0o777)  # the operators' user, not the platform's, writes here
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    port = restart_safe_port()
    command = [str(AORTA), "up", "--data-dir", str(data), "--grpc-port", str(port)]
    # No fixed console or metrics port: a restart, or another suite, must find them free.
    command += ["--listen", "127.0.0.1", "--web-port", "0", "--metrics-port", "0"]
    platform = processes.launch("up-1", command, SCHEDULER_ENV)
    await serving(port, platform, processes.log("up-1"))
    async with client(port) as api:
        job_id, _ = await api.submit(definition(script, marks))
    await wait_for_file(marks / "slow.pid")
    operator_pid = int((marks / "slow.pid").read_text())
    platform.send_signal(signal.SIGKILL)
    await reaped(platform)
    assert not await outlives(operator_pid), (
        f"the operator outlived the platform: {described(operator_pid)}"
    )
    release(marks)
    again = processes.launch("up-2", command, SCHEDULER_ENV)
    await serving(port, again, processes.log("up-2"))
    async with client(port) as api:
        status = await api.stopped(job_id)
    check_outcome(status, marks, data)
