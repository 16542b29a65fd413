"""`aorta up` with no `--executor` (auto): containers when an engine answers at
`AORTA_CONTAINER_HOST`, host processes when none does, and its start-up lines say which and why;
`--executor container` with no engine refuses to start, naming where it looked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aorta.testing.embedded import aorta_up
from aorta.testing.podman import PodmanEngine
from aorta.testing.ports import free_port

AORTA = Path(sys.executable).parent / "aorta"


def started_lines(tmp_path: Path, host: str) -> str:
    """The output of an `aorta up` started on `host` and stopped once it served."""
    data_dir = tmp_path / "platform"
    environ = {"AORTA_CONTAINER_HOST": host, "AORTA_EXECUTOR": "", "AORTA_LOG_LEVEL": "info"}
    with aorta_up(data_dir, free_port(), environ=environ, args=["--listen", "127.0.0.1"]):
        pass
    return (tmp_path / "aorta-up.log").read_text()


def test_auto_runs_containers_when_the_engine_answers(
    podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    output = started_lines(tmp_path, podman_engine.url)
    assert f"  Operators run in containers (Podman 4.3.1 at {podman_engine.url}).\n" in output
    scheduler = [line for line in output.splitlines() if '"scheduler.executor"' in line]
    assert len(scheduler) == 1 and '"executor": "container"' in scheduler[0], scheduler


def test_auto_runs_host_processes_when_no_engine_answers(tmp_path: Path) -> None:
    nowhere = f"unix://{tmp_path / 'no-engine.sock'}"
    output = started_lines(tmp_path, nowhere)
    line = f"  Operators run as host processes: no container engine answered at {nowhere}.\n"
    assert line in output


def test_containers_asked_for_without_an_engine_refuse_to_start(tmp_path: Path) -> None:
    nowhere = f"unix://{tmp_path / 'no-engine.sock'}"
    command = [str(AORTA), "up", "--data-dir", str(tmp_path / "platform"), "--executor"]
    refused = subprocess.run(
        [*command, "container", "--grpc-port", str(free_port())],
        env={**os.environ, "AORTA_CONTAINER_HOST": nowhere},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert f"no container engine answered at {nowhere}" in refused.stderr
