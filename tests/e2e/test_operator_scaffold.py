"""The operator `aorta operator init` scaffolds runs as written, with the commands its README
gives: `aorta operator run-local` on this machine, and `aorta run -p
def/one-operator-pipeline.yml -f local/input` on `aorta up`, whether the platform runs operators
as host processes or in containers (its image built by `aorta operator build` over the SDK
image). Every run writes the same output, and no file of the scaffold is edited."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aorta.testing.embedded import aorta_up
from aorta.testing.images import build_python_sdk_image
from aorta.testing.podman import PodmanEngine
from aorta.testing.ports import free_port
from tests.e2e.container_platform import start_up, stop

AORTA = Path(sys.executable).parent / "aorta"
NAME = "hello-op"
EXPECTED = "0.25 0 0.375 0 0.5 1 0.125 0.625\n"
"""What the scaffold's operator makes of its sample input, 3 1 4 1 5 9 2 6: each number scaled
to 0..1."""
FILES = (
    "Containerfile",
    "main.py",
    "requirements.txt",
    "env.list",
    "README.md",
    "def/one-operator-pipeline.yml",
    "local/input/sample.txt",
)


def aorta(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(AORTA), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = f"aorta {args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == code, output
    return done


def scaffold(parent: Path) -> tuple[Path, dict[str, str]]:
    """A fresh operator folder made by `aorta operator init`, and the digest of each file."""
    aorta("operator", "init", NAME, cwd=parent)
    folder = parent / NAME
    return folder, digests(folder)


def digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


def run_as_job(folder: Path, port: int, *extra: str) -> str:
    """`aorta run` of the scaffold's definition on its sample input, as its README says; the
    output file it downloads."""
    aorta(
        "run", "--host", f"127.0.0.1:{port}", "-p", "def/one-operator-pipeline.yml",
        "-f", "local/input", "-o", "results", *extra, cwd=folder,
    )  # fmt: skip
    return (folder / "results" / NAME / "output" / "sample.txt").read_text()


@pytest.mark.timeout(180)
def test_the_scaffold_runs_unchanged_with_run_local_and_as_host_processes(tmp_path: Path) -> None:
    folder, before = scaffold(tmp_path)

    aorta("operator", "run-local", cwd=folder)
    assert (folder / "local" / "output" / "sample.txt").read_text() == EXPECTED

    port = free_port()
    with aorta_up(tmp_path / "platform", port, args=["--executor", "local"]):
        assert run_as_job(folder, port) == EXPECTED
        assert digests(folder) == before

        # A moved folder runs with the parameter its README names.
        moved = folder.rename(tmp_path / "moved")
        shutil.rmtree(moved / "results")
        assert run_as_job(moved, port, "--var", f"OPERATOR_DIR={moved}") == EXPECTED


@pytest.mark.timeout(420)
def test_the_scaffold_runs_unchanged_in_a_container(
    podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    folder, before = scaffold(tmp_path)
    # A plain podman in this environment uses the engine's own image store.
    in_engine = {**os.environ, **podman_engine.environ}
    refused = aorta("operator", "build", cwd=folder, env=in_engine, code=1)
    assert "the base image localhost/aorta/python-operator:latest is not in" in refused.stderr
    assert "make images" in refused.stderr

    build_python_sdk_image(podman_engine.cli)
    built = aorta("operator", "build", cwd=folder, env=in_engine)
    assert f"Built {NAME}:latest" in built.stdout

    port = free_port()
    platform = start_up(podman_engine, tmp_path / "platform", port, tmp_path / "aorta-up.log")
    try:
        assert run_as_job(folder, port) == EXPECTED
    finally:
        assert stop(platform) == 0, (tmp_path / "aorta-up.log").read_text()[-3000:]
    assert digests(folder) == before
