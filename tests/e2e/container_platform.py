"""`aorta up --executor container` on a private Podman engine, for the end-to-end tests.

`podman_engine` starts a Podman API service over storage of its own (aorta.testing.podman), so a
test sees only the images it built and the containers its platform made; `aorta_up_on` starts
`aorta up` pointed at it (`AORTA_CONTAINER_HOST`), keeping finished containers
(`AORTA_CONTAINER_KEEP`) so that a test can count them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from aorta.testing.embedded import wait_serving
from aorta.testing.podman import PodmanEngine

AORTA = Path(sys.executable).parent / "aorta"
PLATFORM_ENV = {
    "AORTA_SCHEDULER_GPUS": "0",
    "AORTA_SCHEDULER_GRACE": "1",
    "AORTA_CONTAINER_KEEP": "true",
    "AORTA_CONTAINER_PULL_POLICY": "Never",
    "AORTA_LOG_FORMAT": "json",
    "AORTA_LOG_LEVEL": "info",
}


@pytest.fixture
def podman_engine() -> Iterator[PodmanEngine]:
    """A private Podman API service, stopped (its containers and storage removed) at the end."""
    with PodmanEngine() as engine:
        yield engine


def up_command(data_dir: Path, port: int) -> list[str]:
    """`aorta up` with containers on `data_dir` and `port`, on loopback; its web console on any
    free port and no metrics endpoint, so platforms started side by side never compete for
    the default ports."""
    return [
        str(AORTA), "up", "--data-dir", str(data_dir), "--grpc-port", str(port),
        "--listen", "127.0.0.1", "--executor", "container", "--web-port", "0",
        "--metrics-port", "0",
    ]  # fmt: skip


def start_up(
    engine: PodmanEngine,
    data_dir: Path,
    port: int,
    log: Path,
    environ: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Starts `aorta up --executor container` on `engine` and returns once it serves; its
    output is appended to `log`."""
    env = {**os.environ, **PLATFORM_ENV, "AORTA_CONTAINER_HOST": engine.url, **(environ or {})}
    with log.open("ab") as output:
        process = subprocess.Popen(
            up_command(data_dir, port),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_serving(port, process)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after 60 s; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def containers(engine: PodmanEngine, **labels: str) -> list[dict[str, object]]:
    """Every container of `engine` (running or not) carrying all of `labels`."""
    filters = [f"--filter=label={name}={value}" for name, value in labels.items()]
    listed = engine.cli.run("ps", "--all", "--format", "json", *filters)
    found: list[dict[str, object]] = json.loads(listed or "[]")
    return found
