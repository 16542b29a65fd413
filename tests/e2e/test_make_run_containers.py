"""`make run`'s container path: with a container engine answering (a private Podman API service,
named by `AORTA_CONTAINER_HOST`) that holds the example's images, examples/run_main_job.py runs
the example pipeline in containers of those images, says so, and gets the same report as on
host processes (tests/e2e/test_make_run.py covers that path). An engine without the images
leaves the run on host processes, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aorta.testing.podman import PodmanEngine
from examples.run_engine import engine_for_run
from examples.segmentation.build_images import build_example_images
from tests.e2e.container_platform import containers

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "run_main_job.py"
PIPELINE = ROOT / "examples" / "segmentation" / "pipeline.yml"
OPERATORS = ("reader", "segmentation", "writer")


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_make_run_runs_the_example_in_containers_when_an_engine_answers(
    podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    build_example_images(podman_engine.cli, [PIPELINE])
    work, results = tmp_path / "work", tmp_path / "results"
    env = {
        **os.environ,
        "AORTA_CONTAINER_HOST": podman_engine.url,
        "AORTA_CONTAINER_KEEP": "true",
        "AORTA_CONTAINER_PULL_POLICY": "Never",
    }
    env.pop("AORTA_EXECUTOR", None)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--work-dir", str(work), "--results", str(results)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"Operators run in containers (Podman 4.3.1 at {podman_engine.url})." in done.stdout
    assert "--executor container" in done.stdout
    assert "The report matched the ground truth" in done.stdout
    report = json.loads((results / "writer" / "report.json").read_text())
    assert report["method"].startswith("triton "), report["method"]
    for operator in OPERATORS:
        made = containers(podman_engine, **{"aorta.operator": operator})
        assert len(made) == 1, made
        assert f"aorta/example-{operator}:0.1.0" in str(made[0]["Image"])


@pytest.mark.timeout(60)
def test_an_engine_without_the_examples_images_leaves_the_run_on_host_processes(
    podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    environ = {"AORTA_CONTAINER_HOST": podman_engine.url}
    with engine_for_run(tmp_path, environ) as engine:
        assert (engine.executor, engine.host) == ("local", None)
        assert engine.note == (
            "operators run as host processes: the container engine at "
            f"{podman_engine.url} lacks aorta/example-reader:0.1.0, "
            "aorta/example-segmentation:0.1.0, aorta/example-writer:0.1.0 "
            "(`make images` builds them)"
        )
    with engine_for_run(tmp_path, {**environ, "AORTA_EXECUTOR": "local"}) as engine:
        assert engine.note == "operators run as host processes (AORTA_EXECUTOR=local)"
