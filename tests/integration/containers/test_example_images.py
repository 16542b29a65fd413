"""`make images`: the example pipeline's operator images, named as its definition names them,
run their operator with no command, as a Clara pipeline without `command` would."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import aiodocker
import pytest
import yaml

from aorta.testing.podman import PodmanEngine
from tests.integration.containers.conftest import run_to_end

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "segmentation"


def load(path: Path, name: str) -> ModuleType:
    """Imports the example's script at `path` as the module `name` (examples/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_each_operator_gets_the_image_its_definition_names() -> None:
    builder = load(EXAMPLE / "build_images.py", "example_build_images")

    assert builder.operator_images(EXAMPLE / "pipeline.yml") == {
        "reader": "localhost/aorta/example-reader:0.1.0",
        "segmentation": "localhost/aorta/example-segmentation:0.1.0",
        "writer": "localhost/aorta/example-writer:0.1.0",
    }


# The first session on a host builds the Python root filesystem (debootstrap, about a minute)
# unless `make setup` did.
@pytest.mark.timeout(600)
async def test_the_reader_image_runs_its_operator_from_its_entrypoint(
    podman_engine: PodmanEngine, docker: aiodocker.Docker, tmp_path: Path
) -> None:
    builder = load(EXAMPLE / "build_images.py", "example_build_images")
    generator = load(EXAMPLE / "generate_input.py", "example_generate_input")
    generator.write_input(tmp_path / "input")
    (tmp_path / "output").mkdir()

    # The reader alone: each further image costs seconds, and they are built the same way.
    pipeline = yaml.safe_load((EXAMPLE / "pipeline.yml").read_text())
    pipeline["operators"] = [op for op in pipeline["operators"] if op["name"] == "reader"]
    (tmp_path / "pipeline.yml").write_text(yaml.safe_dump(pipeline))

    built = await asyncio.to_thread(
        builder.build_example_images, podman_engine.cli, [tmp_path / "pipeline.yml"]
    )
    environment = (EXAMPLE / "operators" / "reader" / "env.list").read_text().splitlines()
    finished = await run_to_end(
        docker,
        {
            "Image": "aorta/example-reader:0.1.0",
            "Env": [line for line in environment if line and not line.startswith("#")],
            "HostConfig": {
                "Binds": [f"{tmp_path / 'input'}:/input:ro", f"{tmp_path / 'output'}:/output"]
            },
        },
    )

    assert built == ["localhost/aorta/example-reader:0.1.0"]
    assert finished.exit_code == 0, finished.log
    described = json.loads((tmp_path / "output" / "volume.json").read_text())
    assert described["shape"] == list(generator.synthetic_ct()[0].shape)
    assert (tmp_path / "output" / "volume.nii.gz").stat().st_size > 0
