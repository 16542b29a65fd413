"""Images built on the host run through the Docker Engine API: busybox for shell operators, the
SDK's Python image for operators written with it, found by the names Clara pipelines use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiodocker
import pytest

from aorta.testing.images import build_busybox_image, image_recipe, tag_image
from aorta.testing.podman import PodmanEngine
from tests.integration.containers.conftest import run_to_end

SDK_OPERATOR = """
import os
from pathlib import Path

import clara


def execute(driver, payload):
    source = Path(payload.input_entries[0].path)
    target = Path(payload.output_entries[0].path)
    greeting = (source / "name.txt").read_text().strip()
    (target / "greeting.txt").write_text(f"{os.environ['GREETING']}, {greeting}")
    print(f"stage {driver.stage_name} greeted {greeting}")
    return True


clara.Driver(execute_handler=execute).start()
"""


async def test_busybox_runs_a_command_with_a_bind_mount_and_a_variable(
    docker: aiodocker.Docker, busybox_image: str, tmp_path: Path
) -> None:
    (tmp_path / "name.txt").write_text("world\n")
    script = 'cat /input/name.txt; echo "$GREETING"; touch /input/new || echo read-only; exit 7'

    finished = await run_to_end(
        docker,
        {
            "Image": busybox_image,
            "Cmd": ["sh", "-c", script],
            "Env": ["GREETING=hello"],
            "HostConfig": {"Binds": [f"{tmp_path}:/input:ro"]},
        },
    )

    assert finished.exit_code == 7
    assert "world\nhello\n" in finished.log
    assert "read-only" in finished.log
    assert not (tmp_path / "new").exists()


async def test_an_image_without_command_runs_its_entrypoint_by_the_name_a_pipeline_uses(
    podman_engine: PodmanEngine, docker: aiodocker.Docker
) -> None:
    await asyncio.to_thread(
        build_busybox_image,
        podman_engine.cli,
        "localhost/clara/dicom-test:latest",
        'echo "dicom-test ran with: $*"',
    )

    finished = await run_to_end(docker, {"Image": "clara/dicom-test:latest"})
    with_args = await run_to_end(docker, {"Image": "clara/dicom-test:latest", "Cmd": ["a", "b"]})

    assert (finished.exit_code, finished.log) == (0, "dicom-test ran with: \n")
    assert with_args.log == "dicom-test ran with: a b\n"


async def test_a_registry_name_made_with_podman_tag_is_found(
    podman_engine: PodmanEngine, docker: aiodocker.Docker, busybox_image: str
) -> None:
    name = "nvcr.io/nvidia/clara/register-results:0.7.2-2010.1"
    await asyncio.to_thread(tag_image, podman_engine.cli, busybox_image, name)

    inspected = await docker.images.inspect(name)
    finished = await run_to_end(docker, {"Image": name, "Cmd": ["echo", "registered"]})

    assert name in inspected["RepoTags"]
    assert (finished.exit_code, finished.log) == (0, "registered\n")


# The first session on a host builds the Python root filesystem (debootstrap, about a minute)
# unless `make setup` did.
@pytest.mark.timeout(600)
async def test_the_python_image_runs_an_sdk_operator_and_plain_scripts(
    docker: aiodocker.Docker, python_image: str, tmp_path: Path
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text(SDK_OPERATOR)
    (tmp_path / "app" / "plain.py").write_text("import sys\nprint(sys.version_info[:2])\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "name.txt").write_text("Clara\n")
    (tmp_path / "out").mkdir()
    binds = [f"{tmp_path / 'app'}:/app:ro", f"{tmp_path / 'in'}:/input:ro"]

    operator = await run_to_end(
        docker,
        {
            "Image": python_image,
            "Cmd": ["python", "-u", "-m", "aorta.driver.app", "/app/main.py"],
            "Env": [
                "GREETING=Hello",
                "NVIDIA_CLARA_NOSYNCLOCK=1",
                "NVIDIA_CLARA_STAGENAME=greeter",
                "NVIDIA_CLARA_INPUTPATHS=payload:/input",
                "NVIDIA_CLARA_OUTPUTPATHS=greeter:/output",
            ],
            "HostConfig": {"Binds": [*binds, f"{tmp_path / 'out'}:/output"]},
        },
    )
    plain_config = {"Image": python_image, "Cmd": ["python3", "/app/plain.py"]}
    plain = await run_to_end(docker, {**plain_config, "HostConfig": {"Binds": binds}})

    assert operator.exit_code == 0, operator.log
    assert "stage greeter greeted Clara" in operator.log
    assert (tmp_path / "out" / "greeting.txt").read_text() == "Hello, Clara"
    assert (plain.exit_code, plain.log) == (0, "(3, 11)\n")


async def test_a_build_from_the_same_recipe_does_nothing_and_a_new_one_replaces_the_old(
    podman_engine: PodmanEngine,
) -> None:
    name = "localhost/aorta-test/rebuilt:latest"

    def image_ids() -> list[str]:
        return podman_engine.cli.run("images", "--all", "--quiet", "--no-trunc").split()

    await asyncio.to_thread(build_busybox_image, podman_engine.cli, name, "echo one")
    first = await asyncio.to_thread(image_recipe, podman_engine.cli, name)
    before = await asyncio.to_thread(image_ids)
    await asyncio.to_thread(build_busybox_image, podman_engine.cli, name, "echo one")
    unchanged = await asyncio.to_thread(image_ids)
    await asyncio.to_thread(build_busybox_image, podman_engine.cli, name, "echo two")
    after = await asyncio.to_thread(image_ids)

    assert first is not None
    assert unchanged == before
    assert len(after) == len(before), "the replaced image is removed"
    assert await asyncio.to_thread(image_recipe, podman_engine.cli, name) != first
