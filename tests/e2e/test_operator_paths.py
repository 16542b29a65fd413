"""docs/operators.md's worked example does what the page says: the shell operator that finds its
folders through `NVIDIA_CLARA_INPUTPATHS`/`OUTPUTPATHS` runs, unchanged, on `aorta up` as a host
process and in a container (busybox), while one that writes its declared `/output` literally
fails as a host process with the message the page quotes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aorta.testing.embedded import aorta_up
from aorta.testing.images import build_busybox_image
from aorta.testing.podman import PodmanEngine
from aorta.testing.ports import free_port
from tests.e2e.container_platform import start_up, stop

ROOT = Path(__file__).resolve().parents[2]
AORTA = Path(sys.executable).parent / "aorta"


def worked_example() -> str:
    """The first YAML block of docs/operators.md."""
    page = (ROOT / "docs/operators.md").read_text()
    found = re.search(r"```yaml\n(.*?)```", page, re.DOTALL)
    assert found is not None
    return found.group(1)


def run(folder: Path, port: int, definition: str) -> subprocess.CompletedProcess[str]:
    """`aorta run` of `definition` on a folder holding greeting.txt, as the page shows it."""
    (folder / "shout.yml").write_text(definition)
    (folder / "words").mkdir(exist_ok=True)
    (folder / "words" / "greeting.txt").write_text("hello\n")
    command = [str(AORTA), "run", "--host", f"127.0.0.1:{port}", "-p", "shout.yml", "-f", "words"]
    return subprocess.run(
        [*command, "-o", "results"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def shouted(folder: Path, done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return (folder / "results" / "shout" / "greeting.txt").read_text()


@pytest.mark.timeout(180)
def test_the_worked_example_runs_as_a_host_process_and_a_literal_path_does_not(
    tmp_path: Path,
) -> None:
    port = free_port()
    with aorta_up(tmp_path / "platform", port, args=["--executor", "local"]):
        assert shouted(tmp_path, run(tmp_path, port, worked_example())) == "HELLO\n"

        literal = yaml.safe_load(worked_example())
        literal["operators"][0]["container"]["command"] = ["sh", "-c", "echo hi > /output/hi.txt"]
        failed = run(tmp_path, port, yaml.safe_dump(literal))
    assert failed.returncode == 1
    assert "/output/hi.txt: Directory nonexistent" in failed.stderr


@pytest.mark.timeout(300)
def test_the_worked_example_runs_in_a_container(
    podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    build_busybox_image(podman_engine.cli, "busybox:latest")
    port = free_port()
    platform = start_up(podman_engine, tmp_path / "platform", port, tmp_path / "aorta-up.log")
    try:
        assert shouted(tmp_path, run(tmp_path, port, worked_example())) == "HELLO\n"
    finally:
        assert stop(platform) == 0, (tmp_path / "aorta-up.log").read_text()[-3000:]
