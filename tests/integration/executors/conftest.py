"""Fixtures for the local executor's tests: a blob folder, an executor with short periods, and
a job that builds runs with the real blob layout (`aorta.payload_layout`)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from aorta import ids, payload_layout
from aorta.blobs.local import LocalBlobStore
from aorta.executors import OperatorRun, Resources, VolumeBinding
from aorta.executors.local import process_group
from aorta.executors.local.executor import LocalExecutor

OPERATORS = Path(__file__).parent / "operators"
"""Operator scripts the tests run through `python -u -m aorta.driver.app`."""


@pytest.fixture(scope="session")
def native_leader_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The native group leader built from this tree's source, as `make setup` builds it."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build the native group leader")
    folder = tmp_path_factory.mktemp("native-leader")
    folder.chmod(0o755)
    binary = folder / "group_leader"
    source = process_group.NATIVE_LEADER.with_suffix(".c")
    subprocess.run([gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, source], check=True)
    return binary


@pytest.fixture(params=["native", "python"])
def leader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Runs the test under each group leader: the native one built from this tree, then the
    Python one (the binary missing); returns what `NATIVE_LEADER` is for the test."""
    if request.param == "native":
        binary: Path = request.getfixturevalue("native_leader_build")
    else:
        binary = tmp_path / "no-native-leader"
    monkeypatch.setattr(process_group, "NATIVE_LEADER", binary)
    return binary


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[LocalBlobStore]:
    store = await LocalBlobStore.open(tmp_path / "blobs")
    yield store
    await store.close()


@pytest.fixture
async def executor(blobs: LocalBlobStore, tmp_path: Path) -> AsyncIterator[LocalExecutor]:
    local = LocalExecutor(
        blobs, tmp_path / "work", log_flush_interval=0.1, stop_grace=1.0, close_grace=1.0
    )
    yield local
    await local.close()


@dataclass
class Job:
    """One job's ids; `run` builds an operator run as the scheduler would."""

    job_id: str
    payload_id: str

    def run(
        self,
        command: tuple[str, ...],
        *,
        operator: str = "op",
        attempt: int = 1,
        inputs: tuple[VolumeBinding, ...] | None = None,
        outputs: tuple[VolumeBinding, ...] | None = None,
        timeout: float = 60.0,
        environment: Mapping[str, str] | None = None,
        gpu_devices: tuple[int, ...] = (),
    ) -> OperatorRun:
        payload = self.payload_id
        return OperatorRun(
            run_id=f"{self.job_id}-{operator}-{attempt}",
            job_id=self.job_id,
            job_name="test-job",
            payload_id=payload,
            operator=operator,
            attempt=attempt,
            image="aorta/test",
            tag="0.1.0",
            command=command,
            inputs=inputs
            if inputs is not None
            else (VolumeBinding("payload", "/input", payload_layout.input_prefix(payload)),),
            outputs=outputs
            if outputs is not None
            else (
                VolumeBinding(
                    operator,
                    "/output",
                    payload_layout.operator_output_prefix(payload, operator, None),
                ),
            ),
            resources=Resources(gpu=len(gpu_devices), gpu_devices=gpu_devices),
            timeout=timeout,
            log_key=payload_layout.operator_log_key(self.job_id, operator),
            environment=dict(environment or {}),
        )

    def output_prefix(self, operator: str = "op", name: str | None = None) -> str:
        return payload_layout.operator_output_prefix(self.payload_id, operator, name)


@pytest.fixture
def job() -> Job:
    return Job(ids.new_id(), ids.new_id())


def python(*code_lines: str) -> tuple[str, ...]:
    """A command running Python code with the platform's interpreter, found on PATH."""
    return ("python", "-u", "-c", "\n".join(code_lines))


async def _put(blobs: LocalBlobStore, key: str, data: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await blobs.put(key, chunks())


async def _read(blobs: LocalBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.get(key)])


async def _keys(blobs: LocalBlobStore, prefix: str) -> list[str]:
    return [info.key[len(prefix) :] async for info in blobs.list(prefix)]


@dataclass
class Store:
    """Small blob helpers bound to the test's store."""

    blobs: LocalBlobStore

    async def put(self, key: str, data: bytes) -> None:
        await _put(self.blobs, key, data)

    async def read(self, key: str) -> bytes:
        return await _read(self.blobs, key)

    async def keys(self, prefix: str) -> list[str]:
        return await _keys(self.blobs, prefix)


@pytest.fixture
def store(blobs: LocalBlobStore) -> Store:
    return Store(blobs)


async def eventually(check: Callable[[], object], *, within: float = 30.0) -> None:
    """Polls `check` (sync or async) until it returns something true; fails after `within` s,
    generous because a loaded 2-core machine stalls processes and the event loop for seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


def gone(pid: int) -> bool:
    """True once `pid` is no process, or a zombie waiting for a reaper (it runs no code)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def interpreter_dir() -> Path:
    return Path(sys.executable).parent
